//! `POST /v1/claim` (public): a person claims a code (`{"code","email"}`) or
//! an activation link's token (`{"token","email"}`) and creates their account.
//! Only this POST consumes a token: no GET anywhere uses one up, so a mail
//! scanner that follows the emailed link changes nothing.
//!
//! Unknown, malformed, expired, already used and wrong-portal codes all get
//! the same 400 body, and every path hashes and looks the code up first, so
//! the answer says nothing about which it was. The claim itself is one
//! conditional transaction: of N concurrent claims exactly one succeeds.
//!
//! Guessing is throttled per source address: after 10 failed claims within
//! 15 minutes the address gets 429 with `Retry-After` until the window ends
//! ([`crate::domain::guard`]). The counter is read beside the code lookup (one
//! round trip), and only a refused claim writes to it. Every refused claim is
//! counted in the `ClaimsFailed` metric by portal (`none` when no code matched).

use super::problem::ApiError;
use super::request::{finish, json_body, respond, source_ip};
use crate::app::App;
use crate::domain::guard::{claim_verdict, ClaimVerdict};
use crate::domain::{code_lifecycle::is_claimable, CodeHash, ContactId, EmailAddress, LinkToken, Method, PickupCode, PortalId, TenantId};
use crate::store::TxError;
use chrono::DateTime;
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    pub email: String,
    #[serde(default)]
    pub portal_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Claimed {
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub email: EmailAddress,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    finish(run(app, &req).await)
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ClaimRequest = json_body(req, false)?;
    let email = EmailAddress::parse(&body.email).map_err(|e| ApiError::validation("/email", format!("email {e}")))?;
    let (secret, method) = match (&body.code, &body.token) {
        (Some(code), None) => (code.as_str(), Method::Code),
        (None, Some(token)) => (token.as_str(), Method::Link),
        _ => return Err(ApiError::validation("", "give either a code or a token")),
    };
    // The address as a keyed hash: the counter stores no IP address.
    let address = source_ip(req).map(|ip| app.hasher.hash_secret(format!("ip:{ip}").as_bytes()));
    let claimed = claim(app, secret, method, &email, body.portal_id.as_deref(), address.as_ref()).await?;
    Ok(respond(StatusCode::CREATED, &claimed))
}

/// Claims a code or token for `email`; `address` (the hashed source address)
/// is throttled when given.
pub async fn claim(
    app: &App,
    secret: &str,
    method: Method,
    email: &EmailAddress,
    portal: Option<&str>,
    address: Option<&CodeHash>,
) -> Result<Claimed, ApiError> {
    let mut seen = Seen::default();
    let result = attempt(app, secret, method, email, portal, address, &mut seen).await;
    match &result {
        Ok(c) => crate::metrics::emf::count("ClaimsSucceeded", &[("PortalId", c.portal_id.as_str())]),
        Err(ApiError::ClaimRejected) => {
            crate::metrics::emf::count("ClaimsFailed", &[("PortalId", seen.portal.as_deref().unwrap_or("none"))]);
            if let Some(address) = address {
                // Counting must not turn a refusal into a 5xx; the log shows it.
                if let Err(e) = app.store.record_claim_failure(address, seen.window, (app.clock)()).await {
                    tracing::error!(error = ?e, "could not count a failed claim");
                }
            }
        }
        Err(_) => {}
    }
    result
}

/// What a claim attempt learnt on the way, for the metric and the counter.
#[derive(Default)]
struct Seen {
    portal: Option<String>,
    window: Option<crate::domain::guard::FailureWindow>,
}

async fn attempt(
    app: &App,
    secret: &str,
    method: Method,
    email: &EmailAddress,
    portal: Option<&str>,
    address: Option<&CodeHash>,
    seen: &mut Seen,
) -> Result<Claimed, ApiError> {
    // Hash whatever was given, well-formed or not, so every answer costs the same lookup.
    let hash = match method {
        Method::Code => match PickupCode::parse(secret) {
            Ok(code) => app.hasher.hash(&code),
            Err(_) => app.hasher.hash_secret(secret.as_bytes()),
        },
        Method::Link => match LinkToken::parse(secret) {
            Ok(token) => token.hash(&app.hasher),
            Err(_) => app.hasher.hash_secret(format!("link:{secret}").as_bytes()),
        },
    };
    let failures = async {
        match address {
            Some(a) => app.store.claim_failures(a).await,
            None => Ok(None),
        }
    };
    let (owner, failures) = tokio::join!(app.store.find_code(&hash), failures);
    let now = (app.clock)();
    seen.window = failures?;
    if let ClaimVerdict::Refuse { retry_after_secs } = claim_verdict(seen.window, now) {
        return Err(ApiError::RateLimited(retry_after_secs));
    }
    let owner = owner?.ok_or(ApiError::ClaimRejected)?;
    seen.portal = Some(owner.portal_id.clone());
    let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).ok_or(ApiError::ClaimRejected)?;
    let portal_matches = portal.is_none_or(|p| p == owner.portal_id);
    if !portal_matches || owner.method != method || !is_claimable(owner.state, expires_at, now) {
        return Err(ApiError::ClaimRejected);
    }
    let ids = (
        TenantId::parse(&owner.tenant_id),
        ContactId::parse(&owner.contact_id),
        PortalId::parse(&owner.portal_id),
    );
    let (Ok(tenant), Ok(contact), Ok(portal)) = ids else {
        return Err(anyhow::anyhow!("a code lookup item holds an invalid id").into());
    };
    for attempt in 0..5u64 {
        match app.store.claim_code(&hash, &owner, &tenant, &contact, &portal, email, now).await {
            Ok(()) => {
                tracing::info!(tenant = %tenant, portal = %portal, "code claimed");
                return Ok(Claimed { contact_id: contact, portal_id: portal, email: email.clone() });
            }
            // Another claim of the same code is in flight: look again shortly.
            Err(e) if e.is_contention() => {
                tokio::time::sleep(std::time::Duration::from_millis(10 + attempt * 15)).await;
            }
            Err(TxError::Cancelled { .. }) => return Err(ApiError::ClaimRejected),
            Err(TxError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::ClaimRejected)
}
