//! `POST /v1/contacts/{contact_id}/codes`: Generate, or Generate & Email (seed 000).
//!
//! A new code for a contact and portal revokes the earlier pending code or
//! link. With `send_email` the code and a `queued` email log entry are stored
//! in the same transaction and the job goes on the mail queue: SES is never
//! called inline, so an SES outage delays the email but cannot lose it.
//! Issuing itself is [`crate::invite::invite`], shared with every other way.

use super::problem::ApiError;
use super::request::{caller, finish, json_body, optional_portal_id, path_param, respond};
use crate::app::App;
use crate::domain::{
    portal::{default_portal, DefaultPortal}, time, Caller, ContactId, Method, Portal, PortalId, Scope,
};
use crate::invite::{invite, Step};
use crate::mail::EmailKind;
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
    let portal_id = optional_portal_id(body.portal_id.as_deref())?;
    let portal = resolve_portal(app, &caller, portal_id.as_ref()).await?;
    let send_email = body.send_email;
    let issued = invite(app, &caller, &contact_id, &portal, Method::Code, |_| {
        Ok(Step { email: send_email.then_some(EmailKind::PickupCode), action: "generate" })
    })
    .await?;
    Ok(respond(
        StatusCode::CREATED,
        &IssuedCode {
            code: issued.code.unwrap_or_default(),
            portal_id: portal.portal_id,
            created_at: issued.created_at,
            expires_at: issued.expires_at,
            email_document_id: issued.email_document_id,
        },
    ))
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

