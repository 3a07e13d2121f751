//! HTTP entry points. Every operation has the same shape: read the caller and
//! the input into domain types ([`request`]), call the use case, answer JSON or
//! a problem ([`problem`], the one place use-case errors become HTTP).
//!
//! Each HTTP function is a type implementing [`routes::Function`] (one per
//! module: [`generate::Generate`], [`claim::Claim`], …); its binary's `main`
//! calls [`serve`]`::<F>()`, so it links only its own handlers. The route
//! table is [`routes::Route`]; effectful routes pass through the
//! [`idempotency`] layer.

pub mod access;
pub mod activations;
pub mod admin;
pub mod claim;
pub mod console;
pub mod edge;
pub mod contacts;
pub mod generate;
pub mod html;
pub mod idempotency;
pub mod integrations;
pub mod lifecycle;
pub mod page_text;
pub mod pages;
pub mod problem;
pub mod reports;
pub mod request;
pub mod routes;
pub mod settings;
pub mod status;
pub mod templates;

use crate::app::App;
use lambda_http::{Body, Request, Response};
use problem::ApiError;
use routes::{Effect, Function, Route};

/// Answers a request as function `F`'s binary does: the route from the
/// table (a route of another function is 404), through the idempotency
/// layer when the route is effectful and the request carries a key.
pub async fn handle<F: Function>(app: &App, req: Request) -> Response<Body> {
    let req = match edge::admit(app, req).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let route = Route::from_key(&request::route_key(&req)).filter(|r| r.function() == F::NAME);
    let Some(route) = route else {
        return ApiError::NotFound("route").into_response();
    };
    if route.effect() == Effect::Effectful && idempotency::requested(&req) {
        return idempotency::around(app, req, |req| F::handle(app, route, req)).await;
    }
    F::handle(app, route, req).await
}

/// The HTTP functions by binary name, for the local gateway and the tests,
/// which serve all of them in one process. (A Lambda binary names its own
/// function's type and links nothing else.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFunction {
    Generate,
    Claim,
    Status,
    Admin,
    Contacts,
    Templates,
    Lifecycle,
    Access,
    Activations,
    Reports,
    Console,
}

impl HttpFunction {
    pub const ALL: [Self; 11] = [
        Self::Generate,
        Self::Claim,
        Self::Status,
        Self::Admin,
        Self::Contacts,
        Self::Templates,
        Self::Lifecycle,
        Self::Access,
        Self::Activations,
        Self::Reports,
        Self::Console,
    ];

    pub fn from_binary(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => generate::Generate::NAME,
            Self::Claim => claim::Claim::NAME,
            Self::Status => status::Status::NAME,
            Self::Admin => admin::Admin::NAME,
            Self::Contacts => contacts::Contacts::NAME,
            Self::Templates => templates::Templates::NAME,
            Self::Lifecycle => lifecycle::Lifecycle::NAME,
            Self::Access => access::Access::NAME,
            Self::Activations => activations::Activations::NAME,
            Self::Reports => reports::Reports::NAME,
            Self::Console => console::Console::NAME,
        }
    }

    /// The function's routes, from the table.
    pub fn routes(self) -> Vec<Route> {
        Route::ALL.into_iter().filter(|r| r.function() == self.name()).collect()
    }

    /// Answers as the function's Lambda binary would ([`handle`]).
    pub async fn handle(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Self::Generate => handle::<generate::Generate>(app, req).await,
            Self::Claim => handle::<claim::Claim>(app, req).await,
            Self::Status => handle::<status::Status>(app, req).await,
            Self::Admin => handle::<admin::Admin>(app, req).await,
            Self::Contacts => handle::<contacts::Contacts>(app, req).await,
            Self::Templates => handle::<templates::Templates>(app, req).await,
            Self::Lifecycle => handle::<lifecycle::Lifecycle>(app, req).await,
            Self::Access => handle::<access::Access>(app, req).await,
            Self::Activations => handle::<activations::Activations>(app, req).await,
            Self::Reports => handle::<reports::Reports>(app, req).await,
            Self::Console => handle::<console::Console>(app, req).await,
        }
    }
}

/// Runs HTTP function `F` as a Lambda: JSON logs, dependencies built once at
/// cold start from the environment, then every request to its handler.
///
/// Events pass through [`escape_raw_uri`] first: lambda_http builds an
/// `http::Uri` from `rawPath` and `rawQueryString` and panics (a 5xx) on a
/// character a URI may not hold, such as a client's raw `"` or space.
/// lambda_http reads the event into a [`Request`]; the answer goes back as
/// [`gateway_response`] writes it.
pub async fn serve<F: Function>() -> Result<(), lambda_http::Error> {
    use lambda_http::RequestExt as _;
    crate::telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
        let (mut payload, context) = event.into_parts();
        escape_raw_uri(&mut payload);
        let request = serde_json::from_value::<lambda_http::request::LambdaRequest>(payload)
            .map_err(|e| lambda_http::Error::from(format!("not an API Gateway event: {e}")))?;
        let mut request = Request::from(request);
        if let Some(trace) = context.xray_trace_id.as_deref().and_then(|t| lambda_http::http::HeaderValue::from_str(t).ok()) {
            request.headers_mut().insert("x-amzn-trace-id", trace);
        }
        let response = handle::<F>(app, request.with_lambda_context(context)).await;
        Ok::<_, lambda_http::Error>(gateway_response(response))
    }))
    .await
}

