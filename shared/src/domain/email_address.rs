//! `EmailAddress`: a contact's or account's address, checked once at the edge.
//!
//! We check the shape (one `@`, a non-empty local part, a dotted domain of
//! letters, digits and hyphens) and the RFC 5321 limits (local part ≤ 64 octets,
//! domain ≤ 255, whole path ≤ 254). Addresses are compared case-insensitively in
//! practice, so the stored form is lower-cased: `Ann@Example.org` and
//! `ann@example.org` are the same portal account.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("is not an email address (expected name@domain.tld)")]
    Syntax,
    #[error("is longer than RFC 5321 allows (local part 64, domain 255, address 254 octets)")]
    TooLong,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::Syntax)?;
        if local.len() > 64 || domain.len() > 255 {
            return Err(EmailError::TooLong);
        }
        let local_ok = !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(EmailError::Syntax);
        }
        Ok(Self(trimmed.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(raw: String) -> Result<Self, EmailError> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_lower_cased() {
        assert_eq!(EmailAddress::parse(" Ann.Lee+portal@Example.ORG ").unwrap().as_str(), "ann.lee+portal@example.org");
    }

    #[test]
    fn invalid_addresses_are_refused_with_a_reason() {
        let cases = [
            ("", EmailError::Syntax, "empty"),
            ("ann", EmailError::Syntax, "no @"),
            ("ann@", EmailError::Syntax, "no domain"),
            ("@example.org", EmailError::Syntax, "no local part"),
            ("ann@example", EmailError::Syntax, "undotted domain"),
            ("ann@exa mple.org", EmailError::Syntax, "space in domain"),
            ("a..b@example.org", EmailError::Syntax, "double dot"),
            ("ann@-example.org", EmailError::Syntax, "label starts with hyphen"),
            ("<script>@example.org", EmailError::Syntax, "angle brackets"),
        ];
        for (raw, want, why) in cases {
            assert_eq!(EmailAddress::parse(raw), Err(want), "{why}");
        }
    }

    #[test]
    fn rfc_5321_lengths_are_enforced() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&long_local), Err(EmailError::TooLong));
        let at_limit = format!("{}@example.org", "a".repeat(64));
        assert!(EmailAddress::parse(&at_limit).is_ok());
        let long_total = format!("{}@{}.org", "a".repeat(60), "b".repeat(63).repeat(4));
        assert_eq!(EmailAddress::parse(&long_total), Err(EmailError::TooLong));
    }
}
