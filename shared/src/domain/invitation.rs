//! The life of an invitation: a pickup code typed on the portal, or an
//! emailed activation link. This module owns its states and every move
//! between them, as pure functions; the store writes what they decide, and
//! the claim, the scheduler, the portlet, the listing and both reports read
//! a code's state through them.
//!
//! ```text
//!              claim (before expiry)          ┌──────────┐
//!   issue ──► pending ───────────────────────►│ claimed  │
//!               │  │                          └──────────┘
//!               │  │ a newer code/link, or deactivation
//!               │  └────────────────────────► revoked
//!               │  │ the third claim with wrong facts of the record
//!               │  └────────────────────────► locked
//!               │ expiry is due (now ≥ expires_at)
//!               └───────────────────────────► expired
//! ```
//!
//! # What happens when facts are wrong
//!
//! A claim of a pending code whose portal checks facts of the record
//! (`domain::identity`) and that gives a wrong or missing fact is refused
//! like an unknown code. Every such claim first takes a numbered try from an
//! atomic counter on the code ([`fact_try`]), before anything is compared:
//! only the first [`FACT_TRIES`] are judged, whatever the order they arrive
//! in, and the claim's own transaction requires the counter to be within
//! them. A wrong third try, or any try past it, locks the code
//! ([`fact_lock`]), in one transaction with the
//! contact's state on the portal (`locked`, if it still names this code):
//! no claim gets through it any more, the contact shows `locked` to staff,
//! and `…/portal/resend` issues a fresh one (`reset`).
//!
//! # What happens when a code expires
//!
//! - A code or link expires `code_ttl_hours` / `link_ttl_hours` after it was
//!   issued ([`expires_at`]). From that instant on it cannot be claimed: the
//!   claim checks [`claim`] and its transaction re-checks `expires_at_ms` in
//!   DynamoDB, so a claim racing the deadline cannot win after it.
//! - Before anything is written, every reader already sees it as expired:
//!   [`effective`] reads a stored `pending` past its expiry as `expired`, and
//!   [`contact_state`] does the same for the contact's state on the portal.
//!   The portlet stops listing it ([`is_listed_as_pending`]); the unused-codes
//!   report leaves it out; the listing filter `portal_status=expired` finds
//!   the contact.
//! - The scheduler's expiry step ([`expire`], written by
//!   `usecase::expire`) then stores it, in **one transaction**: the contact's
//!   row and the global lookup go `pending → expired` (the plain code is
//!   erased and it leaves the pending index), and the contact's state on the
//!   portal becomes `expired` if it still names this invitation
//!   ([`ContactEffect::IfStillNamed`]); a newer invitation or a claim that
//!   owns the state is left alone. A second run finds nothing pending.
//! - Afterwards staff may **reset** it (`…/portal/resend` on an expired
//!   contact: a fresh link with a new expiry), generate a new code, or the
//!   portal's `auto_generate` issues one at the next run.

use super::access_state::{AccessEntry, PortalState};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a code or link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    /// Issued and not yet claimed, revoked or expired.
    Pending,
    /// Someone claimed it and has an account.
    Claimed,
    /// Replaced by a newer code or link, or ended by deactivation.
    Revoked,
    /// Its expiry passed before anyone claimed it (stored by the scheduler).
    Expired,
    /// Claimed too often with wrong facts of the record: no longer claimable.
    Locked,
}

impl InvitationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Locked => "locked",
        }
    }

    /// Whether no move leads out of this state.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// When an invitation issued at `issued_at` with a lifetime of `ttl_hours` expires.
pub fn expires_at(issued_at: DateTime<Utc>, ttl_hours: u32) -> DateTime<Utc> {
    issued_at + Duration::hours(i64::from(ttl_hours))
}

/// The state as of `now`: a stored `pending` whose expiry has passed is `expired`.
pub fn effective(stored: InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> InvitationState {
    match stored {
        InvitationState::Pending if now >= expires_at => InvitationState::Expired,
        other => other,
    }
}

/// A contact's state on a portal as of `now`: none without an entry, and a
/// pending invitation past its expiry reads as `expired`.
pub fn contact_state(entry: Option<&AccessEntry>, now: DateTime<Utc>) -> PortalState {
    match entry {
        None => PortalState::None,
        Some(e) => match (e.state, e.expires_at) {
            (PortalState::Pending, Some(exp)) if exp <= now => PortalState::Expired,
            (state, _) => state,
        },
    }
}

/// What a move of an invitation does to its contact's state on the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEffect {
    /// The contact's state becomes this, whatever it was.
    Set(PortalState),
    /// The contact's state becomes this only while it still names this
    /// invitation (pending with its expiry); otherwise a newer invitation or
    /// a claim owns it and it is left as it is.
    IfStillNamed(PortalState),
    /// The contact's state is written by the operation around the move (a
    /// new code's issue, a deactivation).
    Unchanged,
}

/// One move of an invitation: where it goes, and what follows for the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: InvitationState,
    pub to: InvitationState,
    pub contact: ContactEffect,
}

