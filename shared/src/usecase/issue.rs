//! Issuing an invitation (a pickup code or an activation link): the one path
//! behind Generate, Generate & Email, Activate, Resend, the scheduler's
//! auto-generate and bulk activation. The caller says, from the contact's
//! current state, what to do ([`Step`]) or refuses ([`TransitionError`]);
//! this module reads, decides, writes one transaction and queues the email.

use crate::domain::delivery::EmailProblem;
use crate::domain::keyring::HashKey;
use crate::app::App;
use crate::domain::{
    access_state::TransitionError, channel::Unreachable, identity, invitation, time, Fact, AccessEntry, CodeHash, Contact, ContactId, DocumentId, EmailKind,
    LinkToken, MailJob, Method, PickupCode, Portal, PortalState, Recipient, TenantId,
};
use crate::mail::templates::TemplateVars;
use crate::retry::{retry, Attempt, Policy};
use crate::store::{items::AuditItem, Invitation, TxError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub use super::outbox::{queue_email, Actor, QueueEmailError};
use super::outbox::sealed_messages;

/// Why an invitation was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("contact not found")]
    ContactNotFound,
    /// The contact's state does not allow it (already active, nothing to resend, …).
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// An email was asked for and the contact has no address; nothing was stored.
    #[error("contact has no email address")]
    NoEmailAddress,
    /// The portal sends this kind by text alone and the contact has no phone number; nothing was stored.
    #[error("contact has no phone number, and the portal sends this by text message (sms) only")]
    NoPhoneNumber,
    /// An email was asked for and the contact's address bounced hard or was complained about
    /// (`domain::delivery`); nothing was stored.
    #[error("{} {}: nothing was sent. Change the contact's email to send again", match .0 { EmailProblem::Bounced => "This contact's email address bounced", EmailProblem::Complained => "This contact marked an email from you as spam" }, "and is on your suppression list")]
    Suppressed(EmailProblem),
    /// The portal checks facts of the record at claim that the contact lacks; nothing was stored.
    #[error("the portal checks {} at claim and this contact has no {} on record: add it to the contact first", names(.0), names(.0))]
    MissingFacts(Vec<Fact>),
    #[error("the contact changed repeatedly meanwhile; try again")]
    KeptChanging(#[source] TxError),
    /// Stored, but its email job could not be queued (the log entry says so).
    #[error(transparent)]
    EmailNotQueued(#[from] QueueEmailError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn names(facts: &[Fact]) -> String {
    facts.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" and ")
}

/// What to do, decided from the contact's state on the portal.
#[derive(Debug, Clone)]
pub struct Step {
    /// The email to send with it, if any.
    pub email: Option<EmailKind>,
    /// The audit action recorded.
    pub action: &'static str,
}

/// The result of issuing.
#[derive(Clone)]
pub struct Issued {
    /// The plain code, for codes (links' tokens are only in the email).
    pub code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<DocumentId>,
    /// The state before.
    pub previous: PortalState,
    pub step: Step,
}

crate::debug_redacting!(Issued { created_at, expires_at, email_document_id, previous, step } hiding { code });


/// The secret being issued: its hash, the code to show, and the link to email.
fn secret(key: &HashKey, method: Method, claim_url: &str) -> (CodeHash, Option<String>, String) {
    match method {
        Method::Code => {
            let code = PickupCode::generate();
            (key.hasher.hash(&code), Some(code.display()), String::new())
        }
        Method::Link => {
            let token = LinkToken::generate();
            (token.hash(&key.hasher), None, token.link(claim_url))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vars(app: &App, tenant: &TenantId, tenant_name: &str, contact: &Contact, portal: &Portal, code: Option<&str>, link: String, expires_at: DateTime<Utc>) -> TemplateVars {
    TemplateVars {
        contact_name: contact.name.clone(),
        portal_name: portal.name.clone(),
        tenant_name: tenant_name.to_owned(),
        code: code.unwrap_or_default().into(),
        link: link.into(),
        claim_url: app.claim_url_for(tenant, portal, contact.locale.as_ref()),
        expires_at: time::format(&expires_at),
        account_email: String::new(),
    }
}

/// Who issues, to whom, on which portal, read just before.
pub struct Target<'a> {
    pub actor: &'a str,
    pub tenant: &'a TenantId,
    pub contact: &'a Contact,
    pub portal: &'a Portal,
    pub method: Method,
    /// The contact's state on the portal now.
    pub previous: PortalState,
    pub now: DateTime<Utc>,
    /// The current version of the hash key: what hashes the new secret and seals its email.
    pub key: &'a HashKey,
    /// What the email calls the tenant (`App::tenant_name`).
    pub tenant_name: &'a str,
}

/// Builds the invitation for a contact in the given state: the secret, its
/// expiry, the email and audit entries, the new state. Writes nothing.
pub fn plan(app: &App, target: &Target<'_>, step: Step, revoke: Vec<CodeHash>) -> Result<(Invitation, Issued), IssueError> {
    let Target { actor, tenant, contact, portal, method, previous, now, key, tenant_name } = *target;
    let missing = identity::missing(&portal.claim_checks, &contact.facts);
    if !missing.is_empty() {
        return Err(IssueError::MissingFacts(missing));
    }
    // Where the messages go; none at all refuses the send (a channel the contact lacks is left out).
    let recipients = match step.email {
        Some(kind) => Some(recipients(contact, portal, kind)?),
        None => None,
    };
    let ttl = match method {
        Method::Code => portal.code_ttl_hours,
        Method::Link => portal.link_ttl_hours,
    };
    let expires_at = invitation::expires_at(now, ttl);
    let (hash, code, link) = secret(key, method, &app.claim_url_for(tenant, portal, contact.locale.as_ref()));
    let messages = match (step.email, recipients) {
        (Some(kind), Some(to)) => {
            let v = vars(app, tenant, tenant_name, contact, portal, code.as_deref(), link, expires_at);
            sealed_messages(&key.sealer, tenant, contact, portal, kind, to, &v, now)
        }
        _ => Vec::new(),
    };
    let detail = BTreeMap::from([
        ("method".to_owned(), method.as_str().to_owned()),
        ("previous_state".to_owned(), previous.as_str().to_owned()),
        ("emailed".to_owned(), (!messages.is_empty()).to_string()),
    ]);
    let invitation = Invitation {
        tenant_id: tenant.clone(),
        contact_id: contact.contact_id.clone(),
        portal_id: portal.portal_id.clone(),
        method,
        code_display: code.clone(),
        hash,
        created_at: now,
        expires_at,
        created_by: actor.to_owned(),
        contact_name: contact.name.clone(),
        revoke,
        // A new code for someone already active leaves them active.
        access: (previous != PortalState::Active).then(|| AccessEntry::new(PortalState::Pending, Some(expires_at), now)),
        unless_active: method == Method::Link,
        audit: AuditItem::contact(tenant, &contact.contact_id, Some(&portal.portal_id), actor, step.action, now, detail),
        email_document_id: messages.first().map(|e| e.document_id.clone()),
        messages,
        job_marker: None,
    };
    let issued = Issued {
        code,
        created_at: now,
        expires_at,
        email_document_id: invitation.email_document_id.clone(),
        previous,
        step,
    };
    Ok((invitation, issued))
}

/// Issues a code or link for a contact on a portal. `decide` sees the
/// current state and says what to do, or refuses. Emailing a contact
/// without an address stores nothing.
pub async fn issue(
    app: &App,
    actor: Actor<'_>,
    contact_id: &ContactId,
    portal: &Portal,
    method: Method,
    decide: impl Fn(PortalState) -> Result<Step, TransitionError>,
) -> Result<Issued, IssueError> {
    let tenant = actor.tenant;
    let decide = &decide;
    // The contact changed (claimed, activated, deleted) or, at 2^-50, the code
    // collided: read again and decide afresh.
    let issued = retry(Policy::immediate(3), IssueError::KeptChanging, |attempt| async move {
        match issue_once(app, actor, contact_id, portal, method, decide).await {
            Ok(issued) => Attempt::Done(issued),
            Err(Err(e)) => Attempt::Stop(e),
            Err(Ok(cancelled)) => {
                tracing::info!(attempt, error = %cancelled, "invitation transaction cancelled");
                Attempt::Again(cancelled)
            }
        }
    })
    .await?;
    tracing::info!(tenant = %tenant, portal = %portal.portal_id, method = method.as_str(), action = issued.step.action, "invitation issued");
    crate::metrics::emf::count("CodesGenerated", &[("PortalId", portal.portal_id.as_str())]);
    if let Some(document_id) = &issued.email_document_id {
        queue_email(app, MailJob { tenant_id: tenant.clone(), contact_id: contact_id.clone(), document_id: document_id.clone() }).await?;
    }
    Ok(issued)
}

/// One read–decide–write; `Err(Ok(_))` is a cancelled transaction (nothing written).
async fn issue_once(
    app: &App,
    actor: Actor<'_>,
    contact_id: &ContactId,
    portal: &Portal,
    method: Method,
    decide: &impl Fn(PortalState) -> Result<Step, TransitionError>,
) -> Result<Issued, Result<TxError, IssueError>> {
    let tenant = actor.tenant;
    let fail = |e: IssueError| Err(e);
    // The contact, its portal states and its codes: one Query of its partition.
    let partition = app.store.contact_partition(tenant, contact_id).await.map_err(|e| fail(e.into()))?.ok_or(Err(IssueError::ContactNotFound))?;
    let (contact, access) = (partition.contact, partition.access);
    let now = (app.clock)();
    let previous = invitation::contact_state(access.get(portal.portal_id.as_str()), now);
    let step = decide(previous).map_err(|e| fail(e.into()))?;
    if previous == PortalState::Disabled {
        // Nothing of a stopped deactivation may come back with the new state.
        match super::deactivate::finish_before_enabling(app, tenant, contact_id, &portal.portal_id).await {
            Ok(()) => {}
            Err(super::deactivate::FinishError::KeptChanging(e)) => return Err(Ok(e)),
            Err(super::deactivate::FinishError::Unexpected(e)) => return Err(Err(e.into())),
        }
    }
    let revoke = if previous == PortalState::Disabled {
        // Finishing the deactivation changed the partition: read its codes again.
        app.store.pending_code_hashes(tenant, contact_id, &portal.portal_id).await.map_err(|e| fail(e.into()))?
    } else {
        partition.codes.into_iter().filter(|c| c.portal_id == portal.portal_id && c.state == crate::domain::InvitationState::Pending).map(|c| c.hash).collect()
    };
    let keys = app.keys.get().await.map_err(|e| fail(e.into()))?;
    let tenant_name = app.tenant_name(tenant).await;
    let target = Target { actor: actor.name, tenant, contact: &contact, portal, method, previous, now, key: &keys.current, tenant_name: &tenant_name };
    let (invitation, issued) = plan(app, &target, step, revoke).map_err(fail)?;
    match app.store.issue_invitation(&invitation).await {
        Ok(()) => Ok(issued),
        Err(e @ TxError::Cancelled(_)) => Err(Ok(e)),
        Err(TxError::Unexpected(e)) => Err(Err(e.into())),
    }
}

/// Where a kind's messages to a contact go on a portal: one recipient per
/// channel it names that the contact can be reached by (`domain::channel`).
/// None at all is refused, by the first channel's reason.
pub fn recipients(contact: &Contact, portal: &Portal, kind: EmailKind) -> Result<Vec<Recipient>, IssueError> {
    let reach = portal.reach(contact, kind);
    match (reach.recipients.is_empty(), reach.missing.first()) {
        (true, Some(Unreachable::NoEmail)) => Err(IssueError::NoEmailAddress),
        (true, Some(Unreachable::EmailSuppressed(problem))) => Err(IssueError::Suppressed(*problem)),
        (true, Some(Unreachable::NoPhone)) => Err(IssueError::NoPhoneNumber),
        _ => Ok(reach.recipients),
    }
}
