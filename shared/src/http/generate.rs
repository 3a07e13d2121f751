//! `POST /v1/contacts/{contact_id}/codes`: Generate, or Generate & Email (seed 000).
//!
//! A new code for a contact and portal revokes the earlier pending code or
//! link. With `send_email` the code and a `queued` email log entry are stored
//! in the same transaction and the job goes on the mail queue: SES is never
//! called inline, so an SES outage delays the email but cannot lose it.
//! Issuing itself is [`crate::usecase::issue`], shared with every other way.

use super::problem::ApiError;
use super::request::{actor, caller, finish, json_body, optional_portal_id, path_param, resolve_portal, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{time, ContactId, DocumentId, EmailKind, Method, PortalId, Scope};
use crate::usecase::issue::{issue, Step};
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
#[derive(Serialize)]
pub struct IssuedCode {
    pub code: String,
    pub portal_id: PortalId,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<DocumentId>,
}

crate::debug_redacting!(IssuedCode { portal_id, created_at, expires_at, email_document_id } hiding { code });

/// The `generate` function.
pub struct Generate;

impl Function for Generate {
    const NAME: &'static str = "generate";
    async fn handle(app: &App, _route: Route, req: Request) -> Response<Body> {
        finish(run(app, &req).await)
    }
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let body: GenerateRequest = json_body(req, true)?;
    let portal_id = optional_portal_id(body.portal_id.as_deref())?;
    let portal = resolve_portal(app, &caller, portal_id.as_ref()).await?;
    let send_email = body.send_email;
    let issued = issue(app, actor(&caller), &contact_id, &portal, Method::Code, |_| {
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
