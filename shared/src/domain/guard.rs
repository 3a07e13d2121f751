//! Rules that protect the service from guessing and retries: the claim
//! throttle (claims per source address) and idempotency keys.
//! Pure: the store keeps the counters and records, these decide.
//!
//! # The claim throttle
//! Every claim is counted **before** it is judged: the store adds one to the
//! address's window atomically and answers the count after the addition, so
//! of any number of parallel claims from one address at most
//! [`MAX_FAILED_CLAIMS`] are judged and the rest are refused with 429. A
//! claim that binds an account at once is forgiven afterwards (its count is
//! taken back); a refusal, and a claim that only sends a confirmation email,
//! keep theirs. IPv6 addresses count per /64 ([`throttle_address`]), and a
//! request without a source address is refused.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// Claims one source address may have judged within [`CLAIM_WINDOW`], not
/// counting those that bound an account.
pub const MAX_FAILED_CLAIMS: u32 = 10;
/// The window claims are counted in (15 minutes from the first one).
pub const CLAIM_WINDOW: Duration = Duration::minutes(15);

/// Counted claims of one source address since `started_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub started_at: DateTime<Utc>,
    pub failures: u32,
}

impl FailureWindow {
    /// Whether this window still counts at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        now < self.ends_at()
    }

    pub fn ends_at(&self) -> DateTime<Utc> {
        self.started_at + CLAIM_WINDOW
    }
}

/// Whether a claim from an address may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimVerdict {
    Allow,
    /// Refused for the rest of the window: retry after this many seconds (≥ 1).
    Refuse { retry_after_secs: u64 },
}

/// The throttle, judged on the window **after** this claim was counted in it:
/// refused once the count passes [`MAX_FAILED_CLAIMS`].
pub fn claim_verdict(counted: FailureWindow, now: DateTime<Utc>) -> ClaimVerdict {
    match counted {
        w if w.is_open(now) && w.failures > MAX_FAILED_CLAIMS => {
            let secs = (w.ends_at() - now).num_milliseconds().div_euclid(1000) + 1;
            ClaimVerdict::Refuse { retry_after_secs: secs.max(1) as u64 }
        }
        _ => ClaimVerdict::Allow,
    }
}

/// What the throttle counts a source address as: an IPv4 address itself, an
/// IPv6 address by its /64 (one subscriber's network; an IPv4-mapped address
/// counts as its IPv4 address). `None` for something that is no IP address.
pub fn throttle_address(raw: &str) -> Option<String> {
    use std::net::IpAddr;
    match raw.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some(v4.to_string()),
            None => {
                let s = v6.segments();
                Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
            }
        },
    }
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// A request still `in progress` after this long has died (the functions time
/// out after 10 s): its key may be taken over.
pub const IDEMPOTENCY_STALE_AFTER: Duration = Duration::seconds(60);

/// A client's `Idempotency-Key` (1 to 255 visible ASCII characters), as one
/// staff member's: the key is theirs alone, so two people (or two systems)
/// who happen to send the same key with the same request each get their own
/// answer, never the other's (which may hold a code).
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The caller's token subject.
    sub: String,
    key: String,
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// `raw` as sent by the caller whose token subject is `sub`.
    pub fn parse(sub: &str, raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err("must be 1 to 255 characters");
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters (no spaces)");
        }
        Ok(Self { sub: sub.to_owned(), key: raw.to_owned() })
    }

    /// What a record's answer is sealed for: this tenant's, this caller's, this key's only.
    pub fn seal_context(&self, tenant: &str) -> String {
        format!("idempotency:{tenant}:{}", self.digest())
    }

    /// What the store keys the record by: a hash of the subject and the key,
    /// each length-prefixed, so no pair can pass for another (keys may hold `#`).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [self.sub.as_bytes(), self.key.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyKey").field("sub", &self.sub).field("key", &self.key).finish()
    }
}

/// What identifies "the same request" under one key: route, path and body.
pub fn request_fingerprint(route: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [route.as_bytes(), path.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    hex::encode(h.finalize())
}

/// A stored response, replayed for a repeat of the request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// What the store holds under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub response: Option<StoredResponse>,
}

