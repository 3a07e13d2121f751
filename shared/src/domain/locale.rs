//! Languages: a contact's `locale`, a portal's `default_locale`, and which
//! template (and hosted page) a message gets.
//!
//! A [`Locale`] is a BCP 47 tag (`es`, `es-MX`, `zh-Hant-TW`), checked and
//! written in its canonical case. The choice for a message falls back
//! ([`chain`]): the contact's locale → its language → the portal's default
//! locale → that one's language; the first of these the portal has a template
//! for wins, and without one the built-in template ([`BuiltIn`]) in the first
//! of these languages we ship (English and Spanish), else English.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A BCP 47 language tag in canonical case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("is not a BCP 47 language tag (e.g. en, es, es-MX, pt-BR)")]
pub struct LocaleError;

/// Longest tag we keep.
pub const MAX_LOCALE_LEN: usize = 35;

impl Locale {
    /// Parses a tag: a language of 2–3 letters, then subtags of 1–8 letters
    /// or digits; `_` is read as `-`. Case is made canonical: `ES-mx` → `es-MX`.
    pub fn parse(raw: &str) -> Result<Self, LocaleError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_LOCALE_LEN {
            return Err(LocaleError);
        }
        let mut parts = Vec::new();
        for (i, sub) in raw.split(['-', '_']).enumerate() {
            let ok = if i == 0 {
                (2..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphabetic())
            } else {
                (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
            };
            if !ok {
                return Err(LocaleError);
            }
            let canonical = match (i, sub.len()) {
                (0, _) => sub.to_ascii_lowercase(),
                // A region (`MX`) is upper case, a script (`Hant`) title case.
                (_, 2) if sub.bytes().all(|b| b.is_ascii_alphabetic()) => sub.to_ascii_uppercase(),
                (_, 4) if sub.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    let lower = sub.to_ascii_lowercase();
                    lower[..1].to_ascii_uppercase() + &lower[1..]
                }
                _ => sub.to_ascii_lowercase(),
            };
            parts.push(canonical);
        }
        Ok(Self(parts.join("-")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language alone: `es-MX` → `es`.
    pub fn language(&self) -> Self {
        Self(self.0.split('-').next().unwrap_or_default().to_owned())
    }

    /// English, the default of every portal.
    pub fn english() -> Self {
        Self("en".into())
    }

    /// The first of an `Accept-Language` header's tags we can read, by weight.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut tags: Vec<(f32, Self)> = header
            .split(',')
            .take(20)
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = Self::parse(pieces.next()?).ok()?;
                let weight = pieces.find_map(|p| p.trim().strip_prefix("q=")?.parse::<f32>().ok()).unwrap_or(1.0);
                (weight > 0.0).then_some((weight, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0));
        tags.into_iter().next().map(|(_, t)| t)
    }
}

impl Default for Locale {
    fn default() -> Self {
        Self::english()
    }
}

impl TryFrom<String> for Locale {
    type Error = LocaleError;
    fn try_from(raw: String) -> Result<Self, LocaleError> {
        Self::parse(&raw)
    }
}

impl From<Locale> for String {
    fn from(l: Locale) -> Self {
        l.0
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The locales to try, in order, without repeats.
pub fn chain(contact: Option<&Locale>, portal_default: &Locale) -> Vec<Locale> {
    let mut out: Vec<Locale> = Vec::with_capacity(4);
    let candidates = contact.into_iter().flat_map(|l| [l.clone(), l.language()]).chain([portal_default.clone(), portal_default.language()]);
    for l in candidates {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// The first locale of the chain that `available` holds.
pub fn choose<'a, T>(chain: &[Locale], available: impl Fn(&Locale) -> Option<&'a T>) -> Option<(Locale, &'a T)> {
    chain.iter().find_map(|l| available(l).map(|t| (l.clone(), t)))
}

/// The languages the built-in templates and pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    English,
    Spanish,
}

impl BuiltIn {
    pub const ALL: [Self; 2] = [Self::English, Self::Spanish];

    pub fn locale(self) -> Locale {
        Locale(match self {
            Self::English => "en",
            Self::Spanish => "es",
        }
        .into())
    }

    /// The built-in language for the first locale of the chain we ship; English otherwise.
    pub fn for_chain(chain: &[Locale]) -> Self {
        chain
            .iter()
            .find_map(|l| match l.language().as_str() {
                "en" => Some(Self::English),
                "es" => Some(Self::Spanish),
                _ => None,
            })
            .unwrap_or(Self::English)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Locale {
        Locale::parse(s).unwrap()
    }

    #[test]
    fn tags_are_checked_and_made_canonical() {
        assert_eq!(l("ES-mx").as_str(), "es-MX");
        assert_eq!(l("zh_hant_tw").as_str(), "zh-Hant-TW");
        assert_eq!(l("es-419").as_str(), "es-419");
        assert_eq!(l("es-MX").language().as_str(), "es");
        for bad in ["", "e", "english", "es-", "es--MX", "es-MXXXXXXXX", "1s", "es MX", &"a".repeat(36)] {
            assert_eq!(Locale::parse(bad), Err(LocaleError), "{bad}");
        }
    }

    #[test]
    fn the_chain_falls_back_through_language_and_portal_default() {
        let names = |c: Vec<Locale>| c.into_iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(names(chain(Some(&l("es-MX")), &l("en-US"))), ["es-MX", "es", "en-US", "en"]);
        assert_eq!(names(chain(Some(&l("en")), &l("en"))), ["en"]);
        assert_eq!(names(chain(None, &l("fr"))), ["fr"]);
        let c = chain(Some(&l("es-MX")), &l("en"));
        let has = |want: &'static [&'static str]| move |x: &Locale| want.contains(&x.as_str()).then_some(&());
        assert_eq!(choose(&c, has(&["es", "en"])).unwrap().0.as_str(), "es");
        assert_eq!(choose(&c, has(&["en"])).unwrap().0.as_str(), "en");
        assert!(choose(&c, has(&["fr"])).is_none());
    }

    #[test]
    fn the_built_in_language_follows_the_chain() {
        assert_eq!(BuiltIn::for_chain(&chain(Some(&l("es-MX")), &l("en"))), BuiltIn::Spanish);
        assert_eq!(BuiltIn::for_chain(&chain(Some(&l("fr")), &l("es"))), BuiltIn::Spanish);
        assert_eq!(BuiltIn::for_chain(&chain(Some(&l("fr")), &l("de"))), BuiltIn::English);
    }

    #[test]
    fn accept_language_picks_the_heaviest_readable_tag() {
        assert_eq!(Locale::from_accept_language("fr;q=0.5, es-MX, en;q=0.8").unwrap().as_str(), "es-MX");
        assert_eq!(Locale::from_accept_language("*;q=1, de;q=0.1").unwrap().as_str(), "de");
        assert!(Locale::from_accept_language("es;q=0").is_none());
    }
}
