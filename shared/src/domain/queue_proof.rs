//! Who sent an activation-queue message, proven rather than claimed.
//!
//! Every tenant shares the activation queue, so a message is believed only
//! for what its signature proves: four SQS message attributes carry the
//! proof, and the body is the exact bytes signed.
//!
//! | attribute            | value                                                      |
//! |----------------------|------------------------------------------------------------|
//! | `portal-tenant`      | the tenant the message acts for                            |
//! | `portal-integration` | the registered integration that signed it; absent: the service itself |
//! | `portal-timestamp`   | when it was signed, Unix seconds                           |
//! | `portal-signature`   | `v1=` + hex HMAC-SHA256 of [`signed_text`] under the signer's key |
//!
//! The key of an integration is the secret shown once when it is registered
//! (`PUT /v1/integrations/{id}`, kept in Secrets Manager under the tenant's
//! name), so it signs only for its own tenant: the tenant is looked up with
//! the integration and is part of the signed text. The service's own messages
//! (`POST /v1/activations`, groups) are signed with a key derived from its
//! hash key ([`service_key`]). Against replays the signing time must be within
//! [`MAX_SKEW_SECONDS`] of the time SQS received the message (its
//! `SentTimestamp`, which no sender writes); a copy sent again later fails,
//! and a copy within the window only repeats a batch the job counts once.

use super::{IntegrationId, TenantId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;

pub const TENANT_ATTRIBUTE: &str = "portal-tenant";
pub const INTEGRATION_ATTRIBUTE: &str = "portal-integration";
pub const TIMESTAMP_ATTRIBUTE: &str = "portal-timestamp";
pub const SIGNATURE_ATTRIBUTE: &str = "portal-signature";
/// How far the signing time may be from the time SQS received the message.
pub const MAX_SKEW_SECONDS: i64 = 300;
const VERSION: &str = "v1";

/// Who signed a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The service itself (the `activations` function).
    Service,
    /// A tenant's registered integration.
    Integration(IntegrationId),
}

/// The proof a message carries, read from its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub tenant: TenantId,
    pub signer: Signer,
    pub timestamp: i64,
    signature: Vec<u8>,
}

/// Why a message's proof is refused. Each is counted and the message goes to the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the message carries no {0} attribute")]
    Missing(&'static str),
    #[error("the {0} attribute is malformed")]
    Malformed(&'static str),
    #[error("the integration is not registered for this tenant")]
    UnknownSigner,
    #[error("the signature does not match the message")]
    BadSignature,
    #[error("signed {skew} s away from when SQS received it (at most {MAX_SKEW_SECONDS} s)")]
    Stale { skew: i64 },
    #[error("the body names tenant {named}, the proof {proven}")]
    OtherTenant { named: String, proven: String },
    #[error("an integration's messages may not name an actor (its registered name is recorded)")]
    ActorNamed,
}

impl ProofError {
    /// A short, stable name for the metric's dimension.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing",
            Self::Malformed(_) => "malformed",
            Self::UnknownSigner => "unknown_signer",
            Self::BadSignature => "bad_signature",
            Self::Stale { .. } => "stale",
            Self::OtherTenant { .. } => "other_tenant",
            Self::ActorNamed => "actor_named",
        }
    }
}

/// The text a signature covers: version, time, tenant, signer and the exact body, one per line.
pub fn signed_text(timestamp: i64, tenant: &TenantId, signer: &Signer, body: &str) -> String {
    let integration = match signer {
        Signer::Service => "",
        Signer::Integration(id) => id.as_str(),
    };
    format!("{VERSION}\n{timestamp}\n{tenant}\n{integration}\n{body}")
}

fn mac(key: &[u8], text: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    mac
}

/// The `portal-signature` value for `body`.
pub fn signature(key: &[u8], timestamp: i64, tenant: &TenantId, signer: &Signer, body: &str) -> String {
    format!("{VERSION}={}", hex::encode(mac(key, &signed_text(timestamp, tenant, signer, body)).finalize().into_bytes()))
}

/// The four attributes of a message `signer` signs for `tenant` at `timestamp`.
pub fn attributes(key: &[u8], timestamp: i64, tenant: &TenantId, signer: &Signer, body: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (TENANT_ATTRIBUTE, tenant.to_string()),
        (TIMESTAMP_ATTRIBUTE, timestamp.to_string()),
        (SIGNATURE_ATTRIBUTE, signature(key, timestamp, tenant, signer, body)),
    ];
    if let Signer::Integration(id) = signer {
        out.push((INTEGRATION_ATTRIBUTE, id.to_string()));
    }
    out
}

/// The key the service signs its own messages with, derived from its hash
/// key so that neither can be computed from the other.
pub fn service_key(hash_key: &[u8]) -> Vec<u8> {
    mac(hash_key, "portal-access activation-queue signing key v1").finalize().into_bytes().to_vec()
}

impl Proof {
    /// Reads the proof from a message's string attributes.
    pub fn read(attributes: &HashMap<String, String>) -> Result<Self, ProofError> {
        let get = |name: &'static str| attributes.get(name).map(String::as_str).ok_or(ProofError::Missing(name));
        let tenant = TenantId::parse(get(TENANT_ATTRIBUTE)?).map_err(|_| ProofError::Malformed(TENANT_ATTRIBUTE))?;
        let signer = match attributes.get(INTEGRATION_ATTRIBUTE) {
            None => Signer::Service,
            Some(id) => Signer::Integration(IntegrationId::parse(id).map_err(|_| ProofError::Malformed(INTEGRATION_ATTRIBUTE))?),
        };
        let timestamp = get(TIMESTAMP_ATTRIBUTE)?.parse().map_err(|_| ProofError::Malformed(TIMESTAMP_ATTRIBUTE))?;
        let signature = get(SIGNATURE_ATTRIBUTE)?
            .strip_prefix("v1=")
            .and_then(|h| hex::decode(h).ok())
            .filter(|s| s.len() == 32)
            .ok_or(ProofError::Malformed(SIGNATURE_ATTRIBUTE))?;
        Ok(Self { tenant, signer, timestamp, signature })
    }

