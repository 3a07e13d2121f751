//! `LinkToken`: the secret in an emailed activation link.
//!
//! 256 bits from the OS CSPRNG, written as 43 characters of unpadded
//! base64url so it survives any URL. Like a code it is stored and looked up
//! only as a keyed hash (see [`super::pickup_code::CodeHasher`]); unlike a
//! code, its plain text is kept nowhere but the emailed link itself.

use super::ids::{PortalId, TenantId};
use super::pickup_code::{CodeHash, CodeHasher};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use std::fmt;

pub const TOKEN_CHARS: usize = 43;

#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a link token is 43 URL-safe base64 characters")]
pub struct TokenFormatError;

impl LinkToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn parse(raw: &str) -> Result<Self, TokenFormatError> {
        let raw = raw.trim();
        let ok = raw.len() == TOKEN_CHARS && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned())).ok_or(TokenFormatError)
    }

    /// The text that goes into the link (and nowhere else).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self, hasher: &CodeHasher) -> CodeHash {
        hasher.hash_secret(format!("link:{}", self.0).as_bytes())
    }

    /// The activation link: the portal's claim URL with the token as a query parameter.
    pub fn link(&self, claim_url: &str) -> String {
        with_query(claim_url, "token", &self.0)
    }
}

/// `url` with `name=value` appended to its query.
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

/// The deployment's hosted claim page for a portal (ids are URL-safe as they are).
pub fn hosted_claim_url(base: &str, tenant: &TenantId, portal: &PortalId) -> String {
    format!("{base}/claim?tenant={tenant}&portal={portal}")
}

/// The hosted page that confirms a claim for a portal.
pub fn hosted_confirm_url(base: &str, tenant: &TenantId, portal: &PortalId) -> String {
    format!("{base}/claim/confirm?tenant={tenant}&portal={portal}")
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_unique() {
        let a = LinkToken::generate();
        let b = LinkToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert_eq!(LinkToken::parse(a.expose()).unwrap(), a);
        assert_eq!(format!("{a:?}"), "LinkToken(<redacted>)");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert_eq!(LinkToken::parse("short"), Err(TokenFormatError));
        assert_eq!(LinkToken::parse(&"a".repeat(42).replace('a', "+") ), Err(TokenFormatError));
    }

    #[test]
    fn links_append_the_token_to_the_claim_url() {
        let t = LinkToken::parse(&"A".repeat(43)).unwrap();
        assert_eq!(t.link("https://p.example/claim"), format!("https://p.example/claim?token={}", "A".repeat(43)));
        assert!(t.link("https://p.example/claim?lang=en").contains("?lang=en&token="));
    }

    #[test]
    fn a_token_and_a_code_never_share_a_hash_space() {
        let h = CodeHasher::new("k");
        let t = LinkToken::parse(&"A".repeat(43)).unwrap();
        assert_ne!(t.hash(&h), h.hash_secret(t.expose().as_bytes()));
    }
}
