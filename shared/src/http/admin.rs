//! The `admin` function: Portal Administration's portals, the tenant's
//! settings and profile. Contacts are the `contacts` function
//! ([`super::contacts`]), email templates the `templates` function
//! ([`super::templates`]): each binary links only its own handlers, so this
//! one has neither the template engine nor the Secrets Manager client.

use super::problem::ApiError;
use super::request::{caller, finish, json_body, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{channel::Channels, id_token::IdentityProvider, Fact, Locale, Portal, PortalId, Scope};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    pub name: String,
    pub default: bool,
    /// Absent or null: the deployment's hosted claim page (needs `PUBLIC_BASE_URL`).
    #[serde(default)]
    pub claim_url: Option<String>,
    #[serde(default)]
    pub code_ttl_hours: Option<u32>,
    #[serde(default)]
    pub link_ttl_hours: Option<u32>,
    #[serde(default)]
    pub auto_generate: bool,
    #[serde(default)]
    pub auto_email: bool,
    #[serde(default)]
    pub reminder_days_before_expiry: Option<u32>,
    /// Facts a claim must match (`domain::identity`); none when absent.
    #[serde(default)]
    pub claim_checks: Vec<Fact>,
    /// The identity provider whose ID tokens vouch for addresses (`domain::id_token`).
    #[serde(default)]
    pub identity_issuer: Option<String>,
    #[serde(default)]
    pub identity_audience: Option<String>,
    #[serde(default)]
    pub identity_jwks_url: Option<String>,
    /// Per kind, the channels to use (`{"pickup_code": ["email", "sms"]}`); a kind not named: email.
    #[serde(default)]
    pub channels: BTreeMap<crate::domain::EmailKind, Vec<crate::domain::Channel>>,
    /// BCP 47; absent: `en`.
    #[serde(default)]
    pub default_locale: Option<String>,
}

/// The `admin` function.
pub struct Admin;

impl Function for Admin {
    const NAME: &'static str = "admin";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        let req = &req;
        finish(match route {
            Route::PutPortal => put_portal(app, req).await,
            Route::GetPortal => get_portal(app, req).await,
            Route::ListPortals => list_portals(app, req).await,
            Route::GetSettings => super::settings::get(app, req).await,
            Route::PutSettings => super::settings::put(app, req).await,
            Route::GetTenantProfile => super::settings::get_profile(app, req).await,
            Route::PutTenantProfile => super::settings::put_profile(app, req).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

async fn put_portal(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    let body: PortalRequest = json_body(req, false)?;
    let identity = IdentityProvider::from_settings(body.identity_issuer.as_deref(), body.identity_audience.as_deref(), body.identity_jwks_url.as_deref(), app.deployment)
        .map_err(|e| ApiError::validation(e.pointer(), e.to_string()))?;
    let channels = Channels::new(body.channels).map_err(|e| ApiError::validation("/channels", e.to_string()))?;
    let default_locale = match body.default_locale.as_deref().map(str::trim) {
        None | Some("") => Locale::english(),
        Some(raw) => Locale::parse(raw).map_err(|e| ApiError::validation("/default_locale", format!("default_locale {e}")))?,
    };
    let portal = Portal::new(portal_id, &body.name, body.default, body.claim_url.as_deref(), body.code_ttl_hours, body.link_ttl_hours, app.deployment)
        .map(|p| p.with_messages(channels, default_locale))
        .and_then(|p| p.with_automation(body.auto_generate, body.auto_email, body.reminder_days_before_expiry))
        .map(|p| p.with_claim_checks(body.claim_checks.iter().copied()).with_identity(identity))
        .map_err(|e| ApiError::validation(e.pointer(), e.to_string()))?;
    if portal.claim_url.is_none() && app.public_base_url.is_none() {
        return Err(ApiError::validation(
            "/claim_url",
            "claim_url: required, as this deployment hosts no claim page (its PublicBaseUrl parameter is empty)",
        ));
    }
    app.store.put_portal(&caller.tenant_id, &portal, &caller.sub, (app.clock)()).await?;
    app.portals.forget(&caller.tenant_id);
    Ok(respond(StatusCode::OK, &portal))
}

async fn get_portal(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    let portal = app.store.get_portal(&caller.tenant_id, &portal_id).await?.ok_or(ApiError::NotFound("portal"))?;
    Ok(respond(StatusCode::OK, &portal))
}

async fn list_portals(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let portals = app.store.list_portals(&caller.tenant_id).await?;
    Ok(respond(StatusCode::OK, &serde_json::json!({ "items": portals })))
}
