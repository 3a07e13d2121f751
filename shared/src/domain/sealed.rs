//! Secrets an email carries (a pickup code, a link's token) are stored in
//! plain nowhere: the email log entry holds them **sealed** (AES-256-GCM
//! under a key derived from the deployment's hash key, bound to the
//! document id), the mailer opens them only to render what SES sends, and
//! the log's variables and the stored document show them masked
//! ([`mask_code`], [`mask_link`]). Once the email is sent the sealed copy is
//! erased. Staff still read a pending code in the portlet (its own row), as
//! the product does; nobody reads it, or any link's token, from an email.

use super::ids::DocumentId;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// What a masked secret reads as in the log and the stored document.
pub const MASK: &str = "[hidden]";

/// A code as the stored email shows it.
pub fn mask_code(code: &str) -> String {
    if code.is_empty() { String::new() } else { "•••••-•••••".to_owned() }
}

/// A link with its token masked: `…?token=[hidden]` (any other parameter kept).
pub fn mask_link(link: &str) -> String {
    let Some((base, query)) = link.split_once('?') else { return link.to_owned() };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name == "token" || name == "confirm_token" => format!("{name}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Seals and opens the secrets of one email.
pub struct Sealer {
    key: LessSafeKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sealed value could not be opened (another key, another document, or damaged)")]
pub struct OpenError;

impl Sealer {
    /// The key is derived from the deployment's hash key, for this use only.
    pub fn new(hash_key: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(hash_key).expect("HMAC takes any key length");
        mac.update(b"portal-access email seal v1");
        let key = UnboundKey::new(&AES_256_GCM, &mac.finalize().into_bytes()).expect("a 32-byte key");
        Self { key: LessSafeKey::new(key) }
    }

    /// `plain` sealed for `document`: base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, document: &DocumentId, plain: &str) -> String {
        self.seal_for(&document.to_string(), plain)
    }

    /// Opens what [`Sealer::seal`] sealed for the same document.
    pub fn open(&self, document: &DocumentId, sealed: &str) -> Result<String, OpenError> {
        self.open_for(&document.to_string(), sealed)
    }

    /// `plain` sealed for whatever `context` names (an email's document id, an
    /// idempotency record's tenant and key): it opens only for the same context.
    pub fn seal_for(&self, context: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is unavailable");
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend(data);
        STANDARD_NO_PAD.encode(out)
    }

    /// Opens what [`Sealer::seal_for`] sealed for the same context.
    pub fn open_for(&self, context: &str, sealed: &str) -> Result<String, OpenError> {
        let raw = STANDARD_NO_PAD.decode(sealed).map_err(|_| OpenError)?;
        if raw.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut data = data.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data).map_err(|_| OpenError)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_document_and_key() {
        let s = Sealer::new(b"key-a");
        let (doc, other) = (DocumentId::generate(), DocumentId::generate());
        let sealed = s.seal(&doc, r#"{"code":"7K3QD-M9XPT"}"#);
        assert!(!sealed.contains("7K3QD"));
        assert_eq!(s.open(&doc, &sealed).unwrap(), r#"{"code":"7K3QD-M9XPT"}"#);
        assert_eq!(s.open(&other, &sealed), Err(OpenError), "bound to its document");
        assert_eq!(Sealer::new(b"key-b").open(&doc, &sealed), Err(OpenError), "bound to its key");
        assert_ne!(s.seal(&doc, "x"), s.seal(&doc, "x"), "a fresh nonce each time");
        assert_eq!(s.open(&doc, "not base64!"), Err(OpenError));
        assert_eq!(s.open(&doc, ""), Err(OpenError));
    }

    #[test]
    fn links_and_codes_are_masked() {
        assert_eq!(mask_link("https://p.example/claim?token=abc_DEF-123"), "https://p.example/claim?token=[hidden]");
        assert_eq!(mask_link("https://p.example/c?portal=main&token=abc"), "https://p.example/c?portal=main&token=[hidden]");
        assert_eq!(mask_link("https://p.example/claim"), "https://p.example/claim");
        assert_eq!(mask_code("7K3QD-M9XPT"), "•••••-•••••");
        assert_eq!(mask_code(""), "");
    }
}
