//! Staff giving a contact access on a portal (seeds 001 and 002): activate
//! (an activation link is emailed) and resend, which by state resends a
//! pending link, resets an expired one or enables disabled access again.
//! Both issue through [`super::issue`].

use super::issue::{issue, Actor, IssueError, Issued, Step};
use crate::app::App;
use crate::domain::{
    access_state::{check_activate, resend_action, ResendAction},
    ContactId, EmailKind, Method, Portal,
};

/// Activation: a new link emailed, unless access is already active.
pub async fn activate(app: &App, actor: Actor<'_>, contact: &ContactId, portal: &Portal) -> Result<Issued, IssueError> {
    issue(app, actor, contact, portal, Method::Link, |state| {
        check_activate(state)?;
        Ok(Step { email: Some(EmailKind::ActivationLink), action: "activate" })
    })
    .await
}

/// Resend (seed 001): pending → resent, expired → reset, disabled → enabled.
pub async fn resend(app: &App, actor: Actor<'_>, contact: &ContactId, portal: &Portal) -> Result<(ResendAction, Issued), IssueError> {
    let issued = issue(app, actor, contact, portal, Method::Link, |state| {
        Ok(match resend_action(state)? {
            ResendAction::Resent => Step { email: Some(EmailKind::ActivationLink), action: "resend" },
            ResendAction::Reset => Step { email: Some(EmailKind::ActivationLink), action: "reset" },
            ResendAction::Enabled => Step { email: Some(EmailKind::Reactivation), action: "enable" },
        })
    })
    .await?;
    let action = resend_action(issued.previous)?;
    Ok((action, issued))
}
