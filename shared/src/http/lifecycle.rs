//! The `lifecycle` function: activate, resend/reset/enable and deactivate a
//! contact's portal access (seeds 001 and 002).
//!
//! - `POST /v1/contacts/{contact_id}/portal/activate` → 202: an activation
//!   link is emailed (409 when already active, 422 without an email address).
//! - `POST /v1/contacts/{contact_id}/portal/resend` → 202: pending → `resent`,
//!   expired → `reset`, disabled → `enabled`; active → 409.
//! - `POST /v1/contacts/{contact_id}/portal/deactivate` → 200: every account
//!   loses access at once, pending codes and links are revoked, and a notice
//!   is emailed. Repeating it changes nothing and sends nothing.

use super::generate::resolve_portal;
use super::problem::ApiError;
use super::request::{caller, finish, json_body, optional_portal_id, path_param, respond, route_key};
use crate::app::App;
use crate::domain::{
    access_state::{check_activate, effective, resend_action, ResendAction, TransitionError},
    time, Caller, ContactId, Method, PortalId, PortalState, Scope,
};
use crate::invite::{enqueue_email, invite, Step};
use crate::mail::{templates::TemplateVars, EmailKind};
use crate::store::{items::AuditItem, items::EmailItem, Deactivation, TxError};
use chrono::{DateTime, Utc};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    #[serde(default)]
    pub portal_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Activated {
    pub state: PortalState,
    pub email_document_id: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Resent {
    pub state: PortalState,
    pub action: ResendAction,
    pub email_document_id: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Deactivated {
    pub state: PortalState,
    pub email_document_id: Option<String>,
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        ApiError::Conflict(e.to_string())
    }
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    finish(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let body: LifecycleRequest = json_body(req, true)?;
    let portal_id = optional_portal_id(body.portal_id.as_deref())?;
    match route_key(req).as_str() {
        "POST /v1/contacts/{contact_id}/portal/activate" => activate(app, &caller, &contact_id, portal_id.as_ref()).await,
        "POST /v1/contacts/{contact_id}/portal/resend" => resend(app, &caller, &contact_id, portal_id.as_ref()).await,
        "POST /v1/contacts/{contact_id}/portal/deactivate" => deactivate(app, &caller, &contact_id, portal_id.as_ref()).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

async fn activate(app: &App, caller: &Caller, contact: &ContactId, portal: Option<&PortalId>) -> Result<Response<Body>, ApiError> {
    let portal = resolve_portal(app, caller, portal).await?;
    let issued = invite(app, caller, contact, &portal, Method::Link, |state| {
        check_activate(state)?;
        Ok(Step { email: Some(EmailKind::ActivationLink), action: "activate" })
    })
    .await?;
    let body = Activated { state: PortalState::Pending, email_document_id: issued.email_document_id, expires_at: issued.expires_at };
    Ok(respond(StatusCode::ACCEPTED, &body))
}

async fn resend(app: &App, caller: &Caller, contact: &ContactId, portal: Option<&PortalId>) -> Result<Response<Body>, ApiError> {
    let portal = resolve_portal(app, caller, portal).await?;
    let issued = invite(app, caller, contact, &portal, Method::Link, |state| {
        Ok(match resend_action(state)? {
            ResendAction::Resent => Step { email: Some(EmailKind::ActivationLink), action: "resend" },
            ResendAction::Reset => Step { email: Some(EmailKind::ActivationLink), action: "reset" },
            ResendAction::Enabled => Step { email: Some(EmailKind::Reactivation), action: "enable" },
        })
    })
    .await?;
    let action = resend_action(issued.previous)?;
    let body = Resent {
        state: PortalState::Pending,
        action,
        email_document_id: issued.email_document_id,
        expires_at: issued.expires_at,
    };
    Ok(respond(StatusCode::ACCEPTED, &body))
}

async fn deactivate(app: &App, caller: &Caller, contact_id: &ContactId, portal: Option<&PortalId>) -> Result<Response<Body>, ApiError> {
    let portal = resolve_portal(app, caller, portal).await?;
    let tenant = &caller.tenant_id;
    for attempt in 1..=3 {
        let partition = app.store.contact_partition(tenant, contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
        let now = (app.clock)();
        let seen = partition.access.get(portal.portal_id.as_str()).cloned();
        let previous = effective(seen.as_ref(), now);
        if previous == PortalState::Disabled {
            return Ok(respond(StatusCode::OK, &Deactivated { state: PortalState::Disabled, email_document_id: None }));
        }
        let accounts = partition
            .accounts
            .iter()
            .filter(|a| a.portal_id == portal.portal_id && a.disabled_at.is_none())
            .map(|a| a.email.clone())
            .collect::<Vec<_>>();
        let revoke = partition
            .codes
            .iter()
            .filter(|c| c.portal_id == portal.portal_id && c.state == crate::domain::CodeState::Pending)
            .map(|c| c.hash.clone())
            .collect();
        let contact = &partition.contact;
        let email = contact.email.as_ref().map(|to| {
            let vars = TemplateVars {
                contact_name: contact.name.clone(),
                portal_name: portal.name.clone(),
                tenant_name: tenant.to_string(),
                claim_url: portal.claim_url.clone(),
                ..Default::default()
            };
            EmailItem::queued(tenant, contact_id, &portal.portal_id, EmailKind::Deactivation, to, vars.to_map(), now)
        });
        let detail = BTreeMap::from([
            ("previous_state".to_owned(), previous.as_str().to_owned()),
            ("accounts_disabled".to_owned(), accounts.len().to_string()),
        ]);
        let d = Deactivation {
            tenant_id: tenant.clone(),
            contact_id: contact_id.clone(),
            portal_id: portal.portal_id.clone(),
            seen,
            accounts,
            revoke,
            email,
            audit: AuditItem::contact(tenant, contact_id, Some(&portal.portal_id), &caller.sub, "deactivate", now, detail),
            now,
        };
        match app.store.deactivate(&d).await {
            Ok(()) => {
                tracing::info!(tenant = %tenant, portal = %portal.portal_id, accounts = d.accounts.len(), "access deactivated");
                let email_document_id = d.email.as_ref().map(|e| e.document_id.clone());
                if let Some(doc) = &email_document_id {
                    enqueue_email(app, tenant.as_str(), contact_id.as_str(), doc).await?;
                }
                return Ok(respond(StatusCode::OK, &Deactivated { state: PortalState::Disabled, email_document_id }));
            }
            Err(TxError::Cancelled { reasons }) => tracing::info!(attempt, ?reasons, "deactivation raced a change; retrying"),
            Err(TxError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the contact changed repeatedly meanwhile; try again".into()))
}
