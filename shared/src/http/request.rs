//! Reading requests at the edge: the caller, path ids, JSON bodies; and writing
//! JSON answers. Everything here turns raw input into domain types or an
//! [`ApiError`] with a clear detail.

use super::problem::ApiError;
use crate::domain::{Caller, Scope};
use lambda_http::{http::StatusCode, request::RequestContext, Body, Request, RequestExt, Response};
use serde::{de::DeserializeOwned, Serialize};

/// Largest body we read (64 KiB); larger is 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The staff member behind the request, with at least `needed`.
pub fn caller(req: &Request, needed: Scope) -> Result<Caller, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims),
        _ => None,
    };
    let caller = Caller::from_claims(claims.ok_or(crate::domain::AuthError::Unauthenticated)?)?;
    caller.require(needed)?;
    Ok(caller)
}

/// The route the API matched, e.g. `PUT /v1/portals/{portal_id}`.
pub fn route_key(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// A path parameter parsed into its id type; 400 naming the parameter otherwise.
pub fn path_param<T, E: std::fmt::Display>(req: &Request, name: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<T, ApiError> {
    let params = req.path_parameters();
    let raw = params.first(name).ok_or_else(|| ApiError::BadRequest(format!("missing path parameter {name}")))?;
    parse(raw).map_err(|e| ApiError::BadRequest(format!("path parameter {name} {e}")))
}

/// The source address API Gateway saw.
pub fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
}

/// Parses the JSON body. An empty body reads as `{}` when `empty_ok`.
/// Malformed JSON is 400; well-formed JSON of the wrong shape (a missing
/// field, a wrong type, an unknown field) is 422 with serde's explanation.
pub fn json_body<T: DeserializeOwned>(req: &Request, empty_ok: bool) -> Result<T, ApiError> {
    json_body_up_to(req, empty_ok, MAX_BODY_BYTES)
}

/// Largest body of the bulk routes (1 MiB): 10,000 contact ids do not fit in 64 KiB.
pub const MAX_BULK_BODY_BYTES: usize = 1024 * 1024;

/// [`json_body`] with another size limit.
pub fn json_body_up_to<T: DeserializeOwned>(req: &Request, empty_ok: bool, max: usize) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > max {
        return Err(ApiError::TooLarge(max));
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        if !empty_ok {
            return Err(ApiError::BadRequest("a JSON body is required".into()));
        }
        b"{}"
    } else {
        bytes
    };
    // Only an object is a request (serde would also read an array by position).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::validation("", "the body must be a JSON object"),
            Err(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // serde_json reports some shape errors (an enum given `null`) as syntax
        // errors and stops at the first one either way: whether the body is
        // well-formed JSON decides 400 against 422.
        if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
            ApiError::validation("", e.to_string())
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })
}

/// A JSON answer.
pub fn respond<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).expect("responses serialise");
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body))
        .expect("a valid response")
}

/// Turns an operation's result into the response.
pub fn finish(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// An optional `portal_id` from a request body, parsed; 422 pointing at it otherwise.
pub fn optional_portal_id(raw: Option<&str>) -> Result<Option<crate::domain::PortalId>, ApiError> {
    raw.map(|p| crate::domain::PortalId::parse(p).map_err(|e| ApiError::validation("/portal_id", format!("portal_id {e}"))))
        .transpose()
}

/// The `limit` query parameter: `default` when absent, 422 outside 1..=`max`.
pub fn limit_param(req: &Request, default: usize, max: usize) -> Result<usize, ApiError> {
    use lambda_http::RequestExt as _;
    match req.query_string_parameters().first("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| ApiError::validation("/limit", format!("limit must be a whole number from 1 to {max}"))),
    }
}

/// The portal a request means: the named one, or the tenant's single default.
pub async fn resolve_portal(
    app: &crate::app::App,
    caller: &Caller,
    portal_id: Option<&crate::domain::PortalId>,
) -> Result<crate::domain::Portal, ApiError> {
    Ok(crate::usecase::portal::resolve(app, &caller.tenant_id, portal_id).await?)
}

/// The request's page cursor, opened with the code hash key (a cursor not
/// signed for this tenant and listing is a 422 at `/cursor`). The key is read
/// only when a cursor is given: a first page needs none.
pub async fn open_cursor<'a>(
    app: &crate::app::App,
    tenant: &str,
    listing: crate::domain::page_cursor::Listing,
    raw: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    Ok(Some(app.keys.get().await?.open_cursor(tenant, listing, raw).map_err(|e| ApiError::validation("/cursor", e.to_string()))?))
}

/// The next page's cursor, signed; the key is read only when there is a next page.
pub async fn sign_cursor(
    app: &crate::app::App,
    tenant: &str,
    listing: crate::domain::page_cursor::Listing,
    plain: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(plain) = plain else { return Ok(None) };
    Ok(Some(app.keys.get().await?.sign_cursor(tenant, listing, &plain)))
}

/// The staff member as the use cases' actor.
pub fn actor(caller: &Caller) -> crate::usecase::outbox::Actor<'_> {
    crate::usecase::outbox::Actor { tenant: &caller.tenant_id, name: &caller.sub }
}

/// The source address as a keyed hash (the counter and the audit store no IP
/// address; IPv6 by its /64), and the browser's user agent.
/// Hashed with the current key: a rotation starts every address's count afresh.
pub async fn claimant(app: &crate::app::App, req: &Request) -> anyhow::Result<(Option<crate::domain::CodeHash>, Option<String>)> {
    let keys = app.keys.get().await?;
    let address = source_ip(req).as_deref().and_then(crate::domain::guard::throttle_address).map(|ip| keys.current.hasher.hash_secret(format!("ip:{ip}").as_bytes()));
    let user_agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((address, user_agent))
}
