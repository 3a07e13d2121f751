//! The stored shape of each item, (de)serialised with serde_dynamo.
//! Field names are the attribute names; keys come from [`super::keys`].

use super::keys;
use crate::domain::{Locale, Recipient, 
    time, AccessEntry, CodeHash, ContactId, ContactKind, DocumentId, EmailAddress, EmailKind, EmailStatus, Fact, FactHashes,
    InvitationState, JobId, Method, PortalId, TenantId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use crate::domain::delivery::{DeliveryRecord, DeliveryStatus, EmailProblem};
use crate::domain::redacted::Redacted;
use std::collections::BTreeMap;

fn default_ttl() -> u32 {
    crate::domain::portal::DEFAULT_CODE_TTL_HOURS
}

/// Attribute DynamoDB's TTL deletes by (epoch seconds); named in template.yaml.
pub const TTL_ATTRIBUTE: &str = "expires_ttl";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalItem {
    pub pk: String,
    pub sk: String,
    pub portal_id: PortalId,
    pub name: String,
    pub default: bool,
    /// Absent: the deployment's hosted claim page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_url: Option<String>,
    pub code_ttl_hours: u32,
    #[serde(default = "default_ttl")]
    pub link_ttl_hours: u32,
    #[serde(default)]
    pub auto_generate: bool,
    #[serde(default)]
    pub auto_email: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_days_before_expiry: Option<u32>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub claim_checks: std::collections::BTreeSet<Fact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_jwks_url: Option<String>,
    #[serde(default, skip_serializing_if = "crate::domain::channel::Channels::is_default")]
    pub channels: crate::domain::channel::Channels,
    #[serde(default)]
    pub default_locale: crate::domain::Locale,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactItem {
    pub pk: String,
    pub sk: String,
    pub contact_id: ContactId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<crate::domain::PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<crate::domain::Locale>,
    pub kind: ContactKind,
    #[serde(default)]
    pub portal_ids: Vec<PortalId>,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// Portal id → this contact's stored state on that portal (absent: `none`).
    #[serde(default)]
    pub access: BTreeMap<String, AccessEntry>,
    /// The facts of the record, keyed hashes only (`domain::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_date_of_birth: Option<CodeHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_family_name: Option<CodeHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_postal_code: Option<CodeHash>,
    /// The hash key version (`domain::keyring`) each fact was hashed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_date_of_birth_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_family_name_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact_postal_code_key: Option<String>,
    /// The last hard bounce or complaint (`domain::delivery`) and the address it was for:
    /// it is the contact's problem only while that is still the contact's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_problem: Option<EmailProblem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_problem_address: Option<String>,
}

/// The attribute a fact's hash is stored in on the contact's item.
pub fn fact_attribute(fact: Fact) -> &'static str {
    match fact {
        Fact::DateOfBirth => "fact_date_of_birth",
        Fact::FamilyName => "fact_family_name",
        Fact::PostalCode => "fact_postal_code",
    }
}

impl ContactItem {
    /// The facts on record.
    pub fn facts(&self) -> FactHashes {
        [
            (Fact::DateOfBirth, &self.fact_date_of_birth),
            (Fact::FamilyName, &self.fact_family_name),
            (Fact::PostalCode, &self.fact_postal_code),
        ]
        .into_iter()
        .filter_map(|(f, h)| h.clone().map(|h| (f, h)))
        .collect()
    }

    /// The key version of each fact on record, where it was recorded.
    pub fn fact_key_versions(&self) -> BTreeMap<Fact, String> {
        [
            (Fact::DateOfBirth, &self.fact_date_of_birth_key),
            (Fact::FamilyName, &self.fact_family_name_key),
            (Fact::PostalCode, &self.fact_postal_code_key),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.clone().map(|v| (f, v)))
        .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountItem {
    pub pk: String,
    pub sk: String,
    pub email: EmailAddress,
    pub portal_id: PortalId,
    #[serde(with = "time::rfc3339")]
    pub activated_at: DateTime<Utc>,
    #[serde(default)]
    pub method: Method,
    /// Set when staff deactivated access; the account no longer opens the portal.
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// The activation report's fields (see `store::reports`).
    #[serde(default)]
    pub contact_name: String,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_document_id: Option<DocumentId>,
    /// The channels the code or link was sent by (`domain::channel`), for the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_by: Vec<crate::domain::Channel>,
    /// The identity provider's `sub`, when an ID token vouched for the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_subject: Option<String>,
}

impl AccountItem {
    /// The contact the account belongs to, from its key.
    pub fn contact_id(&self) -> Option<ContactId> {
        keys::contact_of_pk(&self.pk)
    }
}

/// A code on its contact's partition: what the portlet lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeItem {
    pub pk: String,
    pub sk: String,
    pub portal_id: PortalId,
    #[serde(default)]
    pub method: Method,
    pub code_hash: CodeHash,
    /// The plain code (`XXXXX-XXXXX`), only while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Redacted<String>>,
    pub state: InvitationState,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_document_id: Option<DocumentId>,
    /// The channels it was sent by (`domain::channel`; empty: never sent), for the reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_by: Vec<crate::domain::Channel>,
    pub created_by: String,
    /// For the reports: the contact's name when issued.
    #[serde(default)]
    pub contact_name: String,
    /// Index keys while pending (`gsi2`); removed when claimed, revoked or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub reminder_sent_at: Option<DateTime<Utc>>,
}

impl CodeItem {
    /// The contact the code belongs to, from its key.
    pub fn contact_id(&self) -> Option<ContactId> {
        keys::contact_of_pk(&self.pk)
    }
}

/// The global claim guard for a code: found by hash, names the owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeLookupItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    #[serde(default)]
    pub method: Method,
    pub state: InvitationState,
    /// Expiry in epoch milliseconds, compared in the claim's condition.
    pub expires_at_ms: i64,
    /// Epoch seconds after which DynamoDB may delete the guard (well after expiry).
    pub expires_ttl: i64,
    /// Copied onto the account when claimed (the activation report's row).
    #[serde(default)]
    pub contact_name: String,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_document_id: Option<DocumentId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_by: Vec<crate::domain::Channel>,
    /// For links: the address the link was emailed to (a claim for it binds at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<EmailAddress>,
    /// Outstanding claim confirmations, oldest first (`domain::confirmation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmations: Vec<CodeHash>,
    /// Changes of `confirmations`, the condition of the next one.
    #[serde(default)]
    pub confirm_seq: u32,
}

/// A claim waiting for its address to be confirmed: found by the token's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmationItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    /// The code or link being claimed.
    pub code_hash: CodeHash,
    /// The address typed at claim, where the confirmation went.
    pub email: EmailAddress,
    pub method: Method,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    pub expires_at_ms: i64,
    /// DynamoDB removes it a day after it expires.
    pub expires_ttl: i64,
}

