//! The local API gateway and event source mappings.
//!
//! HTTP: serves template.yaml's HttpApi routes with the functions' own
//! handlers. Each request becomes the API Gateway HTTP API v2 payload the
//! Lambda would receive on AWS (route key, path parameters, JWT claims in the
//! authorizer context, source IP), is parsed by lambda_http exactly as in the
//! Lambda, and the handler's response is sent back. Staff routes check the
//! bearer JWT as the authorizer does; 401 and 404 look like API Gateway's own.
//! `GET /openapi.yaml` answers the repository's API contract (no auth). The
//! event is built by [`crate::events::ApiEvent`], as the tests' events are.
//!
//! SQS: for each SQS event source in the template, a poller receives batches
//! (the template's BatchSize, the queue's visibility timeout), hands them to
//! the function as an `SqsEvent`, and deletes the messages that did not fail,
//! honouring ReportBatchItemFailures ([`crate::sqs_loop`], the loop the tests
//! use too). Failed messages reappear after the visibility timeout and move
//! to the DLQ after maxReceiveCount, as on AWS.

use crate::events::{match_path, ApiEvent};
use crate::jwt::{self, Expected};
use crate::local::{self, Endpoints};
use crate::sqs_loop::EventSource;
use crate::template::{Route, Template};
use anyhow::Context as _;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use axum::{body::Body as AxumBody, extract::ConnectInfo, http::StatusCode, response::IntoResponse};
use portal::app::App;
use portal::http::HttpFunction;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// API Gateway's payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

struct Served {
    route: Route,
    function: HttpFunction,
    app: Arc<App>,
}

struct Gateway {
    routes: Vec<Served>,
    expected: Expected,
    scheduler: Option<portal::workers::scheduler::Scheduler>,
}

fn gateway_error(status: StatusCode, message: &str) -> axum::response::Response {
    (status, [("content-type", "application/json")], serde_json::json!({ "message": message }).to_string()).into_response()
}

/// `GET /openapi.yaml`: the API's contract, read from the repository root on
/// every request so it is always the checked-in file. No auth, like a docs page.
fn openapi_document() -> axum::response::Response {
    match std::fs::read(crate::repo_root().join("openapi.yaml")) {
        Ok(bytes) => (StatusCode::OK, [("content-type", "application/yaml")], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not read openapi.yaml");
            gateway_error(StatusCode::NOT_FOUND, "Not Found")
        }
    }
}

/// The caller's address as API Gateway would see it: the TCP peer, or the
/// first `X-Forwarded-For` address when one is given (local only, so tests
/// can act as many clients; the real API Gateway uses the peer).
fn source_ip(headers: &axum::http::HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .unwrap_or(peer.ip())
        .to_string()
}

