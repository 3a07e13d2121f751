//! `Idempotency-Key` on the POSTs that change something (the routes the
//! table marks [`super::routes::Effect::Effectful`]), as a layer around their handler: the same key and
//! request within 24 hours answers what the first answered and does nothing
//! more; the same key with another request is 422. The key is recorded
//! (conditional put) before the request runs, so of concurrent duplicates
//! exactly one runs; the others wait briefly for its answer, or get 409.
//!
//! The answer is kept **sealed** (AES-256-GCM under the deployment's key,
//! bound to the tenant, the caller and the key: `domain::sealed`), since it
//! may hold a pickup code: the plain code lives only on its own code item
//! while it is pending. A replay opens it; one the keys can no longer open
//! (two rotations within the 24 hours) is 422, use a new key.
//!
//! A request that fails on our side (5xx) gives its key up, so a retry runs.
//! The record lives under the caller's tenant and is the caller's own (their
//! token's `sub`): another staff member's request with the same key runs as
//! its own request. A caller whose token is not accepted is answered by the
//! handler (401/403) without touching keys.

use super::problem::ApiError;
use super::request::{caller, route_key};
use crate::app::App;
use crate::domain::guard::{repeat_of, request_fingerprint, IdempotencyKey, Repeat, StoredResponse};
use crate::domain::Scope;
use crate::store::guards::Begun;
use lambda_http::{Body, Request, Response};
use std::future::Future;
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
/// Set on an answer that repeats an earlier one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";


/// How long a duplicate waits for the first request's answer before 409.
const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// Whether `req` carries a key. The layer wraps only the routes the table
/// marks effectful ([`super::routes::Effect::Effectful`]).
pub fn requested(req: &Request) -> bool {
    req.headers().contains_key(HEADER)
}

/// Runs `handler` at most once per tenant, staff member, key and request.
pub async fn around<F, Fut>(app: &App, req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    // Every route here needs write access: a caller without it is answered by
    // the handler (403), and nothing is recorded for it.
    let Ok(who) = caller(&req, Scope::Write) else {
        return handler(req).await;
    };
    let raw = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let key = match IdempotencyKey::parse(&who.sub, raw) {
        Ok(key) => key,
        Err(why) => return ApiError::BadRequest(format!("the Idempotency-Key header {why}")).into_response(),
    };
    let fingerprint = request_fingerprint(&route_key(&req), req.uri().path(), req.body().as_ref());
    let tenant = &who.tenant_id;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut take_over = false;
    loop {
        let begun = match app.store.begin_idempotent(tenant, &key, &fingerprint, (app.clock)(), take_over).await {
            Ok(b) => b,
            Err(e) => return ApiError::Unexpected(e).into_response(),
        };
        let record = match begun {
            Begun::Started => break,
            Begun::Existing(record) => record,
        };
        match repeat_of(&record, &fingerprint, (app.clock)()) {
            Repeat::Replay(stored) => return opened(app, &key, tenant.as_str(), stored).await.map_or_else(ApiError::into_response, replay),
            Repeat::Mismatch => {
                return ApiError::validation("", "this Idempotency-Key was used for another request; use a new key").into_response()
            }
            Repeat::TakeOver => take_over = true,
            Repeat::InProgress if tokio::time::Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Repeat::InProgress => return ApiError::InProgress.into_response(),
        }
    }
    let response = handler(req).await;
    let outcome = if response.status().is_server_error() {
        app.store.abandon_idempotent(tenant, &key, &fingerprint).await
    } else {
        let stored = StoredResponse {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned(),
            body: match response.body() {
                Body::Text(t) => t.clone(),
                Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                Body::Empty => String::new(),
                _ => String::new(),
            },
        };
        match seal(app, &key, tenant.as_str(), stored).await {
            Ok(sealed) => app.store.finish_idempotent(tenant, &key, &fingerprint, &sealed).await,
            Err(e) => Err(e),
        }
    };
    if let Err(e) = outcome {
        // The request's effect stands; only its replay is lost. A repeat gets
        // 409 until the record is judged stale (a minute), then runs again.
        tracing::error!(error = ?e, "could not record an idempotent answer");
    }
    response
}

/// Marks a stored body as sealed (bodies stored before were kept plain).
const SEALED: &str = "sealed:";

async fn seal(app: &App, key: &IdempotencyKey, tenant: &str, mut stored: StoredResponse) -> anyhow::Result<StoredResponse> {
    let keys = app.keys.get().await?;
    stored.body = format!("{SEALED}{}", keys.current.sealer.seal_for(&key.seal_context(tenant), &stored.body));
    Ok(stored)
}

async fn opened(app: &App, key: &IdempotencyKey, tenant: &str, mut stored: StoredResponse) -> Result<StoredResponse, ApiError> {
    let Some(sealed) = stored.body.strip_prefix(SEALED) else { return Ok(stored) };
    let keys = app.keys.get().await.map_err(ApiError::Unexpected)?;
    stored.body = keys
        .open_for(&key.seal_context(tenant), sealed)
        .map_err(|_| ApiError::validation("", "the answer recorded for this Idempotency-Key can no longer be read (the service's key was rotated since); use a new key"))?;
    Ok(stored)
}

fn replay(stored: StoredResponse) -> Response<Body> {
    Response::builder()
        .status(stored.status)
        .header("content-type", stored.content_type)
        .header(REPLAYED_HEADER, "true")
        .body(if stored.body.is_empty() { Body::Empty } else { Body::Text(stored.body) })
        .expect("a valid response")
}
