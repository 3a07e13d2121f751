//! Facts of the record: what a person must know about the chart to claim it.
//!
//! A portal's `claim_checks` name the facts its claims must match (a subset
//! of date of birth, family name and postal code; none by default). Staff
//! enter the facts on the contact; they are **write-only**: the store keeps
//! only a keyed hash of each one's normal form ([`FactHasher`]), the API
//! shows which facts a contact has (`identity_facts`), never a value.
//!
//! Normal forms ([`normalise`]): a date of birth is `YYYY-MM-DD` (a real
//! date); a family name and a postal code are compared without case, accents,
//! spaces, dashes or apostrophes, so `"O'Brien-Núñez"` and `"obrien nunez"`
//! are the same name and `"sw1a 1aa"` is `"SW1A1AA"`.
//!
//! Issuing a code or link on a portal that checks a fact the contact lacks
//! is refused ([`missing`]): a code nobody could claim helps nobody. A claim
//! must give every checked fact, and each must match ([`matches`]); a claim
//! that does not is refused like an unknown code, and the third such claim
//! of one code or link locks it ([`super::invitation::fact_lock`]).

use super::ids::{ContactId, TenantId};
use super::pickup_code::{CodeHash, CodeHasher};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use unicode_normalization::UnicodeNormalization;

/// One fact of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    DateOfBirth,
    FamilyName,
    PostalCode,
}

impl Fact {
    pub const ALL: [Fact; 3] = [Fact::DateOfBirth, Fact::FamilyName, Fact::PostalCode];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DateOfBirth => "date_of_birth",
            Self::FamilyName => "family_name",
            Self::PostalCode => "postal_code",
        }
    }

    /// How a person is asked for it on the claim page.
    pub fn label(self) -> &'static str {
        match self {
            Self::DateOfBirth => "Date of birth",
            Self::FamilyName => "Family name",
            Self::PostalCode => "Postal code",
        }
    }
}

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest fact we take, in characters (before folding).
pub const MAX_FACT_LEN: usize = 100;

/// Why a fact was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("{0}: must be a date YYYY-MM-DD")]
    Date(Fact),
    #[error("{0}: must have 1 to {MAX_FACT_LEN} characters, with at least one letter or digit")]
    Text(Fact),
}

/// The normal form a fact is hashed and compared in.
pub fn normalise(fact: Fact, raw: &str) -> Result<String, FactError> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_FACT_LEN || raw.chars().any(char::is_control) {
        return Err(match fact {
            Fact::DateOfBirth => FactError::Date(fact),
            _ => FactError::Text(fact),
        });
    }
    match fact {
        // Only the canonical spelling: `2001-2-3` is not taken for `2001-02-03`.
        Fact::DateOfBirth => canonical_date(raw).map(str::to_owned).ok_or(FactError::Date(fact)),
        Fact::FamilyName | Fact::PostalCode => {
            let folded: String = raw
                .nfkd()
                .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
                .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '‑' | '–' | '—' | '\'' | '’' | '.'))
                .flat_map(char::to_lowercase)
                .collect();
            if folded.chars().any(char::is_alphanumeric) {
                Ok(folded)
            } else {
                Err(FactError::Text(fact))
            }
        }
    }
}

/// `raw` when it is a real date written `YYYY-MM-DD` (four, two and two
/// digits), else `None`. By hand rather than chrono's strftime, which would
/// link its format parser into every function that takes facts.
fn canonical_date(raw: &str) -> Option<&str> {
    let digits = |from: usize, to: usize| raw.get(from..to).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?.parse::<u32>().ok();
    let dashes = raw.len() == 10 && raw.as_bytes()[4] == b'-' && raw.as_bytes()[7] == b'-';
    let year = i32::try_from(digits(0, 4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, digits(5, 7)?, digits(8, 10)?).filter(|_| dashes).map(|_| raw)
}

/// Hashes facts under the service's key, bound to their tenant and contact
/// (two contacts born on the same day do not share a hash).
pub struct FactHasher<'a>(pub &'a CodeHasher);

impl FactHasher<'_> {
    /// The stored hash of an already normalised fact.
    pub fn hash(&self, tenant: &TenantId, contact: &ContactId, fact: Fact, normalised: &str) -> CodeHash {
        let input = format!("fact\u{1f}{tenant}\u{1f}{contact}\u{1f}{fact}\u{1f}{normalised}");
        self.0.hash_secret(input.as_bytes())
    }
}

/// The facts a contact has on record, as hashes.
pub type FactHashes = BTreeMap<Fact, CodeHash>;

/// What an edit of a contact does to one fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactEdit {
    /// Stored as this hash, made with this version of the hash key (`domain::keyring`).
    Set(CodeHash, String),
    /// Erased.
    Erase,
}

/// The facts a portal's checks need that the contact does not have.
pub fn missing(checks: &BTreeSet<Fact>, on_record: &FactHashes) -> Vec<Fact> {
    checks.iter().copied().filter(|f| !on_record.contains_key(f)).collect()
}

/// Whether a claim's facts pass the checks: every checked fact given and
/// equal to the record. Facts given but not checked are ignored.
pub fn matches(checks: &BTreeSet<Fact>, on_record: &FactHashes, given: &FactHashes) -> bool {
    checks.iter().all(|f| matches!((on_record.get(f), given.get(f)), (Some(a), Some(b)) if a == b))
}

