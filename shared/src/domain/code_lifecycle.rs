//! The life of a pickup code: pending until claimed, revoked or expired.
//!
//! Rules in one place:
//! - a code expires `code_ttl_hours` after it was generated ([`expires_at`]);
//! - it can be claimed only while pending and strictly before it expires
//!   ([`is_claimable`]); the claim transaction re-checks both in DynamoDB;
//! - a new code for the same contact and portal revokes the earlier pending one;
//! - claimed and revoked codes lose their plain text and leave the portlet.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    Pending,
    Claimed,
    Revoked,
    /// Moved by the scheduler once past expiry, so every view agrees without computing.
    Expired,
}

impl CodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// When a code generated at `created_at` stops being claimable.
pub fn expires_at(created_at: DateTime<Utc>, code_ttl_hours: u32) -> DateTime<Utc> {
    created_at + Duration::hours(i64::from(code_ttl_hours))
}

/// Whether a code may be claimed at `now`.
pub fn is_claimable(state: CodeState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    state == CodeState::Pending && now < expires_at
}

/// Whether the portlet lists the code as pending at `now`.
pub fn is_listed_as_pending(state: CodeState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    is_claimable(state, expires_at, now)
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
    fn a_code_expires_after_the_portal_ttl() {
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
    fn only_pending_unexpired_codes_are_claimable() {
        let exp = t("2026-01-08T00:00:00Z");
        assert!(is_claimable(CodeState::Pending, exp, t("2026-01-07T23:59:59Z")));
        assert!(!is_claimable(CodeState::Pending, exp, exp), "expiry instant itself is too late");
        assert!(!is_claimable(CodeState::Claimed, exp, t("2026-01-02T00:00:00Z")));
        assert!(!is_claimable(CodeState::Revoked, exp, t("2026-01-02T00:00:00Z")));
        assert!(!is_claimable(CodeState::Expired, exp, t("2026-01-02T00:00:00Z")));
    }
}
