//! The deployment's hash key, with versions. Codes, link and confirmation
//! tokens, facts of the record and claimants' addresses are stored only as
//! keyed hashes; email secrets are sealed, page cursors and the service's
//! own activation messages signed — every one of these under a key derived
//! from this one. It lives in Secrets Manager (read by the secrets adapter), so it can be
//! rotated without voiding anything in flight:
//!
//! - what is made from now on uses the **current** version;
//! - what is looked up or checked tries the current and then the
//!   **previous** version (Secrets Manager's `AWSCURRENT` and `AWSPREVIOUS`),
//!   so a code issued before a rotation is still claimed, a sealed email
//!   still opened, a cursor still paged;
//! - facts of the record are stored with the version that hashed them, and
//!   checked under that version while it is current or previous.
//!
//! So one rotation voids nothing; a second voids what is older than the
//! first. Rotate no more often than the longest code lifetime (README).

use super::page_cursor::{CursorSigner, ForeignCursor, Listing};
use super::sealed::{OpenError, Sealer};
use super::DocumentId;
use super::CodeHasher;

/// One version of the key, and everything derived from it.
pub struct HashKey {
    /// Secrets Manager's VersionId.
    pub version: String,
    pub hasher: CodeHasher,
    pub sealer: Sealer,
    pub cursors: CursorSigner,
    /// Signs the service's own activation messages (`domain::queue_proof`).
    pub queue_key: Vec<u8>,
}

impl HashKey {
    pub fn new(version: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            version: version.into(),
            hasher: CodeHasher::new(secret),
            sealer: Sealer::new(secret),
            cursors: CursorSigner::new(secret),
            queue_key: super::queue_proof::service_key(secret),
        }
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashKey").field("version", &self.version).finish_non_exhaustive()
    }
}

/// The current key and, after a rotation, the previous one.
#[derive(Debug)]
pub struct KeyRing {
    pub current: HashKey,
    pub previous: Option<HashKey>,
}

impl KeyRing {
    /// Current first, then previous.
    pub fn all(&self) -> impl Iterator<Item = &HashKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// The key of `version`, while it is current or previous.
    pub fn version(&self, version: &str) -> Option<&HashKey> {
        self.all().find(|k| k.version == version)
    }

    /// A page cursor signed with the current key.
    pub fn sign_cursor(&self, tenant: &str, listing: Listing, plain: &str) -> String {
        self.current.cursors.sign(tenant, listing, plain)
    }

    /// A cursor we issued under the current or the previous key.
    pub fn open_cursor<'a>(&self, tenant: &str, listing: Listing, raw: &'a str) -> Result<&'a str, ForeignCursor> {
        self.all().find_map(|k| k.cursors.open(tenant, listing, raw).ok()).ok_or(ForeignCursor)
    }

    /// What was sealed for `context` under the current or the previous key.
    pub fn open_for(&self, context: &str, sealed: &str) -> Result<String, OpenError> {
        self.all().find_map(|k| k.sealer.open_for(context, sealed).ok()).ok_or(OpenError)
    }

    /// An email's sealed secrets, sealed under the current or the previous key.
    pub fn open_sealed(&self, document: &DocumentId, sealed: &str) -> Result<String, OpenError> {
        self.all().find_map(|k| k.sealer.open(document, sealed).ok()).ok_or(OpenError)
    }

    /// The keys to check a value stored under `version` with: that one if it is
    /// still held, every held key when the version is not recorded (values stored
    /// before versions were), none when it is older than the previous.
    pub fn for_stored(&self, version: Option<&str>) -> Vec<&HashKey> {
        match version {
            Some(v) => self.version(v).into_iter().collect(),
            None => self.all().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_try_the_current_then_the_previous_key() {
        let ring = KeyRing { current: HashKey::new("v2", b"second-key-0123456"), previous: Some(HashKey::new("v1", b"first-key-01234567")) };
        let versions: Vec<&str> = ring.all().map(|k| k.version.as_str()).collect();
        assert_eq!(versions, ["v2", "v1"]);
        assert_eq!(ring.version("v1").map(|k| k.version.as_str()), Some("v1"));
        assert!(ring.version("v0").is_none());
        assert_eq!(ring.for_stored(Some("v1")).len(), 1);
        assert_eq!(ring.for_stored(None).len(), 2, "unrecorded: any held key");
        assert!(ring.for_stored(Some("v0")).is_empty(), "older than the previous: void");
        let code = crate::domain::PickupCode::generate();
        assert_ne!(ring.current.hasher.hash(&code), ring.previous.as_ref().unwrap().hasher.hash(&code));
    }

    #[test]
    fn the_key_never_prints() {
        let key = HashKey::new("v1", b"a-secret-key-0123456");
        assert!(!format!("{key:?}").contains("a-secret-key"));
    }
}
