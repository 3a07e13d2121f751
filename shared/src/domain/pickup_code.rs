//! `PickupCode`: the short pickup/activation code a person types on the portal.
//!
//! Ten characters of Crockford base32 (50 bits from the OS CSPRNG), shown as
//! `XXXXX-XXXXX`. What people type is normalised before anything else: case is
//! folded, dashes and spaces dropped, and the look-alikes O→0, I→1, L→1 mapped,
//! as Crockford's alphabet intends.
//!
//! A code is never stored or looked up as itself: [`CodeHasher`] turns it into
//! a keyed HMAC-SHA-256, so a copy of the table alone does not let anyone
//! enumerate the 2^50 space offline. The plain code is kept only on the pending
//! code's own row (staff see it in the portlet) and in the stored email.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code, without the display dash.
pub const CODE_LEN: usize = 10;

/// A well-formed code in canonical form (ten upper-case Crockford characters).
#[derive(Clone, PartialEq, Eq)]
pub struct PickupCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeFormatError {
    #[error("a code has exactly 10 characters (dashes and spaces aside)")]
    Length,
    #[error("a code uses only the letters and digits printed on it")]
    Character,
}

impl PickupCode {
    /// A fresh code from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes[..7]).expect("the OS random source is unavailable");
        // 56 random bits; keep the low 50, five bits per character.
        let mut n = u64::from_le_bytes(bytes) & ((1u64 << 50) - 1);
        let mut out = [0u8; CODE_LEN];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        Self(String::from_utf8(out.to_vec()).expect("alphabet is ASCII"))
    }

    /// Normalises what a person typed: case, dashes, spaces, O→0, I/L→1.
    pub fn parse(raw: &str) -> Result<Self, CodeFormatError> {
        let mut out = String::with_capacity(CODE_LEN);
        for c in raw.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(CodeFormatError::Character);
            }
            if out.len() == CODE_LEN {
                return Err(CodeFormatError::Length);
            }
            out.push(c);
        }
        if out.len() != CODE_LEN {
            return Err(CodeFormatError::Length);
        }
        Ok(Self(out))
    }

    /// The form printed for people: `XXXXX-XXXXX`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }
}

/// Codes never reach a log, even through `{:?}`.
impl fmt::Debug for PickupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickupCode(<redacted>)")
    }
}

/// The lookup key of a code or link token: hex HMAC-SHA-256 under the service's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CodeHash(String);

impl CodeHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a hash read back from a stored key.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }
}

/// Hashes codes (and later link tokens) with the deployment's secret key.
#[derive(Clone)]
pub struct CodeHasher {
    key: Vec<u8>,
}

impl CodeHasher {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    pub fn hash(&self, code: &PickupCode) -> CodeHash {
        self.hash_secret(code.0.as_bytes())
    }

    pub(crate) fn hash_secret(&self, secret: &[u8]) -> CodeHash {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(secret);
        CodeHash(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher(<key redacted>)")
    }
}

/// How much of a pending code a caller sees: staff who issue codes
/// (`portal:write`) the whole of it, to read out or print, as the seed's
/// portlet shows it; read-only staff (`portal:read`) its last three
/// characters, enough to tell two codes apart on the phone, not to claim one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSight {
    Whole,
    LastThree,
}

impl CodeSight {
    pub fn of(scopes: super::auth::Scopes) -> Self {
        if scopes.grant(super::auth::Scope::Write) {
            Self::Whole
        } else {
            Self::LastThree
        }
    }

    /// `7K3QD-M9XPT` as this caller sees it: whole, or `•••••-••XPT`.
    pub fn show(self, code: &str) -> String {
        match self {
            Self::Whole => code.to_owned(),
            Self::LastThree => {
                let n = code.chars().count();
                code.chars().enumerate().map(|(i, c)| if c == '-' || i + 3 >= n { c } else { '•' }).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_codes_are_ten_crockford_characters_shown_in_two_groups() {
        for _ in 0..200 {
            let code = PickupCode::generate();
            let shown = code.display();
            assert_eq!(shown.len(), 11);
            assert_eq!(&shown[5..6], "-");
            assert!(shown.replace('-', "").bytes().all(|b| ALPHABET.contains(&b)), "{shown}");
            assert_eq!(PickupCode::parse(&shown).unwrap(), code);
        }
    }

    #[test]
    fn read_only_staff_see_the_last_three_characters_of_a_code() {
        use super::super::auth::{Scope, Scopes};
        let read: Scopes = [Scope::Read].into_iter().collect();
        let write: Scopes = [Scope::Write].into_iter().collect();
        assert_eq!(CodeSight::of(read).show("7K3QD-M9XPT"), "•••••-••XPT");
        assert_eq!(CodeSight::of(write).show("7K3QD-M9XPT"), "7K3QD-M9XPT");
        assert_eq!(CodeSight::of([Scope::Admin].into_iter().collect()), CodeSight::Whole);
    }

    #[test]
    fn generated_codes_do_not_repeat() {
        let seen: HashSet<String> = (0..10_000).map(|_| PickupCode::generate().display()).collect();
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn typed_codes_are_normalised() {
        let want = PickupCode::parse("01ABC-DEF11").unwrap();
        for typed in ["01abc-def11", "oiabcdefil", " 01ABC DEF11 ", "O1ABC--DEFL1", "0lAbC-dEf1I"] {
            assert_eq!(PickupCode::parse(typed).unwrap(), want, "{typed}");
        }
    }

    #[test]
    fn malformed_codes_are_refused() {
        assert_eq!(PickupCode::parse("ABCDE-FGHJ"), Err(CodeFormatError::Length));
        assert_eq!(PickupCode::parse("ABCDE-FGHJKM"), Err(CodeFormatError::Length));
        assert_eq!(PickupCode::parse(""), Err(CodeFormatError::Length));
        assert_eq!(PickupCode::parse("ABCDE-FGHJU"), Err(CodeFormatError::Character), "U is not Crockford");
        assert_eq!(PickupCode::parse("ABCDE-FGHJ!"), Err(CodeFormatError::Character));
    }

    #[test]
    fn hashes_depend_on_the_key_and_never_show_the_code() {
        let code = PickupCode::parse("ABCDE-FGHJK").unwrap();
        let a = CodeHasher::new("key-a").hash(&code);
        let b = CodeHasher::new("key-b").hash(&code);
        assert_ne!(a, b);
        assert_eq!(a, CodeHasher::new("key-a").hash(&PickupCode::parse("abcde fghjk").unwrap()));
        assert!(!a.as_str().to_uppercase().contains("ABCDEFGHJK"));
        assert_eq!(format!("{code:?}"), "PickupCode(<redacted>)");
    }
}
