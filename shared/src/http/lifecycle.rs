//! The `lifecycle` function: activate, resend/reset/enable and deactivate a
//! contact's portal access (seeds 001 and 002).
//!
//! - `POST /v1/contacts/{contact_id}/portal/activate` → 202: an activation
//!   link is emailed (409 when already active, 422 without an email address).
//! - `POST /v1/contacts/{contact_id}/portal/resend` → 202: pending → `resent`,
//!   expired → `reset`, disabled → `enabled`; active → 409.
//! - `POST /v1/contacts/{contact_id}/portal/deactivate` → 200: every account
//!   loses access at once, pending codes and links are revoked, and a notice
//!   is emailed, whatever the number of accounts (in chunks, see
//!   `usecase::deactivate`). Repeating a finished one changes nothing and
//!   sends nothing; repeating one that stopped midway finishes it.

use super::problem::ApiError;
use super::request::{actor, caller, finish, resolve_portal, json_body, optional_portal_id, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{access_state::ResendAction, time, ContactId, DocumentId, PortalState, Scope};
use crate::usecase::{access, deactivate};
use chrono::{DateTime, Utc};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    #[serde(default)]
    pub portal_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Activated {
    pub state: PortalState,
    pub email_document_id: Option<DocumentId>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Resent {
    pub state: PortalState,
    pub action: ResendAction,
    pub email_document_id: Option<DocumentId>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Deactivated {
    pub state: PortalState,
    pub email_document_id: Option<DocumentId>,
    /// Accounts this call disabled (0 when repeated).
    pub accounts_disabled: usize,
    /// `false` only for a contact too big for one call (`usecase::deactivate`'s
    /// bounds): access has ended all the same; deactivate again to end the rest.
    pub complete: bool,
}

/// The `lifecycle` function.
pub struct Lifecycle;

impl Function for Lifecycle {
    const NAME: &'static str = "lifecycle";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        finish(run(app, route, &req).await)
    }
}

async fn run(app: &App, route: Route, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let body: LifecycleRequest = json_body(req, true)?;
    let portal_id = optional_portal_id(body.portal_id.as_deref())?;
    let portal = resolve_portal(app, &caller, portal_id.as_ref()).await?;
    let actor = actor(&caller);
    match route {
        Route::Activate => {
            let issued = access::activate(app, actor, &contact_id, &portal).await?;
            let body = Activated { state: PortalState::Pending, email_document_id: issued.email_document_id, expires_at: issued.expires_at };
            Ok(respond(StatusCode::ACCEPTED, &body))
        }
        Route::Resend => {
            let (action, issued) = access::resend(app, actor, &contact_id, &portal).await?;
            let body = Resent { state: PortalState::Pending, action, email_document_id: issued.email_document_id, expires_at: issued.expires_at };
            Ok(respond(StatusCode::ACCEPTED, &body))
        }
        Route::Deactivate => {
            let done = deactivate::deactivate(app, actor, &contact_id, &portal).await?;
            let body = Deactivated {
                state: PortalState::Disabled,
                email_document_id: done.email_document_id,
                accounts_disabled: done.accounts_disabled,
                complete: done.complete,
            };
            Ok(respond(StatusCode::OK, &body))
        }
        _ => Err(ApiError::NotFound("route")),
    }
}