impl Gateway {
    async fn serve(&self, peer: SocketAddr, req: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let method = parts.method.as_str().to_owned();
        let path = parts.uri.path().to_owned();
        if path == "/local/health" {
            return (StatusCode::OK, "ok").into_response();
        }
        if path == "/openapi.yaml" && (method == "GET" || method == "HEAD") {
            return openapi_document();
        }
        // The console's sign-in on the local stack only (on AWS: the issuer's, with PKCE).
        if path == SIGN_IN {
            return match method.as_str() {
                "GET" => sign_in_page(&crate::events::query_map(parts.uri.query().unwrap_or_default())),
                "POST" => match axum::body::to_bytes(body, 64 * 1024).await {
                    Ok(b) => self.sign_in(&crate::events::query_map(&String::from_utf8_lossy(&b).replace('+', " "))),
                    Err(_) => gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
                },
                _ => gateway_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            };
        }
        // The EventBridge schedule, on demand: runs the scheduler once.
        if path == "/local/scheduler/run" && method == "POST" {
            let Some(scheduler) = &self.scheduler else {
                return gateway_error(StatusCode::NOT_FOUND, "Not Found");
            };
            return match scheduler.run(std::time::Instant::now() + std::time::Duration::from_secs(300)).await {
                Ok(summary) => (StatusCode::OK, [("content-type", "application/json")], serde_json::to_string(&summary).unwrap_or_default()).into_response(),
                Err(e) => {
                    tracing::error!(error = ?e, "scheduler run failed");
                    gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "scheduler run failed")
                }
            };
        }
        // As API Gateway routes: the route of this method and path, else the `$default`
        // route (template.yaml's `Path: $default`), else its own 404.
        let routed = self.routes.iter().filter(|s| s.route.method == method).find_map(|s| match_path(&s.route.path, &path).map(|p| (s, p)));
        let fallback = || self.routes.iter().find(|s| s.route.path == "$default").map(|s| (s, Default::default()));
        let Some((served, params)) = routed.or_else(fallback) else {
            return gateway_error(StatusCode::NOT_FOUND, "Not Found");
        };
        let claims = if served.route.public {
            None
        } else {
            let token = parts
                .headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
            match token.and_then(|t| jwt::verify(&self.expected, t.trim())) {
                Some(c) => Some(c),
                None => return gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        };
        let bytes = match axum::body::to_bytes(body, MAX_PAYLOAD).await {
            Ok(b) => b,
            Err(_) => return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        };
        let route_key = format!("{} {}", served.route.method, served.route.path);
        let mut event = ApiEvent::new(&method, &served.route.path)
            .path(&path)
            .params(params)
            .raw_query(parts.uri.query().unwrap_or_default())
            .source_ip(&source_ip(&parts.headers, peer))
            .body(bytes.to_vec());
        for (name, value) in &parts.headers {
            event = event.append_header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        }
        if let Some(claims) = claims {
            event = event.claims(claims);
        }
        let request = match event.try_request() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not build the Lambda event");
                return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let started = std::time::Instant::now();
        let response = served.function.handle(&served.app, request).await;
        tracing::info!(%method, route = %route_key, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
        let (parts, body) = response.into_parts();
        let bytes: Vec<u8> = body.as_ref().to_vec();
        axum::response::Response::from_parts(parts, AxumBody::from(bytes))
    }
}

/// The local sign-in page of the console (`CONSOLE_LOCAL_SIGN_IN` in its config).
pub const SIGN_IN: &str = "/local/sign-in";

/// A form value, trimmed.
fn form_value<'a>(form: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> &'a str {
    form.get(name).and_then(|v| v.as_str()).unwrap_or_default().trim()
}

/// Where a signed-in token may go: back to the console on this gateway, nowhere else.
fn console_target(redirect_uri: &str) -> Option<String> {
    let path = redirect_uri.strip_prefix("http://").and_then(|r| r.find('/').map(|i| &r[i..])).unwrap_or(redirect_uri);
    (path.starts_with("/console/") && !path.contains(['#', '?', '\\']) && !path.contains("..")).then(|| path.to_owned())
}

fn sign_in_page(query: &serde_json::Map<String, serde_json::Value>) -> axum::response::Response {
    use portal::http::html::{Field, Form, Page};
    let back = form_value(query, "back");
    let redirect = form_value(query, "redirect_uri");
    let state = form_value(query, "state");
    let page = Page::new("Portal Access (local stack)", "Sign in to the console")
        .text("The local stack mints a staff token for the tenant and scope you choose, as portal-local token does. On AWS the console signs in with your identity provider instead.")
        .form(
            Form::post(SIGN_IN)
                .hidden("redirect_uri", if redirect.is_empty() { "/console/" } else { redirect })
                .hidden("back", back)
                .hidden("state", state)
                .field(Field { value: crate::seed::DEMO_TENANT, ..Field::new("tenant", "Tenant", "text", "off") })
                .field(Field { value: "staff@local", ..Field::new("sub", "Staff member", "text", "username") })
                .field(Field {
                    value: "portal:admin",
                    hint: Some("portal:read (read only), portal:write (staff) or portal:admin"),
                    ..Field::new("scope", "Scope", "text", "off")
                })
                .button("Sign in", None),
        );
    to_axum(page.respond(StatusCode::OK))
}

fn to_axum(response: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    axum::response::Response::from_parts(parts, AxumBody::from(body.as_ref().to_vec()))
}

impl Gateway {
    /// Mints the token and sends it back to the console in the URL fragment (never to a server).
    fn sign_in(&self, form: &serde_json::Map<String, serde_json::Value>) -> axum::response::Response {
        let (tenant, sub, scope) = (form_value(form, "tenant"), form_value(form, "sub"), form_value(form, "scope"));
        let Some(target) = console_target(form_value(form, "redirect_uri")) else {
            return gateway_error(StatusCode::BAD_REQUEST, "redirect_uri must be a path of the console");
        };
        if tenant.is_empty() || sub.is_empty() || scope.is_empty() {
            return gateway_error(StatusCode::BAD_REQUEST, "tenant, sub and scope are required");
        }
        let token = jwt::mint(&self.expected, sub, tenant, scope, 3600);
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        // The console's own `state` comes back beside the token: it takes a token only for a sign-in it started.
        let location = format!(
            "{target}#access_token={}&state={}&back={}",
            enc(&token),
            enc(form_value(form, "state")),
            enc(form_value(form, "back"))
        );
        (StatusCode::SEE_OTHER, [("location", location), ("cache-control", "no-store".into())]).into_response()
    }
}

/// Serves HTTP on `addr` and polls the SQS event sources until `shutdown` fires.
pub async fn run(endpoints: Endpoints, template: Template, addr: &str, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut routes = Vec::new();
    for f in &template.functions {
        if f.routes.is_empty() {
            continue;
        }
        let function = HttpFunction::from_binary(&f.binary)
            .with_context(|| format!("template function {} ({}) has no HTTP handler", f.logical_id, f.binary))?;
        let app = Arc::new(local::http_app(&endpoints, &template, &f.binary).await?);
        for route in &f.routes {
            routes.push(Served { route: route.clone(), function, app: app.clone() });
        }
    }
    let scheduler = match template.function("scheduler") {
        Some(_) => Some(local::scheduler(&endpoints, &template).await?),
        None => None,
    };
    let expected = Expected::from_template(&template);
    // The console as built in the repository (infra/build web), signing in on this gateway.
    let config = portal::http::console::ConsoleConfig {
        issuer: expected.issuer.clone(),
        client_id: expected.audience.clone(),
        scopes: "openid".into(),
        local_sign_in: Some(SIGN_IN.into()),
    };
    let assets = std::env::var_os("CONSOLE_ASSETS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("functions/console/web/dist"));
    portal::http::console::Assets::install(portal::http::console::Assets::from_dir(&assets, config).with_demo(true));
    let gateway = Arc::new(Gateway { routes, expected, scheduler });
    let mut pollers = Vec::new();
    for f in &template.functions {
        for source in &f.sqs {
            let function = SqsFunction::new(&endpoints, &template, &f.binary).await?;
            let source = EventSource::from_template(&endpoints, source).await?;
            let shutdown = shutdown.clone();
            pollers.push(tokio::spawn(async move { source.run(|e| function.handle(e), shutdown).await }));
        }
    }
    for f in &template.functions {
        let Some(batch_size) = f.table_stream else { continue };
        anyhow::ensure!(f.binary == "publisher", "no local stream handler for {}", f.binary);
        let publisher = local::publisher(&endpoints, &template).await?;
        let source = crate::stream_loop::StreamSource::of_table(&endpoints, &local::table_name(&template)?, batch_size).await?;
        let shutdown = shutdown.clone();
        pollers.push(tokio::spawn(async move { source.run(|e| publisher.handle_batch(e), shutdown).await }));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    println!("local gateway listening on http://{addr}");
    let app = axum::Router::new().fallback(move |ConnectInfo(peer): ConnectInfo<SocketAddr>, req: axum::extract::Request| {
        let gateway = gateway.clone();
        async move { gateway.serve(peer, req).await }
    });
    let mut stop = shutdown.clone();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    for p in pollers {
        let _ = p.await;
    }
    Ok(())
}

/// The SQS functions the local stack can drive, by binary name.
enum SqsFunction {
    Mailer(portal::workers::mailer::Mailer),
    Activator(portal::workers::activator::Activator),
    Deliveries(portal::workers::deliveries::Deliveries),
}

impl SqsFunction {
    async fn new(endpoints: &Endpoints, t: &Template, binary: &str) -> anyhow::Result<Self> {
        Ok(match binary {
            "mailer" => Self::Mailer(local::mailer(endpoints, t).await?),
            "activator" => Self::Activator(local::activator(endpoints, t).await?),
            "deliveries" => Self::Deliveries(local::deliveries(endpoints, t).await?),
            other => anyhow::bail!("no local SQS handler for {other}"),
        })
    }

    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        match self {
            Self::Mailer(m) => m.handle_batch(event).await,
            Self::Activator(a) => a.handle_batch(event).await,
            Self::Deliveries(d) => d.handle_batch(event).await,
        }
    }
}