/// What to do with a request whose key is already on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repeat {
    /// The record has expired or its request died: run the request afresh.
    TakeOver,
    /// The same request finished: answer what it answered.
    Replay(StoredResponse),
    /// The same request is still running.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}

pub fn repeat_of(record: &IdempotencyRecord, fingerprint: &str, now: DateTime<Utc>) -> Repeat {
    if record.expires_at <= now {
        return Repeat::TakeOver;
    }
    if record.fingerprint != fingerprint {
        return Repeat::Mismatch;
    }
    match &record.response {
        Some(r) => Repeat::Replay(r.clone()),
        None if now - record.started_at >= IDEMPOTENCY_STALE_AFTER => Repeat::TakeOver,
        None => Repeat::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_eleventh_counted_claim_is_refused_until_the_window_ends() {
        let w = FailureWindow { started_at: at(0), failures: 10 };
        assert_eq!(claim_verdict(w, at(60)), ClaimVerdict::Allow);
        let w = FailureWindow { failures: 11, ..w };
        assert_eq!(claim_verdict(w, at(60)), ClaimVerdict::Refuse { retry_after_secs: 841 });
        assert_eq!(claim_verdict(w, at(899)), ClaimVerdict::Refuse { retry_after_secs: 2 });
        assert_eq!(claim_verdict(w, at(900)), ClaimVerdict::Allow);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(throttle_address("203.0.113.7").as_deref(), Some("203.0.113.7"));
        let a = throttle_address("2001:db8:1:2:aaaa::1").unwrap();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(throttle_address("2001:db8:1:2:ffff:ffff:ffff:ffff").unwrap(), a);
        assert_ne!(throttle_address("2001:db8:1:3::1").unwrap(), a);
        assert_eq!(throttle_address("::ffff:203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(throttle_address("not an address"), None);
        assert_eq!(throttle_address(""), None);
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("staff", "a1-B2_c3:d4").is_ok());
        assert!(IdempotencyKey::parse("staff", &"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("staff", &"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("staff", "").is_err());
        assert!(IdempotencyKey::parse("staff", "with space").is_err());
        assert!(IdempotencyKey::parse("staff", "ключ").is_err());
    }

    #[test]
    fn a_key_is_its_sender_s_own() {
        let ann = IdempotencyKey::parse("ann", "k-1").unwrap();
        assert_eq!(ann.digest(), IdempotencyKey::parse("ann", "k-1").unwrap().digest());
        assert_ne!(ann.digest(), IdempotencyKey::parse("bob", "k-1").unwrap().digest());
        // Length prefixes: ("a", "bk") and ("ab", "k") are different callers' keys.
        assert_ne!(IdempotencyKey::parse("a", "bk").unwrap().digest(), IdempotencyKey::parse("ab", "k").unwrap().digest());
    }

    #[test]
    fn fingerprints_tell_route_path_and_body_apart() {
        let a = request_fingerprint("POST /x", "/x", b"{}");
        assert_eq!(a, request_fingerprint("POST /x", "/x", b"{}"));
        assert_ne!(a, request_fingerprint("POST /x", "/y", b"{}"));
        assert_ne!(a, request_fingerprint("POST /x", "/x", b"{ }"));
        // Lengths are framed: moving bytes between parts changes the print.
        assert_ne!(request_fingerprint("ab", "c", b""), request_fingerprint("a", "bc", b""));
    }

    #[test]
    fn repeats_replay_wait_refuse_or_take_over() {
        let done = StoredResponse { status: 201, content_type: "application/json".into(), body: "{}".into() };
        let rec = IdempotencyRecord { fingerprint: "f".into(), started_at: at(0), expires_at: at(86_400), response: None };
        assert_eq!(repeat_of(&rec, "f", at(5)), Repeat::InProgress);
        assert_eq!(repeat_of(&rec, "f", at(60)), Repeat::TakeOver);
        assert_eq!(repeat_of(&rec, "g", at(5)), Repeat::Mismatch);
        let rec = IdempotencyRecord { response: Some(done.clone()), ..rec };
        assert_eq!(repeat_of(&rec, "f", at(3600)), Repeat::Replay(done));
        assert_eq!(repeat_of(&rec, "g", at(3600)), Repeat::Mismatch);
        assert_eq!(repeat_of(&rec, "g", at(86_400)), Repeat::TakeOver);
    }
}
