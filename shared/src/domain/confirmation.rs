//! Proof of the address: access is granted at once only to an address the
//! person has shown they read. A link claimed for the very address it was
//! emailed to binds at once ([`binding`]); every other claim (a code, or a
//! link for another address) only emails a one-time confirmation link to the
//! typed address, and the claim completes when that link is confirmed
//! (`POST /v1/claim/confirm`), with the same exactly-once transaction.
//!
//! A confirmation is a 256-bit token, stored only as a keyed hash, valid for
//! [`VALID_FOR`]. A code has at most [`MAX_OUTSTANDING`] confirmations out: a
//! new one voids the oldest ([`outstanding_after`]), so a code cannot be used
//! to mail-bomb; each confirmation sent also counts against the source
//! address like a refusal. Until one is confirmed the code stays pending; if
//! two people confirm, the first wins.

use super::access_state::Method;
use super::email_address::EmailAddress;
use super::pickup_code::CodeHash;
use chrono::Duration;

/// How long a confirmation link works.
pub const VALID_FOR: Duration = Duration::hours(24);
/// Confirmations one code or link may have outstanding.
pub const MAX_OUTSTANDING: usize = 3;

/// Whether a confirmation that expires at `expires_at_ms` (Unix milliseconds,
/// as stored) can still be used at `now`: the one place its expiry is compared.
pub fn is_open(expires_at_ms: i64, now: chrono::DateTime<chrono::Utc>) -> bool {
    now.timestamp_millis() < expires_at_ms
}

/// How a claim that passed every check binds its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The person has shown they read the address: bind now.
    Now,
    /// Email a confirmation link to the typed address first.
    Confirm,
}

/// A link claimed for the address it was emailed to binds now; anything else
/// is confirmed by email first.
pub fn binding(method: Method, sent_to: Option<&EmailAddress>, typed: &EmailAddress) -> Binding {
    match (method, sent_to) {
        (Method::Link, Some(to)) if to == typed => Binding::Now,
        _ => Binding::Confirm,
    }
}

/// The outstanding confirmations after `new` is added (oldest first), and
/// the one it voids, if any.
pub fn outstanding_after(current: &[CodeHash], new: CodeHash) -> (Vec<CodeHash>, Vec<CodeHash>) {
    let mut all: Vec<CodeHash> = current.to_vec();
    all.push(new);
    let cut = all.len().saturating_sub(MAX_OUTSTANDING);
    let voided = all.drain(..cut).collect();
    (all, voided)
}

/// Where a confirmation link points.
pub enum ConfirmPage<'a> {
    /// The portal's own claim page, which takes `confirm_token`.
    Portal(&'a str),
    /// The hosted confirmation page (`/claim/confirm`), which takes `token`.
    Hosted(&'a str),
}

/// The confirmation link.
pub fn confirm_link(page: ConfirmPage<'_>, token: &str) -> String {
    match page {
        ConfirmPage::Portal(claim_url) => super::link_token::with_query(claim_url, "confirm_token", token),
        ConfirmPage::Hosted(confirm_url) => super::link_token::with_query(confirm_url, "token", token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_is_open_until_the_millisecond_it_expires() {
        let now = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        assert!(is_open(1_001, now));
        assert!(!is_open(1_000, now), "expired at its expiry");
        assert!(!is_open(999, now));
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn only_a_link_claimed_for_its_own_address_binds_at_once() {
        let to = addr("pat@example.com");
        assert_eq!(binding(Method::Link, Some(&to), &addr("PAT@example.com")), Binding::Now);
        assert_eq!(binding(Method::Link, Some(&to), &addr("other@example.com")), Binding::Confirm);
        assert_eq!(binding(Method::Link, None, &to), Binding::Confirm);
        assert_eq!(binding(Method::Code, Some(&to), &to), Binding::Confirm, "a code proves nothing about an address");
    }

    #[test]
    fn a_fourth_confirmation_voids_the_oldest() {
        let h = |s: &str| CodeHash::from_stored(s.to_owned());
        let (out, voided) = outstanding_after(&[], h("a"));
        assert_eq!((out, voided), (vec![h("a")], vec![]));
        let (out, voided) = outstanding_after(&[h("a"), h("b"), h("c")], h("d"));
        assert_eq!((out, voided), (vec![h("b"), h("c"), h("d")], vec![h("a")]));
    }

    #[test]
    fn confirm_links_append_their_token() {
        assert_eq!(confirm_link(ConfirmPage::Portal("https://p.example/claim"), "t"), "https://p.example/claim?confirm_token=t");
        assert_eq!(confirm_link(ConfirmPage::Portal("https://p.example/c?portal=a"), "t"), "https://p.example/c?portal=a&confirm_token=t");
        assert_eq!(confirm_link(ConfirmPage::Hosted("https://h.example/claim/confirm?tenant=t&portal=a"), "x"), "https://h.example/claim/confirm?tenant=t&portal=a&token=x");
    }
}
