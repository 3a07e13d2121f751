//! HTTP entry points. Every operation has the same shape: read the caller and
//! the input into domain types ([`request`]), call the use case, answer JSON or
//! a problem ([`problem`]). Each Lambda binary's `main` calls one `handle`.

pub mod access;
pub mod activations;
pub mod admin;
pub mod admin_views;
pub mod claim;
pub mod generate;
pub mod idempotency;
pub mod lifecycle;
pub mod problem;
pub mod reports;
pub mod request;
pub mod status;
pub mod templates;

use crate::app::App;
use lambda_http::{Body, Request, Response};

/// The HTTP functions, by binary name (as in template.yaml's BuildProperties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFunction {
    Generate,
    Claim,
    Status,
    Admin,
    Lifecycle,
    Access,
    Activations,
    Reports,
}

impl HttpFunction {
    pub fn from_binary(name: &str) -> Option<Self> {
        Some(match name {
            "generate" => Self::Generate,
            "claim" => Self::Claim,
            "status" => Self::Status,
            "admin" => Self::Admin,
            "lifecycle" => Self::Lifecycle,
            "access" => Self::Access,
            "activations" => Self::Activations,
            "reports" => Self::Reports,
            _ => return None,
        })
    }

    /// Calls the function's handler, as its Lambda binary would: through
    /// [`idempotency::around`] when the request carries a key for an effectful route.
    pub async fn handle(self, app: &App, req: Request) -> Response<Body> {
        if idempotency::applies(&req) {
            return idempotency::around(app, req, |req| self.dispatch(app, req)).await;
        }
        self.dispatch(app, req).await
    }

    async fn dispatch(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Self::Generate => generate::handle(app, req).await,
            Self::Claim => claim::handle(app, req).await,
            Self::Status => status::handle(app, req).await,
            Self::Admin => admin::handle(app, req).await,
            Self::Lifecycle => lifecycle::handle(app, req).await,
            Self::Access => access::handle(app, req).await,
            Self::Activations => activations::handle(app, req).await,
            Self::Reports => reports::handle(app, req).await,
        }
    }
}

/// Runs an HTTP function as a Lambda: JSON logs, dependencies built once at
/// cold start from the environment, then every request to its handler.
///
/// Events pass through [`escape_raw_uri`] first: lambda_http builds an
/// `http::Uri` from `rawPath` and `rawQueryString` and panics (a 5xx) on a
/// character a URI may not hold, such as a client's raw `"` or space.
pub async fn serve(function: HttpFunction) -> Result<(), lambda_http::Error> {
    use lambda_http::tower::Service as _;
    crate::telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    let handler = lambda_http::service_fn(move |req: Request| async move { Ok::<_, lambda_http::Error>(function.handle(app, req).await) });
    let mut adapter = lambda_http::Adapter::from(handler);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let (mut payload, context) = event.into_parts();
        escape_raw_uri(&mut payload);
        let call = serde_json::from_value::<lambda_http::request::LambdaRequest>(payload)
            .map(|payload| adapter.call(lambda_runtime::LambdaEvent::new(payload, context)));
        async move {
            match call {
                Ok(response) => response.await,
                Err(e) => Err(lambda_http::Error::from(format!("not an API Gateway event: {e}"))),
            }
        }
    }))
    .await
}

/// Percent-encodes what a URI cannot hold in an API Gateway event's
/// `rawPath` and `rawQueryString` (spaces, quotes, `<>`, controls, non-ASCII);
/// what is already valid, `%` escapes included, is left as it is.
pub fn escape_raw_uri(event: &mut serde_json::Value) {
    for field in ["rawPath", "rawQueryString"] {
        if let Some(raw) = event.get(field).and_then(|v| v.as_str()) {
            if raw.bytes().any(needs_escape) {
                let escaped: String = raw
                    .bytes()
                    .map(|b| if needs_escape(b) { format!("%{b:02X}") } else { (b as char).to_string() })
                    .collect();
                event[field] = serde_json::Value::String(escaped);
            }
        }
    }
}

fn needs_escape(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

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
}