/// One email: the job's inputs while queued, the rendered document once sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailItem {
    pub pk: String,
    pub sk: String,
    pub document_id: DocumentId,
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub kind: EmailKind,
    /// An email address, or a phone number for a text (`domain::channel`).
    pub to: Recipient,
    pub status: EmailStatus,
    /// The other channels' messages of the same send (`domain::channel`): the
    /// mailer queues their jobs before it sends this one, so whatever queues
    /// this message (again) queues them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companions: Vec<DocumentId>,
    /// The contact's language when the message was made, and the portal's
    /// default (`domain::locale`): the mailer picks the template by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    #[serde(default)]
    pub default_locale: Locale,
    /// After `sent`: the language of the template it was sent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_locale: Option<Locale>,
    /// Template variables captured when the email was requested, secrets masked
    /// (`domain::sealed`); the rest is personal data, so not printed either.
    pub vars: Redacted<BTreeMap<String, String>>,
    /// The secrets (code, link) sealed for the mailer; erased once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// While a mailer is sending: until when (epoch ms) others must leave it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
    /// After `sent`: the furthest delivery event SES reported (`domain::delivery`), and every one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_events: Vec<DeliveryRecord>,
    /// Index keys: find a document by id alone (`GET /v1/emails/{document_id}`).
    pub gsi1pk: String,
    pub gsi1sk: String,
}

impl EmailItem {
    /// A new `queued` email for a contact.
    pub fn queued(
        tenant: &TenantId,
        contact: &ContactId,
        portal: &PortalId,
        kind: EmailKind,
        to: impl Into<Recipient>,
        vars: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Self {
        let document_id = DocumentId::generate();
        Self {
            pk: keys::contact_pk(tenant, contact),
            sk: keys::email_sk(&document_id),
            gsi1pk: keys::document_gsi_pk(tenant, &document_id),
            gsi1sk: keys::DOCUMENT_GSI_SK.into(),
            document_id,
            tenant_id: tenant.clone(),
            contact_id: contact.clone(),
            portal_id: portal.clone(),
            kind,
            to: to.into(),
            status: EmailStatus::Queued,
            companions: Vec::new(),
            locale: None,
            default_locale: Locale::english(),
            sent_locale: None,
            vars: Redacted(vars),
            sealed: None,
            subject: None,
            body_text: None,
            body_html: None,
            ses_message_id: None,
            created_at: now,
            sent_at: None,
            failure_reason: None,
            attempts: 0,
            lease_until_ms: None,
            delivery_status: None,
            delivery_events: Vec::new(),
        }
    }

    /// The messages of one send (one per channel): the first names the others as its companions.
    pub fn one_send(mut messages: Vec<Self>) -> Vec<Self> {
        let companions: Vec<DocumentId> = messages.iter().skip(1).map(|m| m.document_id.clone()).collect();
        if let Some(first) = messages.first_mut() {
            first.companions = companions;
        }
        messages
    }

    /// In the contact's language, with the portal's default to fall back on.
    pub fn in_language(mut self, locale: Option<&Locale>, default_locale: &Locale) -> Self {
        self.locale = locale.cloned();
        self.default_locale = default_locale.clone();
        self
    }
}

/// One staff action, kept with the contact (or, for portal settings, the tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditItem {
    pub pk: String,
    pub sk: String,
    /// The staff member's `sub`.
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<PortalId>,
    #[serde(with = "time::rfc3339")]
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub detail: BTreeMap<String, String>,
}

