//! `POST /v1/contacts/{contact_id}/codes`: Generate, or Generate & Email (seed 000).
//!
//! A new code for a contact and portal revokes the earlier pending one. With
//! `send_email` the code and a `queued` email log entry are stored in the same
//! transaction and the job goes on the mail queue: SES is never called inline,
//! so an SES outage delays the email but cannot lose it.

use super::problem::ApiError;
use super::request::{caller, finish, json_body, path_param, respond};
use crate::app::App;
use crate::domain::{
    code_lifecycle, portal::{default_portal, DefaultPortal}, time, Caller, Contact, ContactId, PickupCode, Portal,
    PortalId, Scope,
};
use crate::mail::{templates::TemplateVars, EmailKind, EmailStatus, MailJob};
use crate::store::{items::EmailItem, keys, CodeIssue, EmailKey, TxError};
use chrono::{DateTime, Utc};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    #[serde(default)]
    pub portal_id: Option<String>,
    #[serde(default)]
    pub send_email: bool,
}

/// The code as staff see it right after generating it.
#[derive(Debug, Serialize)]
pub struct IssuedCode {
    pub code: String,
    pub portal_id: PortalId,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    finish(run(app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let body: GenerateRequest = json_body(req, true)?;
    let portal_id = body
        .portal_id
        .as_deref()
        .map(|p| PortalId::parse(p).map_err(|e| ApiError::validation("/portal_id", format!("portal_id {e}"))))
        .transpose()?;
    let issued = issue_code(app, &caller, &contact_id, portal_id.as_ref(), body.send_email).await?;
    Ok(respond(StatusCode::CREATED, &issued))
}

/// The portal a request means: the named one, or the tenant's single default.
pub async fn resolve_portal(app: &App, caller: &Caller, portal_id: Option<&PortalId>) -> Result<Portal, ApiError> {
    let portals = app.portals.get(&app.store, &caller.tenant_id).await?;
    match portal_id {
        Some(id) => match portals.iter().find(|p| &p.portal_id == id) {
            Some(p) => Ok(p.clone()),
            // Not in this instance's cache: it may be new, so ask the table.
            None => app
                .store
                .get_portal(&caller.tenant_id, id)
                .await?
                .ok_or_else(|| ApiError::validation("/portal_id", format!("portal_id: no portal {id} in this tenant"))),
        },
        None => match default_portal(&portals) {
            DefaultPortal::Found(p) => Ok(p.clone()),
            DefaultPortal::None => Err(ApiError::validation(
                "/portal_id",
                "the tenant has no default portal; name one with portal_id",
            )),
            DefaultPortal::Ambiguous => Err(ApiError::validation(
                "/portal_id",
                "the tenant has several default portals; name one with portal_id",
            )),
        },
    }
}

/// Generates a code for a contact (and, with `send_email`, queues its email).
/// The single code path behind every way a code is issued.
pub async fn issue_code(
    app: &App,
    caller: &Caller,
    contact_id: &ContactId,
    portal_id: Option<&PortalId>,
    send_email: bool,
) -> Result<IssuedCode, ApiError> {
    let tenant = &caller.tenant_id;
    let contact = app.store.get_contact(tenant, contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
    let portal = resolve_portal(app, caller, portal_id).await?;
    if send_email && contact.email.is_none() {
        return Err(ApiError::validation("/send_email", "contact has no email address"));
    }
    for attempt in 1..=3 {
        let revoke = app.store.pending_code_hashes(tenant, contact_id, &portal.portal_id).await?;
        let code = PickupCode::generate();
        let created_at = (app.clock)();
        let expires_at = code_lifecycle::expires_at(created_at, portal.code_ttl_hours);
        let email = send_email.then(|| pickup_email(caller, &contact, &portal, &code, created_at, expires_at));
        let issue = CodeIssue {
            tenant_id: tenant.clone(),
            contact_id: contact_id.clone(),
            portal_id: portal.portal_id.clone(),
            code_display: code.display(),
            code_hash: app.hasher.hash(&code),
            created_at,
            expires_at,
            created_by: caller.sub.clone(),
            revoke,
            email,
        };
        match app.store.issue_code(&issue).await {
            Ok(()) => {
                tracing::info!(tenant = %tenant, portal = %portal.portal_id, revoked = issue.revoke.len(), "code issued");
                let email_document_id = issue.email.as_ref().map(|e| e.document_id.clone());
                if let Some(document_id) = &email_document_id {
                    enqueue_email(app, tenant.as_str(), contact_id.as_str(), document_id).await?;
                }
                return Ok(IssuedCode {
                    code: issue.code_display,
                    portal_id: portal.portal_id,
                    created_at,
                    expires_at,
                    email_document_id,
                });
            }
            // The contact vanished, an old code was claimed meanwhile, or (2^-50)
            // the code collided: read again and retry with a fresh code.
            Err(TxError::Cancelled { reasons }) => {
                tracing::info!(attempt, ?reasons, "code transaction cancelled; retrying");
                if app.store.get_contact(tenant, contact_id).await?.is_none() {
                    return Err(ApiError::NotFound("contact"));
                }
            }
            Err(TxError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the contact's codes changed repeatedly while generating; try again".into()))
}

fn pickup_email(
    caller: &Caller,
    contact: &Contact,
    portal: &Portal,
    code: &PickupCode,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> EmailItem {
    let document_id = uuid::Uuid::now_v7().to_string();
    let vars = TemplateVars {
        contact_name: contact.name.clone(),
        portal_name: portal.name.clone(),
        tenant_name: caller.tenant_id.to_string(),
        code: code.display(),
        link: String::new(),
        claim_url: portal.claim_url.clone(),
        expires_at: time::format(&expires_at),
    };
    EmailItem {
        pk: keys::contact_pk(&caller.tenant_id, &contact.contact_id),
        sk: keys::email_sk(&document_id),
        document_id,
        tenant_id: caller.tenant_id.to_string(),
        contact_id: contact.contact_id.to_string(),
        portal_id: portal.portal_id.to_string(),
        kind: EmailKind::PickupCode,
        to: contact.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
        status: EmailStatus::Queued,
        vars: vars.to_map(),
        subject: None,
        body_text: None,
        body_html: None,
        ses_message_id: None,
        created_at,
        sent_at: None,
        failure_reason: None,
        attempts: 0,
        lease_until_ms: None,
    }
}

/// Puts the job on the mail queue. If SQS refuses, the log entry says so and
/// the caller gets a 503: the code exists, and generating again is safe.
pub async fn enqueue_email(app: &App, tenant_id: &str, contact_id: &str, document_id: &str) -> Result<(), ApiError> {
    let job = MailJob { tenant_id: tenant_id.into(), contact_id: contact_id.into(), document_id: document_id.into() };
    if let Err(e) = app.mail_queue.enqueue(&job).await {
        tracing::error!(error = ?e, "could not queue an email");
        let key = EmailKey { tenant_id: job.tenant_id, contact_id: job.contact_id, document_id: job.document_id };
        app.store.mark_email_unsent(&key, "the email job could not be queued", true).await?;
        return Err(ApiError::Unavailable(
            "the code was stored but its email could not be queued; generate again to retry".into(),
        ));
    }
    Ok(())
}