/// Why a claim of an invitation cannot go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotClaimable {
    #[error("it has expired")]
    Expired,
    #[error("it is no longer pending ({0:?})")]
    NotPending(InvitationState),
}

/// A claim at `now`: only a pending invitation strictly before its expiry.
/// The claimant's contact becomes `active`.
pub fn claim(stored: InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Transition, NotClaimable> {
    match effective(stored, expires_at, now) {
        InvitationState::Pending => Ok(Transition {
            from: InvitationState::Pending,
            to: InvitationState::Claimed,
            contact: ContactEffect::Set(PortalState::Active),
        }),
        InvitationState::Expired => Err(NotClaimable::Expired),
        other => Err(NotClaimable::NotPending(other)),
    }
}

/// Whether it may be claimed at `now` ([`claim`] without the transition).
pub fn is_claimable(stored: InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    claim(stored, expires_at, now).is_ok()
}

/// The scheduler's expiry at `now`: `Some` only for a stored `pending` whose
/// expiry has passed. The contact's state follows only while it still names
/// this invitation.
pub fn expire(stored: InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Transition> {
    (stored == InvitationState::Pending && effective(stored, expires_at, now) == InvitationState::Expired).then_some(Transition {
        from: InvitationState::Pending,
        to: InvitationState::Expired,
        contact: ContactEffect::IfStillNamed(PortalState::Expired),
    })
}

/// Revocation by a newer code or link, or by deactivation: `Some` only while
/// stored `pending` (an expired-but-unstored one is revoked too: it is gone
/// either way). The operation around it writes the contact's state.
pub fn revoke(stored: InvitationState) -> Option<Transition> {
    (stored == InvitationState::Pending).then_some(Transition {
        from: InvitationState::Pending,
        to: InvitationState::Revoked,
        contact: ContactEffect::Unchanged,
    })
}

/// Tries at a code's facts of the record that are judged. Every claim of a
/// code whose portal checks facts takes a numbered try from one atomic
/// counter on the code *before* anything is compared ([`fact_try`]): of any
/// number of parallel guesses, only the first [`FACT_TRIES`] counted are
/// judged, whatever arrives first.
pub const FACT_TRIES: u32 = 3;

/// What a claim holding try number `n` (1-based, from the code's counter) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactTry {
    /// Among the first [`FACT_TRIES`]: its facts are compared.
    Judge,
    /// Past them: refused without being compared, and the code locks.
    Refuse,
}

/// The try numbered `n` of a code's facts.
pub fn fact_try(n: u32) -> FactTry {
    if n <= FACT_TRIES { FactTry::Judge } else { FactTry::Refuse }
}

/// The lock that follows try `n` of a stored `pending` invitation's facts,
/// `right` when it was judged and matched: the last judged try when wrong,
/// and every try past it (unjudged), lock it. The contact's state follows
/// while it still names this invitation.
pub fn fact_lock(stored: InvitationState, n: u32, right: bool) -> Option<Transition> {
    let locks = match fact_try(n) {
        FactTry::Judge => !right && n == FACT_TRIES,
        FactTry::Refuse => true,
    };
    (stored == InvitationState::Pending && locks).then_some(Transition {
        from: InvitationState::Pending,
        to: InvitationState::Locked,
        contact: ContactEffect::IfStillNamed(PortalState::Locked),
    })
}

/// Whether the contact's state entry still names an invitation that expires
/// at `expires_at` ([`ContactEffect::IfStillNamed`]).
pub fn still_names(entry: Option<&AccessEntry>, expires_at: DateTime<Utc>) -> bool {
    entry.is_some_and(|e| e.state == PortalState::Pending && e.expires_at == Some(expires_at))
}

/// Whether the portlet (and the unused-codes report) lists it as pending at `now`.
pub fn is_listed_as_pending(stored: InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    effective(stored, expires_at, now) == InvitationState::Pending
}

/// Whether a reminder `days_before` expiry is due at `now` (and not too late).
pub fn reminder_due(expires_at: DateTime<Utc>, days_before: u32, now: DateTime<Utc>) -> bool {
    now < expires_at && now >= expires_at - Duration::days(i64::from(days_before))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_invitation_expires_after_the_portal_ttl() {
        assert_eq!(expires_at(t("2026-01-01T00:00:00Z"), 168), t("2026-01-08T00:00:00Z"));
        assert_eq!(expires_at(t("2026-01-01T00:00:00Z"), 1), t("2026-01-01T01:00:00Z"));
    }

    #[test]
    fn reminders_fall_due_in_the_window_before_expiry() {
        let exp = t("2026-01-08T00:00:00Z");
        assert!(!reminder_due(exp, 2, t("2026-01-05T23:59:59Z")));
        assert!(reminder_due(exp, 2, t("2026-01-06T00:00:00Z")));
        assert!(reminder_due(exp, 2, t("2026-01-07T23:00:00Z")));
        assert!(!reminder_due(exp, 2, exp), "expired: no reminder");
    }

    #[test]
    fn only_pending_unexpired_invitations_are_claimed_and_the_contact_becomes_active() {
        let exp = t("2026-01-08T00:00:00Z");
        let ok = claim(InvitationState::Pending, exp, t("2026-01-07T23:59:59Z")).unwrap();
        assert_eq!((ok.to, ok.contact), (InvitationState::Claimed, ContactEffect::Set(PortalState::Active)));
        assert_eq!(claim(InvitationState::Pending, exp, exp), Err(NotClaimable::Expired), "the expiry instant itself is too late");
        for s in [InvitationState::Claimed, InvitationState::Revoked, InvitationState::Expired, InvitationState::Locked] {
            assert!(!is_claimable(s, exp, t("2026-01-02T00:00:00Z")), "{s:?}");
        }
    }

    #[test]
    fn expiry_moves_only_a_stored_pending_past_its_expiry_and_only_a_contact_still_named() {
        let exp = t("2026-01-08T00:00:00Z");
        assert_eq!(expire(InvitationState::Pending, exp, t("2026-01-07T00:00:00Z")), None, "not yet due");
        let due = expire(InvitationState::Pending, exp, exp).unwrap();
        assert_eq!((due.to, due.contact), (InvitationState::Expired, ContactEffect::IfStillNamed(PortalState::Expired)));
        for s in [InvitationState::Claimed, InvitationState::Revoked, InvitationState::Expired] {
            assert_eq!(expire(s, exp, t("2027-01-01T00:00:00Z")), None, "{s:?} stays");
        }
        let named = AccessEntry::new(PortalState::Pending, Some(exp), t("2026-01-01T00:00:00Z"));
        let newer = AccessEntry::new(PortalState::Pending, Some(t("2026-01-09T00:00:00Z")), t("2026-01-02T00:00:00Z"));
        let active = AccessEntry::new(PortalState::Active, None, t("2026-01-03T00:00:00Z"));
        assert!(still_names(Some(&named), exp));
        assert!(!still_names(Some(&newer), exp) && !still_names(Some(&active), exp) && !still_names(None, exp));
    }

    #[test]
    fn every_reader_sees_an_expired_invitation_before_the_scheduler_stores_it() {
        let exp = t("2026-01-08T00:00:00Z");
        assert_eq!(effective(InvitationState::Pending, exp, exp), InvitationState::Expired);
        assert!(!is_listed_as_pending(InvitationState::Pending, exp, exp));
        assert!(is_listed_as_pending(InvitationState::Pending, exp, t("2026-01-07T00:00:00Z")));
        let entry = AccessEntry::new(PortalState::Pending, Some(exp), t("2026-01-01T00:00:00Z"));
        assert_eq!(contact_state(Some(&entry), t("2026-01-07T23:59:59Z")), PortalState::Pending);
        assert_eq!(contact_state(Some(&entry), exp), PortalState::Expired);
        assert_eq!(contact_state(None, exp), PortalState::None);
        let active = AccessEntry::new(PortalState::Active, None, t("2026-01-01T00:00:00Z"));
        assert_eq!(contact_state(Some(&active), t("2030-01-01T00:00:00Z")), PortalState::Active);
    }

    #[test]
    fn only_the_first_three_tries_are_judged_and_the_third_wrong_or_any_later_locks() {
        assert_eq!([1, 2, 3].map(fact_try), [FactTry::Judge; 3]);
        assert_eq!([4, 5, 28, u32::MAX].map(fact_try), [FactTry::Refuse; 4]);
        assert_eq!(fact_lock(InvitationState::Pending, 1, false), None);
        assert_eq!(fact_lock(InvitationState::Pending, 2, false), None);
        assert_eq!(fact_lock(InvitationState::Pending, 3, true), None, "a right third try claims");
        let lock = fact_lock(InvitationState::Pending, 3, false).unwrap();
        assert_eq!((lock.to, lock.contact), (InvitationState::Locked, ContactEffect::IfStillNamed(PortalState::Locked)));
        assert!(fact_lock(InvitationState::Pending, 4, true).is_some(), "a try past the third locks, whatever it holds");
        assert!(fact_lock(InvitationState::Pending, 7, false).is_some(), "parallel tries past the third lock too");
        for s in [InvitationState::Claimed, InvitationState::Revoked, InvitationState::Expired, InvitationState::Locked] {
            assert_eq!(fact_lock(s, 3, false), None, "{s:?}");
            assert_eq!(fact_lock(s, 4, false), None, "{s:?}");
        }
        assert_eq!(expire(InvitationState::Locked, t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z")), None, "a locked code does not expire");
    }

    #[test]
    fn only_pending_invitations_are_revoked() {
        assert_eq!(revoke(InvitationState::Pending).map(|t| t.to), Some(InvitationState::Revoked));
        for s in [InvitationState::Claimed, InvitationState::Revoked, InvitationState::Expired] {
            assert_eq!(revoke(s), None);
            assert!(s.is_final());
        }
    }
}
