//! Identifiers that appear in URLs and in every stored key.
//!
//! Tenants, contacts and portals are named by the systems that own them, so we
//! accept their ids as given but within one documented pattern:
//! `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`. Keeping `#` (our key separator), `/`,
//! spaces and control characters out means an id can never forge another key.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id we accept, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit")]
    BadCharacter,
}

fn check_id(raw: &str) -> Result<(), IdError> {
    let first = raw.chars().next().ok_or(IdError::Empty)?;
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !first.is_ascii_alphanumeric() || !raw.chars().all(allowed) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id, refusing anything outside the documented pattern.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check_id(raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                check_id(&raw)?;
                Ok(Self(raw))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

define_id!(
    /// The organisation (clinic, law firm, business) that owns portals and contacts.
    /// Comes only from the verified staff token, never from a request body.
    TenantId
);
define_id!(
    /// A contact of a tenant: a patient's chart, an individual, an organisation's contact.
    ContactId
);
define_id!(
    /// One of a tenant's customer portals.
    PortalId
);
define_id!(
    /// A bulk activation job (generated, or chosen by an upstream system).
    JobId
);
define_id!(
    /// A SmartGroup or List of contacts (seed 002).
    GroupId
);
define_id!(
    /// Another system registered by a tenant to send to the activation queue
    /// (`domain::queue_proof`).
    IntegrationId
);
define_id!(
    /// One email of a contact's email log (and its stored document): a UUID v7.
    DocumentId
);

impl DocumentId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for ok in ["a", "chart-1001", "Org_7.contact", &"x".repeat(64)] {
            assert!(ContactId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_ids_that_could_forge_keys_or_urls() {
        let cases = [
            ("", IdError::Empty),
            ("a#b", IdError::BadCharacter),
            ("a/b", IdError::BadCharacter),
            ("-lead", IdError::BadCharacter),
            ("sp ace", IdError::BadCharacter),
            ("é", IdError::BadCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(PortalId::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(TenantId::parse(&"x".repeat(65)), Err(IdError::TooLong));
    }

    #[test]
    fn deserialising_runs_the_same_check() {
        assert!(serde_json::from_str::<ContactId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<ContactId>("\"no#pe\"").is_err());
    }
}
