//! Integrations (in the `activations` function): the other systems a tenant
//! lets send to the activation queue, each with its own signing secret
//! (`domain::queue_proof`). `portal:admin`.
//!
//! - `PUT /v1/integrations/{integration_id}` `{"name", "rotate_secret"?, "revoke_previous"?}` → 201
//!   with the new `secret` (shown this once) when it is registered; 200 when renamed, with a new
//!   `secret` only if `rotate_secret`. The previous secret keeps verifying until the next rotation,
//!   unless `revoke_previous` ends it at once (a leaked secret; with or without a rotation).
//! - `GET /v1/integrations/{integration_id}` → the registration, never the secret.
//! - `DELETE /v1/integrations/{integration_id}` → 204: its messages are refused from then on.

use super::problem::ApiError;
use super::request::{caller, json_body, path_param, respond};
use crate::app::App;
use crate::domain::{portal::valid_name, queue_proof, time, IntegrationId, Scope};
use crate::store::integrations::IntegrationItem;
use base64::Engine as _;
use lambda_http::{http::StatusCode, Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationRequest {
    pub name: String,
    #[serde(default)]
    pub rotate_secret: bool,
    /// End the secret before the current one now, not at the next rotation.
    #[serde(default)]
    pub revoke_previous: bool,
}

/// 256 random bits, URL-safe.
fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random source");
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn view(app: &App, item: &IntegrationItem) -> serde_json::Value {
    json!({
        "integration_id": item.integration_id,
        "name": item.name,
        "queue_url": app.activation_queue.url(),
        "signature": {
            "attributes": [queue_proof::TENANT_ATTRIBUTE, queue_proof::INTEGRATION_ATTRIBUTE, queue_proof::TIMESTAMP_ATTRIBUTE, queue_proof::SIGNATURE_ATTRIBUTE],
            "max_skew_seconds": queue_proof::MAX_SKEW_SECONDS,
        },
        "created_at": time::format(&item.created_at),
        "created_by": item.created_by,
        "secret_set_at": time::format(&item.secret_set_at),
        "previous_secret": if item.previous_revoked { "revoked" } else { "verifies" },
        "updated_at": time::format(&item.updated_at),
    })
}

pub async fn put_integration(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let id = path_param(req, "integration_id", IntegrationId::parse)?;
    let body: IntegrationRequest = json_body(req, false)?;
    let name = valid_name(&body.name).ok_or_else(|| ApiError::validation("/name", "name: must be 1 to 200 characters"))?;
    let now = (app.clock)();
    let existing = app.store.get_integration(&caller.tenant_id, &id).await?;
    let fresh = existing.is_none();
    let secret = (fresh || body.rotate_secret).then(new_secret);
    let (pk, sk) = IntegrationItem::key(&caller.tenant_id, &id);
    let item = match existing {
        Some(old) => IntegrationItem {
            name,
            secret_set_at: if secret.is_some() { now } else { old.secret_set_at },
            updated_at: now,
            // A rotation keeps the old secret verifying a while again, unless it is revoked too.
            previous_revoked: body.revoke_previous || (old.previous_revoked && secret.is_none()),
            ..old
        },
        None => IntegrationItem {
            pk,
            sk,
            integration_id: id.clone(),
            name,
            secret_name: app.integration_secret_name(&caller.tenant_id, &id),
            created_at: now,
            created_by: caller.sub.clone(),
            secret_set_at: now,
            updated_at: now,
            secret_version: None,
            previous_revoked: false,
        },
    };
    let mut item = item;
    // The secret first: a registration never names a secret that is not there.
    if let Some(secret) = &secret {
        let description = format!("Portal Access: signs activation-queue messages of integration {id} of tenant {}", caller.tenant_id);
        item.secret_version = Some(app.secrets.put(&item.secret_name, secret, &description).await?);
    }
    if body.revoke_previous && !fresh {
        app.secrets.revoke_previous(&item.secret_name).await?;
    }
    app.store.put_integration(&item).await?;
    tracing::info!(tenant = %caller.tenant_id, integration = %id, rotated = secret.is_some(), revoked_previous = body.revoke_previous, actor = %caller.sub, "integration registered");
    let mut out = view(app, &item);
    if let Some(secret) = &secret {
        out["secret"] = json!(secret.expose_secret());
    }
    Ok(respond(if fresh { StatusCode::CREATED } else { StatusCode::OK }, &out))
}

pub async fn get_integration(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let id = path_param(req, "integration_id", IntegrationId::parse)?;
    let item = app.store.get_integration(&caller.tenant_id, &id).await?.ok_or(ApiError::NotFound("integration"))?;
    Ok(respond(StatusCode::OK, &view(app, &item)))
}

pub async fn delete_integration(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let id = path_param(req, "integration_id", IntegrationId::parse)?;
    let item = app.store.get_integration(&caller.tenant_id, &id).await?.ok_or(ApiError::NotFound("integration"))?;
    // The registration first: from this moment its messages find no signer.
    app.store.delete_integration(&caller.tenant_id, &id).await?;
    app.secrets.delete(&item.secret_name).await?;
    tracing::info!(tenant = %caller.tenant_id, integration = %id, actor = %caller.sub, "integration deleted");
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("a valid response"))
}
