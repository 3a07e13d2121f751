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
//! | code lookup     | `CODE#{code hash}`       | `CODE`                               |
//!
//! The portlet is one Query: `pk = T#{t}#C#{c} AND begins_with(sk, "CONTACT")`
//! returns the profile, its accounts and its codes, and nothing else.
//!
//! The code lookup is the one key without a tenant prefix: the claim page is
//! public and knows only the code, so the claim must find the tenant from the
//! code. Its key is a keyed hash of a 50-bit secret, not something a caller
//! chooses, and its value names the tenant and contact the code belongs to.

use crate::domain::{CodeHash, ContactId, EmailAddress, PortalId, TenantId};

pub const CONTACT_SK: &str = "CONTACT";
pub const CONTACT_VIEW_PREFIX: &str = "CONTACT";
pub const ACCOUNT_PREFIX: &str = "CONTACT#ACCOUNT#";
pub const CODE_PREFIX: &str = "CONTACT#CODE#";
pub const EMAIL_PREFIX: &str = "EMAIL#";
pub const PORTAL_PREFIX: &str = "PORTAL#";
pub const CODE_LOOKUP_SK: &str = "CODE";

pub fn tenant_pk(t: &TenantId) -> String {
    format!("T#{t}")
}

pub fn portal_sk(p: &PortalId) -> String {
    format!("{PORTAL_PREFIX}{p}")
}

pub fn contact_pk(t: &TenantId, c: &ContactId) -> String {
    format!("T#{t}#C#{c}")
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

pub fn email_sk(document_id: &str) -> String {
    format!("{EMAIL_PREFIX}{document_id}")
}

pub fn code_lookup_pk(hash: &CodeHash) -> String {
    format!("CODE#{}", hash.as_str())
}
