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
//! | `locked`   | the code or link was claimed three times with wrong facts      |
//!
//! The stored state is written by every transition in the same transaction as
//! the change itself. How an invitation's moves (claim, expiry, revocation)
//! change this state, and how a `pending` past its expiry reads as `expired`
//! before the scheduler stores it, is [`super::invitation`]'s to say.

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
    Locked,
}

impl PortalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Expired => "expired",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::None, Self::Pending, Self::Expired, Self::Active, Self::Disabled, Self::Locked].into_iter().find(|s| s.as_str() == raw)
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

}

/// What "resend" does in each state (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResendAction {
    /// Pending: a fresh link replaces the old one.
    Resent,
    /// Expired or locked: the invitation is reset with a new expiry and a new link.
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
    /// The scheduler's auto-generate: the contact has a pending code or access now.
    #[error("the contact no longer needs a code")]
    NotNeeded,
}

pub fn resend_action(state: PortalState) -> Result<ResendAction, TransitionError> {
    match state {
        PortalState::Pending => Ok(ResendAction::Resent),
        PortalState::Expired | PortalState::Locked => Ok(ResendAction::Reset),
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

/// The scheduler's auto-generate issues a code only to a contact that has
/// nothing pending and no access: `none` or `expired`.
pub fn check_auto_generate(state: PortalState) -> Result<(), TransitionError> {
    match state {
        PortalState::None | PortalState::Expired => Ok(()),
        _ => Err(TransitionError::NotNeeded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resend_follows_the_seed() {
        assert_eq!(resend_action(PortalState::Pending), Ok(ResendAction::Resent));
        assert_eq!(resend_action(PortalState::Expired), Ok(ResendAction::Reset));
        assert_eq!(resend_action(PortalState::Locked), Ok(ResendAction::Reset));
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

    #[test]
    fn auto_generate_only_reaches_contacts_with_nothing_pending_and_no_access() {
        assert_eq!(check_auto_generate(PortalState::None), Ok(()));
        assert_eq!(check_auto_generate(PortalState::Expired), Ok(()));
        // A locked code waits for staff: someone tried wrong facts three times.
        for s in [PortalState::Pending, PortalState::Active, PortalState::Disabled, PortalState::Locked] {
            assert_eq!(check_auto_generate(s), Err(TransitionError::NotNeeded));
        }
    }
}