/// A response as an HTTP API (payload 2.0) takes it: `Set-Cookie` headers
/// in `cookies`, a binary body base64 (the gateway decodes it), a text body
/// as it is. lambda_http's own conversion would collect every body again and
/// decode it as the `Content-Type`'s charset: our bodies are already
/// `Body::Text` (UTF-8 JSON, HTML, CSV) or `Body::Binary`, so that is a copy
/// of each response for nothing, and it links a decoder of every legacy
/// charset into each binary.
pub fn gateway_response(response: Response<Body>) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse {
    use lambda_http::http::header::SET_COOKIE;
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    headers.remove(SET_COOKIE);
    let mut out = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.is_base64_encoded = matches!(body, Body::Binary(_));
    out.body = match body {
        Body::Empty => None,
        body => Some(body),
    };
    out.cookies = cookies;
    out.headers = headers;
    out
}

/// Percent-encodes what a URI cannot hold in an API Gateway event's
/// `rawPath` and `rawQueryString` (spaces, quotes, `<>`, controls, non-ASCII);
/// what is already valid, `%` escapes included, is left as it is.
pub fn escape_raw_uri(event: &mut serde_json::Value) {
    for field in ["rawPath", "rawQueryString"] {
        if let Some(raw) = event.get(field).and_then(|v| v.as_str()) {
            let escaped = percent_encoding::utf8_percent_encode(raw, URI_ESCAPE).to_string();
            if escaped != raw {
                event[field] = serde_json::Value::String(escaped);
            }
        }
    }
}

/// What a URI path segment or query value escapes: all but RFC 3986's
/// unreserved characters (letters, digits, `-._~`).
const COMPONENT_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `s` percent-encoded for a path segment or a query value (UTF-8 bytes, RFC 3986).
pub fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT_ESCAPE).to_string()
}

/// `s` percent-decoded (a malformed escape is kept as it is, invalid UTF-8 read lossily).
pub fn decode_component(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// What a URI cannot hold: everything but letters, digits and
/// `-._~!$&'()*+,;=:@/?%` (non-ASCII is always escaped, as UTF-8 bytes).
const URI_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'?')
    .remove(b'%');

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt as _;

    #[test]
    fn raw_characters_a_uri_cannot_hold_are_escaped_not_a_panic() {
        let mut event = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /v1/reports/activations",
            "rawPath": "/v1/reports/activations",
            "rawQueryString": "q=\"Lee\" <x>&limit=5&name=Zoë",
            "headers": {},
            "requestContext": {"http": {"method": "GET", "path": "/v1/reports/activations", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "t"},
                               "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d", "requestId": "r",
                               "routeKey": "GET /v1/reports/activations", "stage": "$default", "time": "t", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        escape_raw_uri(&mut event);
        assert_eq!(event["rawQueryString"], "q=%22Lee%22%20%3Cx%3E&limit=5&name=Zo%C3%AB");
        let payload: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        let req: Request = payload.into();
        let q = req.query_string_parameters();
        assert_eq!(q.first("q"), Some("\"Lee\" <x>"));
        assert_eq!(q.first("name"), Some("Zoë"));
        assert_eq!(q.first("limit"), Some("5"));
    }

    #[test]
    fn valid_uris_are_left_alone() {
        let mut event = serde_json::json!({"rawPath": "/v1/contacts/c-1", "rawQueryString": "q=ann%20lee&cursor=abc%3D%3D"});
        let before = event.clone();
        escape_raw_uri(&mut event);
        assert_eq!(event, before);
    }

    #[test]
    fn the_gateway_gets_text_as_text_binary_as_base64_and_cookies_apart() {
        let text = Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("set-cookie", "a=1; Secure")
            .header("set-cookie", "b=2; HttpOnly")
            .body(Body::Text("{\"ok\":true}".into()))
            .unwrap();
        let out = serde_json::to_value(gateway_response(text)).unwrap();
        assert_eq!(out["statusCode"], 201);
        assert_eq!(out["body"], "{\"ok\":true}");
        assert_eq!(out["isBase64Encoded"], false);
        assert_eq!(out["headers"]["content-type"], "application/json");
        assert_eq!(out["cookies"], serde_json::json!(["a=1; Secure", "b=2; HttpOnly"]));
        assert!(out["headers"].get("set-cookie").is_none(), "{out}");

        let binary = Response::builder().header("content-type", "application/pdf").body(Body::Binary(vec![0, 159, 146, 150])).unwrap();
        let out = serde_json::to_value(gateway_response(binary)).unwrap();
        assert_eq!(out["isBase64Encoded"], true);
        assert_eq!(out["body"], "AJ+Slg==");

        let empty = Response::builder().status(204).body(Body::Empty).unwrap();
        let out = serde_json::to_value(gateway_response(empty)).unwrap();
        assert_eq!(out["statusCode"], 204);
        assert!(out.get("body").is_none_or(serde_json::Value::is_null), "{out}");
    }
}
