//! "Email me a new link" on the page of an expired or used activation link:
//! a fresh link goes **only to the contact's email of record** (never to an
//! address the person types), at most once per [`PER`] per contact, and the
//! page answers the same whatever happened, so it tells nobody anything
//! about the link, the contact or their address.
//!
//! A new link is issued only from the contact's newest invitation on the
//! portal (`domain::portlet::is_newest_on`): an older link, replaced by a
//! newer link or a paper code, answers the same and changes nothing, so a
//! forwarded old link cannot void what staff gave since. And only where one
//! could help: the contact's state on the portal is pending (the link was
//! revoked), expired or locked. Active (they have an account) and disabled (staff turned access
//! off) send nothing; neither does a contact without an email.

use super::claim::CLAIMANT;
use super::issue::{issue, Actor, IssueError, Step};
use crate::app::App;
use crate::domain::{access_state::TransitionError, EmailKind, LinkToken, Method, PortalState};

/// How often one contact can be sent a new link this way.
pub const PER: chrono::Duration = chrono::Duration::hours(1);

/// What happened (for the log and the tests; the person sees the same page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewLink {
    Sent,
    /// Nothing was sent, and why.
    NotSent(&'static str),
}

/// Sends a new link for the link whose token is `raw_token`, if one may go.
pub async fn request(app: &App, raw_token: &str) -> anyhow::Result<NewLink> {
    let Ok(token) = LinkToken::parse(raw_token) else {
        return Ok(NewLink::NotSent("malformed token"));
    };
    let Some((hash, owner)) = super::claim::find_link_hashed(app, &token).await? else {
        return Ok(NewLink::NotSent("unknown token"));
    };
    if owner.method != Method::Link {
        return Ok(NewLink::NotSent("not a link"));
    }
    let portals = app.portals.get(&app.store, &owner.tenant_id).await?;
    let Some(portal) = portals.iter().find(|p| p.portal_id == owner.portal_id) else {
        return Ok(NewLink::NotSent("portal gone"));
    };
    let Some(partition) = app.store.contact_partition(&owner.tenant_id, &owner.contact_id).await? else {
        return Ok(NewLink::NotSent("contact gone"));
    };
    if !crate::domain::portlet::is_newest_on(&partition.codes, &owner.portal_id, &hash) {
        return Ok(NewLink::NotSent("a newer invitation replaced this link"));
    }
    if partition.contact.email.is_none() {
        return Ok(NewLink::NotSent("no email of record"));
    }
    if !app.store.take_new_link_slot(&owner.tenant_id, &owner.contact_id, PER, (app.clock)()).await? {
        return Ok(NewLink::NotSent("one was sent within the hour"));
    }
    let actor = Actor { tenant: &owner.tenant_id, name: CLAIMANT };
    // The contact's email of record is the only address `issue` emails.
    let issued = issue(app, actor, &owner.contact_id, portal, Method::Link, |state| match state {
        PortalState::Pending | PortalState::Expired | PortalState::Locked => {
            Ok(Step { email: Some(EmailKind::ActivationLink), action: "new_link_requested" })
        }
        PortalState::Active => Err(TransitionError::AlreadyActive),
        PortalState::Disabled | PortalState::None => Err(TransitionError::NotNeeded),
    })
    .await;
    match issued {
        Ok(_) => {
            tracing::info!(tenant = %owner.tenant_id, portal = %owner.portal_id, "new link sent to the address of record");
            Ok(NewLink::Sent)
        }
        Err(IssueError::Refused(_)) => Ok(NewLink::NotSent("the contact's state needs no new link")),
        Err(IssueError::MissingFacts(_)) => Ok(NewLink::NotSent("the contact lacks a fact the portal checks")),
        Err(IssueError::NoEmailAddress | IssueError::ContactNotFound) => Ok(NewLink::NotSent("no email of record")),
        Err(IssueError::Suppressed(_)) => Ok(NewLink::NotSent("the email of record is suppressed")),
        Err(e) => Err(anyhow::Error::new(e).context("could not send a new link")),
    }
}
