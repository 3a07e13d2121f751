//! A contact whose portal access staff manage.

use super::{channel::PhoneNumber, locale::Locale, email_address::EmailAddress, identity::FactHashes, ids::{ContactId, PortalId}};
use serde::{Deserialize, Serialize};

/// The kinds of contact the product serves (a chart counts as an individual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Individual,
    OrganizationContact,
}

/// A contact as stored and as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub contact_id: ContactId,
    pub name: String,
    /// Without one, nothing can be emailed to the contact.
    pub email: Option<EmailAddress>,
    /// For text messages (`domain::channel`): E.164.
    #[serde(default)]
    pub phone: Option<PhoneNumber>,
    /// The language messages and hosted pages use (`domain::locale`); none: the portal's default.
    #[serde(default)]
    pub locale: Option<Locale>,
    pub kind: ContactKind,
    /// Portals this contact has a relationship with, beyond the tenant's defaults.
    #[serde(default)]
    pub portal_ids: Vec<PortalId>,
    /// The facts of the record on file, as keyed hashes: shown as their
    /// names only (`identity_facts`), never read from input.
    #[serde(rename = "identity_facts", serialize_with = "fact_names", skip_deserializing)]
    pub facts: FactHashes,
    /// The hash key version each fact was hashed with (`domain::keyring`); never shown.
    #[serde(skip)]
    pub fact_key_versions: std::collections::BTreeMap<super::Fact, String>,
    /// The contact's email bounced hard or was complained about (`domain::delivery`):
    /// nothing is sent there until the email changes. Never read from input.
    #[serde(default, skip_deserializing)]
    pub email_problem: Option<super::delivery::EmailProblem>,
}

fn fact_names<S: serde::Serializer>(facts: &FactHashes, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(facts.keys())
}
