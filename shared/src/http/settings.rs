//! `GET /v1/settings` and `PUT /v1/settings` (`portal:admin`): the tenant's
//! own settings. Today one: `emails_per_hour`, the tenant's sending quota
//! (`domain::quota`), within the deployment's `MAX_EMAILS_PER_HOUR`.

use super::problem::ApiError;
use super::request::{caller, json_body, respond};
use crate::app::App;
use crate::domain::quota::{check_emails_per_hour, Window};
use crate::domain::{time, Scope};
use crate::store::quota::TenantSettings;
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsRequest {
    emails_per_hour: u64,
}

fn view(app: &App, settings: &TenantSettings, sent_this_hour: u32) -> serde_json::Value {
    json!({
        "emails_per_hour": settings.emails_per_hour,
        "max_emails_per_hour": app.max_emails_per_hour,
        "sent_this_hour": sent_this_hour,
        "updated_at": settings.updated.as_ref().map(|(at, _)| time::format(at)),
        "updated_by": settings.updated.as_ref().map(|(_, by)| by.clone()),
    })
}

/// `GET /v1/settings`: any staff scope.
pub async fn get(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let settings = app.store.tenant_settings(&caller.tenant_id).await?;
    let sent = app.store.sent_in_window(&caller.tenant_id, Window::of((app.clock)())).await?;
    Ok(respond(StatusCode::OK, &view(app, &settings, sent)))
}

/// `PUT /v1/settings`: `portal:admin`.
pub async fn put(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let body: SettingsRequest = json_body(req, false)?;
    let emails_per_hour =
        check_emails_per_hour(body.emails_per_hour, app.max_emails_per_hour).map_err(|e| ApiError::validation("/emails_per_hour", e.to_string()))?;
    let settings = TenantSettings { emails_per_hour, updated: Some(((app.clock)(), caller.sub.clone())) };
    app.store.put_tenant_settings(&caller.tenant_id, &settings).await?;
    let sent = app.store.sent_in_window(&caller.tenant_id, Window::of((app.clock)())).await?;
    Ok(respond(StatusCode::OK, &view(app, &settings, sent)))
}
