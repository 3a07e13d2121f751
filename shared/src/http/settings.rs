//! The tenant's own settings and profile, `portal:admin` to change:
//! - `GET/PUT /v1/settings`: `emails_per_hour` and `sms_per_hour`, the
//!   tenant's sending quotas (`domain::quota`), within the deployment's
//!   `MAX_EMAILS_PER_HOUR` and `MAX_SMS_PER_HOUR`;
//! - `GET/PUT /v1/tenant/profile`: how emails and the hosted pages name the
//!   organisation (`domain::tenant`).

use super::problem::{ApiError, FieldError};
use super::request::{caller, json_body, respond};
use crate::app::App;
use crate::domain::quota::{check_emails_per_hour, check_per_hour, Window};
use crate::domain::Channel;
use crate::domain::tenant::TenantProfile;
use crate::domain::{time, Scope};
use crate::store::quota::TenantSettings;
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsRequest {
    #[serde(deserialize_with = "whole_number")]
    emails_per_hour: u64,
    /// Absent: kept as it is.
    #[serde(default, deserialize_with = "maybe_whole_number")]
    sms_per_hour: Option<u64>,
}

/// A count as JSON Schema reads `integer`: `2` and `2.0` alike (a number
/// without a fraction), not `2.5`, a string or a negative number.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64))
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number of 0 or more, got {n}")))
}

fn maybe_whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(n).map(Some).map_err(serde::de::Error::custom),
    }
}

async fn view(app: &App, tenant: &crate::domain::TenantId, settings: &TenantSettings) -> Result<serde_json::Value, ApiError> {
    let window = Window::of((app.clock)());
    let (sent, texts) = tokio::try_join!(
        app.store.sent_in_window(tenant, Channel::Email, window),
        app.store.sent_in_window(tenant, Channel::Sms, window),
    )?;
    Ok(json!({
        "emails_per_hour": settings.emails_per_hour,
        "max_emails_per_hour": app.max_emails_per_hour,
        "sent_this_hour": sent,
        "sms_per_hour": settings.sms_per_hour,
        "max_sms_per_hour": app.max_sms_per_hour,
        "sms_sent_this_hour": texts,
        "updated_at": settings.updated.as_ref().map(|(at, _)| time::format(at)),
        "updated_by": settings.updated.as_ref().map(|(_, by)| by.clone()),
    }))
}

/// `GET /v1/settings`: any staff scope.
pub async fn get(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let settings = app.store.tenant_settings(&caller.tenant_id).await?;
    Ok(respond(StatusCode::OK, &view(app, &caller.tenant_id, &settings).await?))
}

/// `PUT /v1/settings`: `portal:admin`.
pub async fn put(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let body: SettingsRequest = json_body(req, false)?;
    let emails_per_hour =
        check_emails_per_hour(body.emails_per_hour, app.max_emails_per_hour).map_err(|e| ApiError::validation("/emails_per_hour", e.to_string()))?;
    let sms_per_hour = match body.sms_per_hour {
        Some(n) => check_per_hour("sms_per_hour", n, app.max_sms_per_hour).map_err(|e| ApiError::validation("/sms_per_hour", e.to_string()))?,
        None => app.store.tenant_settings(&caller.tenant_id).await?.sms_per_hour,
    };
    let settings = TenantSettings { emails_per_hour, sms_per_hour, updated: Some(((app.clock)(), caller.sub.clone())) };
    app.store.put_tenant_settings(&caller.tenant_id, &settings).await?;
    Ok(respond(StatusCode::OK, &view(app, &caller.tenant_id, &settings).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    display_name: String,
    #[serde(default)]
    support_email: Option<String>,
    #[serde(default)]
    logo_url: Option<String>,
    #[serde(default)]
    brand_color: Option<String>,
}

fn profile_view(tenant: &crate::domain::TenantId, profile: Option<&TenantProfile>) -> serde_json::Value {
    match profile {
        Some(p) => json!({"display_name": p.display_name, "support_email": p.support_email, "logo_url": p.logo_url, "brand_color": p.brand_color, "is_default": false}),
        // Never set: emails and pages name the tenant by its id until it is.
        None => json!({"display_name": tenant.as_str(), "support_email": null, "logo_url": null, "brand_color": null, "is_default": true}),
    }
}

/// `GET /v1/tenant/profile`: any staff scope.
pub async fn get_profile(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let profile = app.store.tenant_profile(&caller.tenant_id).await?;
    Ok(respond(StatusCode::OK, &profile_view(&caller.tenant_id, profile.as_ref())))
}

/// `PUT /v1/tenant/profile`: `portal:admin`.
pub async fn put_profile(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let body: ProfileRequest = json_body(req, false)?;
    let profile = TenantProfile::parse(&body.display_name, body.support_email.as_deref(), body.logo_url.as_deref(), body.brand_color.as_deref()).map_err(|errors| {
        let errors: Vec<FieldError> = errors.into_iter().map(|e| FieldError::new(format!("/{}", e.field), e.detail)).collect();
        let detail = errors.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>().join("; ");
        ApiError::Validation { detail, errors }
    })?;
    app.store.put_tenant_profile(&caller.tenant_id, &profile, &caller.sub, (app.clock)()).await?;
    app.profiles.forget(&caller.tenant_id);
    Ok(respond(StatusCode::OK, &profile_view(&caller.tenant_id, Some(&profile))))
}