/// [`matches`] across a key rotation: `given` holds what was typed hashed
/// under each key held (by version), and each fact on record is compared
/// under the version that hashed it (`versions`; unrecorded: under any).
pub fn matches_under(checks: &BTreeSet<Fact>, on_record: &FactHashes, versions: &BTreeMap<Fact, String>, given: &[(&str, FactHashes)]) -> bool {
    checks.iter().all(|f| {
        let Some(stored) = on_record.get(f) else { return false };
        given
            .iter()
            .filter(|(version, _)| versions.get(f).is_none_or(|v| v == version))
            .any(|(_, hashes)| hashes.get(f) == Some(stored))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_compared_under_the_key_version_that_hashed_them() {
        let (old, new) = (CodeHasher::new(b"old-key".to_vec()), CodeHasher::new(b"new-key".to_vec()));
        let h = |k: &CodeHasher, v: &str| FactHashes::from([(Fact::PostalCode, k.hash_secret(v.as_bytes()))]);
        let checks = BTreeSet::from([Fact::PostalCode]);
        let on_record = h(&old, "sw1a1aa");
        let versions = BTreeMap::from([(Fact::PostalCode, "v1".to_owned())]);
        let typed = |v: &str| vec![("v2", h(&new, v)), ("v1", h(&old, v))];
        assert!(matches_under(&checks, &on_record, &versions, &typed("sw1a1aa")), "stored under the previous key: still verifiable");
        assert!(!matches_under(&checks, &on_record, &versions, &typed("sw1a2aa")));
        // Only the recorded version counts: the new key's hash of the same value is no match for v1's record.
        assert!(!matches_under(&checks, &h(&new, "sw1a1aa"), &versions, &typed("sw1a1aa")));
        // Rotated twice: v1 no longer held, nothing matches.
        assert!(!matches_under(&checks, &on_record, &versions, &[("v3", h(&new, "sw1a1aa"))]));
        // Unrecorded (stored before versions): any held key.
        assert!(matches_under(&checks, &on_record, &BTreeMap::new(), &typed("sw1a1aa")));
    }

    #[test]
    fn names_fold_case_accents_spaces_dashes_and_apostrophes() {
        let a = normalise(Fact::FamilyName, "O'Brien-Núñez").unwrap();
        assert_eq!(a, "obriennunez");
        assert_eq!(normalise(Fact::FamilyName, "  obrien nunez ").unwrap(), a);
        assert_eq!(normalise(Fact::FamilyName, "O’BRIEN–NUÑEZ").unwrap(), a);
        assert_ne!(normalise(Fact::FamilyName, "O'Brian").unwrap(), normalise(Fact::FamilyName, "O'Brien").unwrap());
        assert_eq!(normalise(Fact::FamilyName, "Müller").unwrap(), "muller");
        assert_eq!(normalise(Fact::FamilyName, "- '"), Err(FactError::Text(Fact::FamilyName)));
        assert_eq!(normalise(Fact::FamilyName, &"x".repeat(101)), Err(FactError::Text(Fact::FamilyName)));
    }

    #[test]
    fn postal_codes_fold_like_names() {
        assert_eq!(normalise(Fact::PostalCode, "sw1a 1aa").unwrap(), normalise(Fact::PostalCode, "SW1A1AA").unwrap());
        assert_eq!(normalise(Fact::PostalCode, "12345-6789").unwrap(), "123456789");
    }

    #[test]
    fn dates_of_birth_are_real_dates_in_one_spelling() {
        assert_eq!(normalise(Fact::DateOfBirth, "1984-02-29").unwrap(), "1984-02-29");
        assert_eq!(normalise(Fact::DateOfBirth, " 1984-02-29 ").unwrap(), "1984-02-29");
        assert_eq!(normalise(Fact::DateOfBirth, "0001-01-01").unwrap(), "0001-01-01");
        for bad in ["1985-02-29", "1984-2-29", "29/02/1984", "", "1984-02-29T00:00:00Z", "1984-13-01", "1984-00-10", "1984-01-32", "19840229", "1984/02/29", "+984-02-29", "1984-02-2a", "١٩٨٤-٠٢-٢٩", "984-02-299"] {
            assert_eq!(normalise(Fact::DateOfBirth, bad), Err(FactError::Date(Fact::DateOfBirth)), "{bad}");
        }
    }

    #[test]
    fn hashes_are_bound_to_the_contact() {
        let hasher = CodeHasher::new(b"k".to_vec());
        let h = FactHasher(&hasher);
        let t = TenantId::parse("t1").unwrap();
        let (a, b) = (ContactId::parse("a").unwrap(), ContactId::parse("b").unwrap());
        assert_eq!(h.hash(&t, &a, Fact::DateOfBirth, "1990-01-01"), h.hash(&t, &a, Fact::DateOfBirth, "1990-01-01"));
        assert_ne!(h.hash(&t, &a, Fact::DateOfBirth, "1990-01-01"), h.hash(&t, &b, Fact::DateOfBirth, "1990-01-01"));
    }

    #[test]
    fn checks_need_every_checked_fact_to_match() {
        let hasher = CodeHasher::new(b"k".to_vec());
        let h = |v: &str| hasher.hash_secret(v.as_bytes());
        let checks: BTreeSet<Fact> = [Fact::DateOfBirth, Fact::FamilyName].into();
        let record: FactHashes = [(Fact::DateOfBirth, h("d")), (Fact::FamilyName, h("n"))].into();
        assert!(matches(&checks, &record, &record));
        let wrong: FactHashes = [(Fact::DateOfBirth, h("d")), (Fact::FamilyName, h("x"))].into();
        assert!(!matches(&checks, &record, &wrong));
        let partial: FactHashes = [(Fact::DateOfBirth, h("d"))].into();
        assert!(!matches(&checks, &record, &partial));
        assert!(matches(&BTreeSet::new(), &record, &FactHashes::new()), "no checks: nothing to match");
        assert_eq!(missing(&checks, &partial), [Fact::FamilyName]);
    }
}
