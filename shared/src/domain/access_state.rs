//! A contact's portal state on one portal, and the rules staff actions follow
//! (seeds 001 and 002).
//!
//! | state      | meaning                                                        |
//! |------------|----------------------------------------------------------------|
//! | `none`     | nothing was ever sent                                          |
//! | `pending`  | a code or link is out and unclaimed                            |
//! | `expired`  | the latest code or link ran out before anyone claimed it       |
//! | `active`   | someone claimed access; the accounts can log in                |
//! | `disabled` | staff deactivated access; every account of it is shut out      |
//!
//! The stored state is written by every transition in the same transaction as
//! the change itself. `expired` needs no write: a stored `pending` whose
//! expiry has passed reads as `expired` ([`AccessEntry::effective`]).

use super::time;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalState {
    None,
    Pending,
    Expired,
    Active,
    Disabled,
}

impl PortalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Expired => "expired",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::None, Self::Pending, Self::Expired, Self::Active, Self::Disabled].into_iter().find(|s| s.as_str() == raw)
    }
}

/// How access was (or is being) given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A pickup/activation code typed on the portal.
    #[default]
    Code,
    /// An emailed activation link.
    Link,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Link => "link",
        }
    }
}

/// The stored state of one contact on one portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub state: PortalState,
    /// Expiry of the pending invitation, when `pending`.
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl AccessEntry {
    pub fn new(state: PortalState, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Self { state, expires_at, updated_at: now }
    }

    /// The state as of `now`: a pending invitation past its expiry is `expired`.
    pub fn effective(&self, now: DateTime<Utc>) -> PortalState {
        match (self.state, self.expires_at) {
            (PortalState::Pending, Some(exp)) if exp <= now => PortalState::Expired,
            (state, _) => state,
        }
    }
}

/// The state of a contact on a portal with no stored entry is `none`.
pub fn effective(entry: Option<&AccessEntry>, now: DateTime<Utc>) -> PortalState {
    entry.map_or(PortalState::None, |e| e.effective(now))
}

/// What "resend" does in each state (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResendAction {
    /// Pending: a fresh link replaces the old one.
    Resent,
    /// Expired: the invitation is reset with a new expiry and a new link.
    Reset,
    /// Disabled: access is enabled again with a create-account email.
    Enabled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("portal access is already active")]
    AlreadyActive,
    #[error("nothing has been sent to this contact yet; activate portal access first")]
    NothingToResend,
}

pub fn resend_action(state: PortalState) -> Result<ResendAction, TransitionError> {
    match state {
        PortalState::Pending => Ok(ResendAction::Resent),
        PortalState::Expired => Ok(ResendAction::Reset),
        PortalState::Disabled => Ok(ResendAction::Enabled),
        PortalState::Active => Err(TransitionError::AlreadyActive),
        PortalState::None => Err(TransitionError::NothingToResend),
    }
}

/// Activation (a new link) is refused only when access is already active.
pub fn check_activate(state: PortalState) -> Result<(), TransitionError> {
    match state {
        PortalState::Active => Err(TransitionError::AlreadyActive),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn pending_reads_as_expired_once_its_expiry_passes() {
        let e = AccessEntry::new(PortalState::Pending, Some(t("2026-01-08T00:00:00Z")), t("2026-01-01T00:00:00Z"));
        assert_eq!(e.effective(t("2026-01-07T23:59:59Z")), PortalState::Pending);
        assert_eq!(e.effective(t("2026-01-08T00:00:00Z")), PortalState::Expired);
        assert_eq!(effective(None, t("2026-01-01T00:00:00Z")), PortalState::None);
        let active = AccessEntry::new(PortalState::Active, None, t("2026-01-01T00:00:00Z"));
        assert_eq!(active.effective(t("2030-01-01T00:00:00Z")), PortalState::Active);
    }

    #[test]
    fn resend_follows_the_seed() {
        assert_eq!(resend_action(PortalState::Pending), Ok(ResendAction::Resent));
        assert_eq!(resend_action(PortalState::Expired), Ok(ResendAction::Reset));
        assert_eq!(resend_action(PortalState::Disabled), Ok(ResendAction::Enabled));
        assert_eq!(resend_action(PortalState::Active), Err(TransitionError::AlreadyActive));
        assert_eq!(resend_action(PortalState::None), Err(TransitionError::NothingToResend));
    }

    #[test]
    fn only_active_access_blocks_activation() {
        assert_eq!(check_activate(PortalState::Active), Err(TransitionError::AlreadyActive));
        for s in [PortalState::None, PortalState::Pending, PortalState::Expired, PortalState::Disabled] {
            assert_eq!(check_activate(s), Ok(()));
        }
    }
}
