//! The single-table key design. Every key a tenant's data lives under starts
//! with `T#{tenant}`; ids cannot contain `#` (see `domain::ids`), so no id can
//! reach into another tenant's keys.
//!
//! | item            | pk                       | sk                                   |
//! |-----------------|--------------------------|--------------------------------------|
//! | portal settings | `T#{t}`                  | `PORTAL#{portal}`                    |
//! | contact profile | `T#{t}#C#{contact}`      | `CONTACT`                            |
//! | portal account  | `T#{t}#C#{contact}`      | `CONTACT#ACCOUNT#{portal}#{email}`   |
//! | code (contact)  | `T#{t}#C#{contact}`      | `CONTACT#CODE#{portal}#{code hash}`  |
//! | email log entry | `T#{t}#C#{contact}`      | `EMAIL#{document id}`                |
//! | audit record    | `T#{t}#C#{contact}`      | `AUDIT#{time}#{id}`                  |
//! | template        | `T#{t}`                  | `TEMPLATE#{portal}#{kind}#{locale}`  |
//! | tenant audit    | `T#{t}`                  | `AUDIT#{time}#{id}`                  |
//! | access grant    | `T#{t}#A#{email}`        | `ACCESS#{contact}#{portal}`          |
//! | code lookup     | `CODE#{code hash}`       | `CODE`                               |
//!
//! The index `gsi1` (`gsi1pk`, `gsi1sk`, all attributes) serves three lookups:
//! a tenant's contacts in id order (`gsi1pk = T#{t}#CONTACTS`, on contact
//! profiles, for the listing), its groups (`T#{t}#GROUPS`, on each group's
//! own item) and an email document by id
//! (`gsi1pk = T#{t}#DOC#{document id}`, on email log entries).
//!
//! Two sparse indexes serve the reports and the scheduler: `gsi2`
//! (`T#{t}#PENDING`, by expiry) holds a code or link only while it is
//! pending, and `gsi3` (`T#{t}#ACTIVATED`, by activation time) holds accounts.
//! The scheduler finds tenants in the registry `pk = TENANTS`.
//!
//! The login check ("what may this email open?") is one strongly consistent
//! Query of `T#{t}#A#{email}` and a strongly consistent read of the grants'
//! contacts: grants are written by the claim and deleted by deactivation's
//! chunks, and a grant of a contact `disabled` on its portal counts for
//! nothing, so a deactivated contact is gone from it at once.
//!
//! The portlet is one Query: `pk = T#{t}#C#{c} AND begins_with(sk, "CONTACT")`
//! returns the profile, its accounts and its codes, and nothing else.
//!
//! The code lookup is the one key without a tenant prefix: the claim page is
//! public and knows only the code, so the claim must find the tenant from the
//! code. Its key is a keyed hash of a 50-bit secret, not something a caller
//! chooses, and its value names the tenant and contact the code belongs to.

use crate::domain::{CodeHash, ContactId, DocumentId, EmailAddress, PortalId, TenantId};

pub const CONTACT_SK: &str = "CONTACT";
pub const CONTACT_VIEW_PREFIX: &str = "CONTACT";
pub const ACCOUNT_PREFIX: &str = "CONTACT#ACCOUNT#";
pub const CODE_PREFIX: &str = "CONTACT#CODE#";
pub const EMAIL_PREFIX: &str = "EMAIL#";
pub const PORTAL_PREFIX: &str = "PORTAL#";
pub const CODE_LOOKUP_SK: &str = "CODE";
pub const AUDIT_PREFIX: &str = "AUDIT#";
pub const TEMPLATE_PREFIX: &str = "TEMPLATE#";
pub const GRANT_PREFIX: &str = "ACCESS#";
pub const GSI1: &str = "gsi1";
/// Pending codes and links of a tenant by expiry (sparse: only while pending).
pub const GSI2: &str = "gsi2";
/// Activations of a tenant by time (sparse: only accounts).
pub const GSI3: &str = "gsi3";
/// The registry of tenants the scheduler visits.
pub const TENANTS_PK: &str = "TENANTS";

