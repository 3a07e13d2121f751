//! A tenant's sending quota: every tenant shares the deployment's SES
//! identity, so one tenant's burst (or a stuck loop) must not use up the
//! account's sending rate, or earn the identity a suspension that would stop
//! every tenant's email.
//!
//! Each tenant may send `emails_per_hour` emails (default
//! [`DEFAULT_EMAILS_PER_HOUR`]; an admin may set it up to the deployment's
//! maximum) per clock hour (UTC): a fixed window, counted as emails are
//! handed to SES. An email past the quota is not dropped and not left to be
//! received again (each receive counts toward the mail queue's
//! maxReceiveCount and the DLQ): it is marked `throttled` and its job is sent
//! to the queue again with a delay that ends when the window does (at most
//! SQS's 15 minutes; a longer wait is a few such hops).

use chrono::{DateTime, Duration, DurationRound, Utc};

pub const DEFAULT_EMAILS_PER_HOUR: u32 = 500;
/// Text messages cost per segment and carriers filter bursts: a lower default.
pub const DEFAULT_SMS_PER_HOUR: u32 = 100;
/// The deployment's maximum `sms_per_hour` when `MAX_SMS_PER_HOUR` is not set.
pub const DEFAULT_MAX_SMS_PER_HOUR: u32 = 1_000;
/// The deployment's maximum when `MAX_EMAILS_PER_HOUR` is not set.
pub const DEFAULT_MAX_EMAILS_PER_HOUR: u32 = 5_000;
/// SQS's longest DelaySeconds.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// The clock hour `now` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
}

impl Window {
    pub fn of(now: DateTime<Utc>) -> Self {
        Self { start: now.duration_trunc(Duration::hours(1)).expect("an hour divides any timestamp") }
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::hours(1)
    }

    /// The window's name in a key: `YYYYMMDDHH` (written out rather than
    /// through chrono's strftime, which would link its format parser).
    pub fn label(&self) -> String {
        use chrono::{Datelike as _, Timelike as _};
        let t = self.start;
        format!("{:04}{:02}{:02}{:02}", t.year(), t.month(), t.day(), t.hour())
    }

    /// How long a throttled job waits before it is tried again: until the
    /// window ends (plus a second, so it lands in the next one), within 1..=900 s.
    pub fn delay_seconds(&self, now: DateTime<Utc>) -> u32 {
        let left = (self.end() - now).num_seconds().max(0) + 1;
        (left as u32).clamp(1, MAX_DELAY_SECONDS)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuotaError {
    #[error("{0} must be at least 1")]
    TooLow(&'static str),
    #[error("{0} may be at most {1} in this deployment")]
    AboveMaximum(&'static str, u32),
}

/// `requested` if a tenant may have it under the deployment's `maximum`.
pub fn check_emails_per_hour(requested: u64, maximum: u32) -> Result<u32, QuotaError> {
    check_per_hour("emails_per_hour", requested, maximum)
}

/// `requested` for the quota named `field` if within the deployment's `maximum`.
pub fn check_per_hour(field: &'static str, requested: u64, maximum: u32) -> Result<u32, QuotaError> {
    match requested {
        0 => Err(QuotaError::TooLow(field)),
        n if n > u64::from(maximum) => Err(QuotaError::AboveMaximum(field, maximum)),
        n => Ok(n as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_window_is_the_clock_hour() {
        let w = Window::of(at("2026-12-02T18:59:59.900Z"));
        assert_eq!(w.start, at("2026-12-02T18:00:00Z"));
        assert_eq!(w.end(), at("2026-12-02T19:00:00Z"));
        assert_eq!(w.label(), "2026120218");
        assert_ne!(Window::of(at("2026-12-02T19:00:00Z")), w);
    }

    #[test]
    fn a_throttled_job_waits_until_the_window_ends_within_sqs_limits() {
        let w = Window::of(at("2026-12-02T18:59:57Z"));
        assert_eq!(w.delay_seconds(at("2026-12-02T18:59:57Z")), 4);
        assert_eq!(w.delay_seconds(at("2026-12-02T18:10:00Z")), 900, "at most 15 minutes per hop");
        assert_eq!(w.delay_seconds(at("2026-12-02T19:00:05Z")), 1, "already over: soon");
    }

    #[test]
    fn a_tenant_s_quota_stays_within_the_deployment_s() {
        assert_eq!(check_emails_per_hour(500, 5000), Ok(500));
        assert_eq!(check_emails_per_hour(5000, 5000), Ok(5000));
        assert_eq!(check_emails_per_hour(5001, 5000), Err(QuotaError::AboveMaximum("emails_per_hour", 5000)));
        assert_eq!(check_emails_per_hour(0, 5000), Err(QuotaError::TooLow("emails_per_hour")));
        assert_eq!(check_per_hour("sms_per_hour", 1001, 1000).unwrap_err().to_string(), "sms_per_hour may be at most 1000 in this deployment");
    }
}
