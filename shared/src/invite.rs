//! Issuing an invitation (a pickup code or an activation link): the one code
//! path behind Generate, Generate & Email, Activate, Resend (and bulk
//! activation). The caller says, from the contact's current state, what to
//! do ([`Step`]); this module reads, decides, writes one transaction and
//! queues the email.

use crate::app::App;
use crate::domain::{
    access_state::effective, code_lifecycle, time, AccessEntry, Caller, CodeHash, Contact, ContactId, LinkToken,
    Method, PickupCode, Portal, PortalState, TenantId,
};
use crate::http::problem::ApiError;
use crate::mail::{templates::TemplateVars, EmailKind, MailJob};
use crate::store::{items::AuditItem, items::EmailItem, EmailKey, Invitation, TxError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What to do, decided from the contact's state on the portal.
#[derive(Debug, Clone)]
pub struct Step {
    /// The email to send with it, if any.
    pub email: Option<EmailKind>,
    /// The audit action recorded.
    pub action: &'static str,
}

/// The result of issuing.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The plain code, for codes (links' tokens are only in the email).
    pub code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<String>,
    /// The state before.
    pub previous: PortalState,
    pub step: Step,
}

/// The secret being issued: its hash, the code to show, and the link to email.
fn secret(app: &App, method: Method, portal: &Portal) -> (CodeHash, Option<String>, String) {
    match method {
        Method::Code => {
            let code = PickupCode::generate();
            (app.hasher.hash(&code), Some(code.display()), String::new())
        }
        Method::Link => {
            let token = LinkToken::generate();
            (token.hash(&app.hasher), None, token.link(&portal.claim_url))
        }
    }
}

fn vars(tenant: &TenantId, contact: &Contact, portal: &Portal, code: Option<&str>, link: String, expires_at: DateTime<Utc>) -> TemplateVars {
    TemplateVars {
        contact_name: contact.name.clone(),
        portal_name: portal.name.clone(),
        tenant_name: tenant.to_string(),
        code: code.unwrap_or_default().to_owned(),
        link,
        claim_url: portal.claim_url.clone(),
        expires_at: time::format(&expires_at),
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
}

/// Builds the invitation for a contact in the given state: the secret, its
/// expiry, the email and audit entries, the new state. Writes nothing.
pub fn plan(app: &App, target: &Target<'_>, step: Step, revoke: Vec<CodeHash>) -> Result<(Invitation, Issued), ApiError> {
    let Target { actor, tenant, contact, portal, method, previous, now } = *target;
    let to = match (step.email, &contact.email) {
        (Some(_), None) => return Err(ApiError::validation("/send_email", "contact has no email address")),
        (Some(_), Some(to)) => Some(to.clone()),
        (None, _) => None,
    };
    let ttl = match method {
        Method::Code => portal.code_ttl_hours,
        Method::Link => portal.link_ttl_hours,
    };
    let expires_at = code_lifecycle::expires_at(now, ttl);
    let (hash, code, link) = secret(app, method, portal);
    let email = match (step.email, to) {
        (Some(kind), Some(to)) => {
            let v = vars(tenant, contact, portal, code.as_deref(), link, expires_at);
            Some(EmailItem::queued(tenant, &contact.contact_id, &portal.portal_id, kind, &to, v.to_map(), now))
        }
        _ => None,
    };
    let detail = BTreeMap::from([
        ("method".to_owned(), method.as_str().to_owned()),
        ("previous_state".to_owned(), previous.as_str().to_owned()),
        ("emailed".to_owned(), email.is_some().to_string()),
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
        email_document_id: email.as_ref().map(|e| e.document_id.clone()),
        email,
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
/// current state and says what to do, or refuses (e.g. 409 when active).
/// Emailing a contact without an address is 422 and stores nothing.
pub async fn invite(
    app: &App,
    caller: &Caller,
    contact_id: &ContactId,
    portal: &Portal,
    method: Method,
    decide: impl Fn(PortalState) -> Result<Step, ApiError>,
) -> Result<Issued, ApiError> {
    let tenant = &caller.tenant_id;
    for attempt in 1..=3 {
        let (contact, access) = app
            .store
            .get_contact_with_access(tenant, contact_id)
            .await?
            .ok_or(ApiError::NotFound("contact"))?;
        let now = (app.clock)();
        let previous = effective(access.get(portal.portal_id.as_str()), now);
        let step = decide(previous)?;
        let revoke = app.store.pending_code_hashes(tenant, contact_id, &portal.portal_id).await?;
        let target = Target { actor: &caller.sub, tenant, contact: &contact, portal, method, previous, now };
        let (invitation, issued) = plan(app, &target, step, revoke)?;
        match app.store.issue_invitation(&invitation).await {
            Ok(()) => {
                tracing::info!(tenant = %tenant, portal = %portal.portal_id, method = method.as_str(), action = issued.step.action, revoked = invitation.revoke.len(), "invitation issued");
                crate::metrics::emf::count("CodesGenerated", &[("PortalId", portal.portal_id.as_str())]);
                if let Some(document_id) = &issued.email_document_id {
                    enqueue_email(app, tenant.as_str(), contact_id.as_str(), document_id).await?;
                }
                return Ok(issued);
            }
            // The contact changed (claimed, activated, deleted) or, at 2^-50, the
            // code collided: read again and decide afresh.
            Err(TxError::Cancelled { reasons }) => {
                tracing::info!(attempt, ?reasons, "invitation transaction cancelled; retrying");
            }
            Err(TxError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the contact changed repeatedly meanwhile; try again".into()))
}

/// Puts an email job on the mail queue. If SQS refuses, the log entry says
/// so and the caller gets a 503: what was stored stays valid and the
/// operation can be repeated.
pub async fn enqueue_email(app: &App, tenant_id: &str, contact_id: &str, document_id: &str) -> Result<(), ApiError> {
    let job = MailJob { tenant_id: tenant_id.into(), contact_id: contact_id.into(), document_id: document_id.into() };
    if let Err(e) = app.mail_queue.enqueue(&job).await {
        tracing::error!(error = ?e, "could not queue an email");
        let key = EmailKey { tenant_id: job.tenant_id, contact_id: job.contact_id, document_id: job.document_id };
        app.store.mark_email_unsent(&key, "the email job could not be queued", true).await?;
        return Err(ApiError::Unavailable("the change was stored but its email could not be queued; repeat it to retry".into()));
    }
    Ok(())
}
