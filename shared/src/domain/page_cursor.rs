//! Page cursors as the API hands them out: the store's plain cursor (a
//! Query's LastEvaluatedKey, `store::cursor`) with a MAC that binds it to the
//! tenant and the listing it came from: `{plain}.{tag}`. A cursor we did not
//! issue (forged, edited, another tenant's, another listing's, or one from
//! before a hash-key rotation) is refused with 422 before any read, so no
//! key of a caller's making ever reaches DynamoDB as an `ExclusiveStartKey`.
//!
//! The key is derived from the deployment's hash key for this use only.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC a cursor carries (128 bits).
const TAG_LEN: usize = 16;

/// Which listing a cursor pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Contacts,
    ActivationsReport,
    UnusedCodesReport,
    Groups,
}

impl Listing {
    fn label(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::ActivationsReport => "activations-report",
            Self::UnusedCodesReport => "unused-codes-report",
            Self::Groups => "groups",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cursor is not one this service issued for this listing")]
pub struct ForeignCursor;

/// Signs and checks cursors.
pub struct CursorSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner([redacted])")
    }
}

impl CursorSigner {
    pub fn new(hash_key: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(hash_key).expect("HMAC takes any key length");
        mac.update(b"portal-access page cursor key v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn tag(&self, tenant: &str, listing: Listing, plain: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [tenant.as_bytes(), listing.label().as_bytes(), plain.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The cursor to hand out for the store's `plain` one.
    pub fn sign(&self, tenant: &str, listing: Listing, plain: &str) -> String {
        let tag = self.tag(tenant, listing, plain).finalize().into_bytes();
        format!("{plain}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]))
    }

    /// The store's plain cursor back, if we issued `raw` for this tenant and listing.
    pub fn open<'a>(&self, tenant: &str, listing: Listing, raw: &'a str) -> Result<&'a str, ForeignCursor> {
        let (plain, tag) = raw.rsplit_once('.').ok_or(ForeignCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| ForeignCursor)?;
        if tag.len() != TAG_LEN {
            return Err(ForeignCursor);
        }
        // Constant-time comparison of the truncated MAC.
        self.tag(tenant, listing, plain).verify_truncated_left(&tag).map_err(|_| ForeignCursor)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_for_its_tenant_and_listing() {
        let signer = CursorSigner::new(b"0123456789abcdef");
        let raw = signer.sign("t-1", Listing::Contacts, "eyJwayI6IngifQ");
        assert_eq!(signer.open("t-1", Listing::Contacts, &raw), Ok("eyJwayI6IngifQ"));
        assert_eq!(signer.open("t-2", Listing::Contacts, &raw), Err(ForeignCursor), "another tenant's");
        assert_eq!(signer.open("t-1", Listing::UnusedCodesReport, &raw), Err(ForeignCursor), "another listing's");
        assert_eq!(CursorSigner::new(b"another-key-0000").open("t-1", Listing::Contacts, &raw), Err(ForeignCursor), "another key's");
    }

    #[test]
    fn edited_and_unsigned_cursors_are_refused() {
        let signer = CursorSigner::new(b"0123456789abcdef");
        let raw = signer.sign("t", Listing::Contacts, "eyJwayI6IngifQ");
        let (plain, tag) = raw.rsplit_once('.').unwrap();
        for bad in [
            "eyJwayI6IngifQ".to_owned(),
            format!("eyJwayI6InkifQ.{tag}"),
            format!("{plain}.{}", &tag[1..]),
            format!("{plain}.AAAAAAAAAAAAAAAAAAAAAA"),
            format!("{plain}.!!"),
            String::new(),
            ".".to_owned(),
        ] {
            assert_eq!(signer.open("t", Listing::Contacts, &bad), Err(ForeignCursor), "{bad:?}");
        }
    }
}