    /// Checks the signature over `body` under any of `keys` (a rotated
    /// secret's current and previous value), in constant time, and the
    /// signing time against `sent_at_ms`, when SQS received the message.
    pub fn verify(&self, keys: &[&[u8]], body: &str, sent_at_ms: i64) -> Result<(), ProofError> {
        let text = signed_text(self.timestamp, &self.tenant, &self.signer, body);
        if !keys.iter().any(|key| mac(key, &text).verify_slice(&self.signature).is_ok()) {
            return Err(ProofError::BadSignature);
        }
        let skew = (sent_at_ms.div_euclid(1000) - self.timestamp).abs();
        if skew > MAX_SKEW_SECONDS {
            return Err(ProofError::Stale { skew });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        TenantId::parse(t).unwrap()
    }

    fn attrs(list: Vec<(&'static str, String)>) -> HashMap<String, String> {
        list.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    const BODY: &str = r#"{"version":1,"job_id":"j","method":"code","contact_ids":["a"]}"#;

    #[test]
    fn a_signed_message_verifies_and_any_change_breaks_it() {
        let crm = Signer::Integration(IntegrationId::parse("crm").unwrap());
        let a = attrs(attributes(b"secret-a", 1_000, &tenant("a"), &crm, BODY));
        let proof = Proof::read(&a).unwrap();
        assert_eq!((proof.tenant.as_str(), &proof.signer), ("a", &crm));
        proof.verify(&[b"secret-a"], BODY, 1_000_500).unwrap();
        assert_eq!(proof.verify(&[b"secret-b"], BODY, 1_000_500), Err(ProofError::BadSignature));
        assert_eq!(proof.verify(&[b"secret-a"], &BODY.replace("\"a\"", "\"b\""), 1_000_500), Err(ProofError::BadSignature));
        // The previous key of a rotation still verifies.
        proof.verify(&[b"new", b"secret-a"], BODY, 1_000_500).unwrap();
        // Naming another tenant (or another integration, or the service) breaks the signature.
        for (name, value) in [(TENANT_ATTRIBUTE, "b"), (INTEGRATION_ATTRIBUTE, "erp"), (TIMESTAMP_ATTRIBUTE, "1001")] {
            let mut forged = a.clone();
            forged.insert(name.into(), value.into());
            assert_eq!(Proof::read(&forged).unwrap().verify(&[b"secret-a"], BODY, 1_000_500), Err(ProofError::BadSignature), "{name}");
        }
        let mut as_service = a.clone();
        as_service.remove(INTEGRATION_ATTRIBUTE);
        assert_eq!(Proof::read(&as_service).unwrap().verify(&[b"secret-a"], BODY, 1_000_500), Err(ProofError::BadSignature));
    }

    #[test]
    fn a_replay_later_than_the_window_is_stale() {
        let a = attrs(attributes(b"k", 1_000, &tenant("a"), &Signer::Service, BODY));
        let proof = Proof::read(&a).unwrap();
        proof.verify(&[b"k"], BODY, (1_000 + MAX_SKEW_SECONDS) * 1000).unwrap();
        assert_eq!(proof.verify(&[b"k"], BODY, (1_001 + MAX_SKEW_SECONDS) * 1000), Err(ProofError::Stale { skew: MAX_SKEW_SECONDS + 1 }));
        assert!(matches!(proof.verify(&[b"k"], BODY, 0), Err(ProofError::Stale { .. })));
    }

    #[test]
    fn missing_or_malformed_attributes_are_named() {
        let good = attrs(attributes(b"k", 1, &tenant("a"), &Signer::Service, BODY));
        assert_eq!(Proof::read(&HashMap::new()), Err(ProofError::Missing(TENANT_ATTRIBUTE)));
        for (name, bad, want) in [
            (TENANT_ATTRIBUTE, "a#b", ProofError::Malformed(TENANT_ATTRIBUTE)),
            (TIMESTAMP_ATTRIBUTE, "soon", ProofError::Malformed(TIMESTAMP_ATTRIBUTE)),
            (SIGNATURE_ATTRIBUTE, "v1=abcd", ProofError::Malformed(SIGNATURE_ATTRIBUTE)),
            (SIGNATURE_ATTRIBUTE, "sha1=00", ProofError::Malformed(SIGNATURE_ATTRIBUTE)),
            (INTEGRATION_ATTRIBUTE, "../x", ProofError::Malformed(INTEGRATION_ATTRIBUTE)),
        ] {
            let mut m = good.clone();
            m.insert(name.into(), bad.into());
            assert_eq!(Proof::read(&m), Err(want), "{name}={bad}");
        }
    }

    #[test]
    fn the_service_key_is_not_the_hash_key() {
        let k = service_key(b"0123456789abcdef");
        assert_eq!(k.len(), 32);
        assert_ne!(k, b"0123456789abcdef".to_vec());
        assert_ne!(k, service_key(b"0123456789abcdeg"));
    }
}