impl AuditItem {
    pub fn contact(
        tenant: &TenantId,
        contact: &ContactId,
        portal: Option<&PortalId>,
        actor: &str,
        action: &str,
        at: DateTime<Utc>,
        detail: BTreeMap<String, String>,
    ) -> Self {
        Self {
            pk: keys::contact_pk(tenant, contact),
            sk: keys::audit_sk(at),
            actor: actor.into(),
            action: action.into(),
            contact_id: Some(contact.clone()),
            portal_id: portal.cloned(),
            at,
            detail,
        }
    }

    pub fn tenant(tenant: &TenantId, portal: Option<&PortalId>, actor: &str, action: &str, at: DateTime<Utc>, detail: BTreeMap<String, String>) -> Self {
        Self {
            pk: keys::tenant_pk(tenant),
            sk: keys::audit_sk(at),
            actor: actor.into(),
            action: action.into(),
            contact_id: None,
            portal_id: portal.cloned(),
            at,
            detail,
        }
    }
}

/// A portal's own template for one email kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateItem {
    pub pk: String,
    pub sk: String,
    pub portal_id: PortalId,
    pub kind: EmailKind,
    /// Absent on templates saved before languages: the portal's default locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Absent: the built-in text message of the template's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What an email address may open: one per (contact, portal) it claimed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessGrantItem {
    pub pk: String,
    pub sk: String,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    /// The identity provider's `sub` of the account, when an ID token vouched for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_subject: Option<String>,
}

/// A bulk job's record of one contact: written in the same transaction as
/// the contact's invitation (or alone, for a skip), so a redelivered message
/// finds it and issues nothing twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMarkerItem {
    pub pk: String,
    pub sk: String,
    pub contact_id: ContactId,
    pub outcome: crate::domain::job::Outcome,
    /// The email queued for the contact, so a redelivery can queue its job again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_document_id: Option<DocumentId>,
    /// DynamoDB removes markers 30 days on.
    pub expires_ttl: i64,
}

/// A bulk activation job and its counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobItem {
    pub pk: String,
    pub sk: String,
    pub job_id: JobId,
    pub state: crate::domain::job::JobState,
    #[serde(default)]
    pub portal_id: Option<PortalId>,
    #[serde(default)]
    pub method: Option<Method>,
    #[serde(default)]
    pub total: u32,
    #[serde(default)]
    pub activated: u32,
    #[serde(default)]
    pub skipped_no_email: u32,
    #[serde(default)]
    pub skipped_already_active: u32,
    #[serde(default)]
    pub skipped_missing_facts: u32,
    #[serde(default)]
    pub skipped_suppressed: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_by: String,
    /// `http`, `group:{id}` or `queue`.
    #[serde(default)]
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactId, EmailKind, PortalId, TenantId};

    #[test]
    fn a_stored_email_keeps_its_variables_but_never_prints_them() {
        let vars = BTreeMap::from([("contact_name".to_owned(), "Ann Lee".to_owned()), ("code".to_owned(), "•••••-•••••".to_owned())]);
        let email = EmailItem::queued(
            &TenantId::parse("t-1").unwrap(),
            &ContactId::parse("c-1").unwrap(),
            &PortalId::parse("main").unwrap(),
            EmailKind::PickupCode,
            &crate::domain::EmailAddress::parse("ann@example.com").unwrap(),
            vars,
            chrono::Utc::now(),
        );
        let printed = format!("{email:?}");
        assert!(!printed.contains("Ann Lee"), "{printed}");
        assert!(printed.contains("vars: [redacted]"), "{printed}");
        let stored = serde_json::to_value(&email).unwrap();
        assert_eq!(stored["vars"]["contact_name"], "Ann Lee", "stored as itself");
    }
}

/// An address the tenant no longer sends to (`domain::delivery`): `pk` the tenant's, `sk` `SUPPRESSED#{address}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuppressionItem {
    pub pk: String,
    pub sk: String,
    pub address: EmailAddress,
    pub problem: EmailProblem,
    #[serde(with = "time::rfc3339")]
    pub at: DateTime<Utc>,
    /// The email whose bounce or complaint put it here.
    pub contact_id: ContactId,
    pub document_id: DocumentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}