pub fn pending_gsi_pk(t: &TenantId) -> String {
    format!("T#{t}#PENDING")
}

/// Sorts by expiry; the rest keeps keys unique.
pub fn pending_gsi_sk(expires_at: &chrono::DateTime<chrono::Utc>, c: &ContactId, hash: &CodeHash) -> String {
    format!("{}#{c}#{}", crate::domain::time::format(expires_at), &hash.as_str()[..16])
}

pub fn activated_gsi_pk(t: &TenantId) -> String {
    format!("T#{t}#ACTIVATED")
}

pub fn activated_gsi_sk(at: &chrono::DateTime<chrono::Utc>, c: &ContactId, p: &PortalId, email: &EmailAddress) -> String {
    format!("{}#{c}#{p}#{email}", crate::domain::time::format(at))
}
pub const DOCUMENT_GSI_SK: &str = "DOC";

pub fn contacts_gsi_pk(t: &TenantId) -> String {
    format!("T#{t}#CONTACTS")
}

/// A tenant's groups by id, on `gsi1` (the group's own item).
pub fn groups_gsi_pk(t: &TenantId) -> String {
    format!("T#{t}#GROUPS")
}

pub fn document_gsi_pk(t: &TenantId, document_id: &DocumentId) -> String {
    format!("T#{t}#DOC#{document_id}")
}

/// Audit records sort by time; the random suffix keeps same-millisecond ones apart.
pub fn audit_sk(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{AUDIT_PREFIX}{}#{}", crate::domain::time::format(&at), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A kind's templates: `TEMPLATE#{portal}#{kind}` (saved before languages) and `…#{locale}`.
pub fn template_sk(p: &PortalId, kind: &str) -> String {
    format!("{TEMPLATE_PREFIX}{p}#{kind}")
}

pub fn template_locale_sk(p: &PortalId, kind: &str, locale: &crate::domain::Locale) -> String {
    format!("{TEMPLATE_PREFIX}{p}#{kind}#{locale}")
}

pub fn grant_pk(t: &TenantId, email: &EmailAddress) -> String {
    format!("T#{t}#A#{email}")
}

pub fn grant_sk(c: &ContactId, p: &PortalId) -> String {
    format!("{GRANT_PREFIX}{c}#{p}")
}

pub fn tenant_pk(t: &TenantId) -> String {
    format!("T#{t}")
}

pub fn portal_sk(p: &PortalId) -> String {
    format!("{PORTAL_PREFIX}{p}")
}

pub fn contact_pk(t: &TenantId, c: &ContactId) -> String {
    format!("T#{t}#C#{c}")
}

/// The contact a key of its partition names ([`contact_pk`] read back).
pub fn contact_of_pk(pk: &str) -> Option<ContactId> {
    pk.rsplit_once("#C#").and_then(|(_, c)| ContactId::parse(c).ok())
}

pub fn account_sk(p: &PortalId, email: &EmailAddress) -> String {
    format!("{ACCOUNT_PREFIX}{p}#{email}")
}

pub fn code_sk(p: &PortalId, hash: &CodeHash) -> String {
    format!("{CODE_PREFIX}{p}#{}", hash.as_str())
}

pub fn codes_of_portal_prefix(p: &PortalId) -> String {
    format!("{CODE_PREFIX}{p}#")
}

pub fn email_sk(document_id: &DocumentId) -> String {
    format!("{EMAIL_PREFIX}{document_id}")
}

/// An address on the tenant's suppression list (`domain::delivery`), under the tenant's partition.
pub fn suppression_sk(address: &EmailAddress) -> String {
    format!("{SUPPRESSION_PREFIX}{}", address.as_str())
}

pub const SUPPRESSION_PREFIX: &str = "SUPPRESSED#";

pub fn code_lookup_pk(hash: &CodeHash) -> String {
    format!("CODE#{}", hash.as_str())
}

/// A claim confirmation, by the hash of its token (global, like a code's lookup).
pub fn confirmation_pk(hash: &CodeHash) -> String {
    format!("CONFIRM#{}", hash.as_str())
}

pub const CONFIRMATION_SK: &str = "CONFIRM";
