//! Test harness: every test gets its own tenant on the shared local stack
//! (DynamoDB Local, moto, the local gateway), started by `infra/run-tests`.

use chrono::{DateTime, Utc};
use portal::app::App;
use portal::queue::MailQueue;
pub use portal_local::events::ApiEvent;
use portal_local::local::Endpoints;
use portal_local::{jwt, local, template::Template};
use std::sync::{Arc, Mutex};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const READ: &str = "portal:read";
pub const WRITE: &str = "portal:read portal:write";
pub const ADMIN: &str = "portal:read portal:write portal:admin";

pub fn template() -> Template {
    Template::load_default().expect("template.yaml loads")
}

/// A random private address, to act as one client of the claim page.
pub fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A tenant of our own, talking to the gateway.
pub struct TestApp {
    pub base: String,
    pub tenant: String,
    pub client: reqwest::Client,
    expected: jwt::Expected,
}

/// An answer: status, headers' content type, JSON body (Null if none).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// Asserts a problem+json answer with `status`, returning its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        for field in ["type", "title", "detail"] {
            assert!(self.body[field].is_string(), "problem lacks {field}: {self:?}");
        }
        self.body["detail"].as_str().unwrap().to_owned()
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:?}");
        &self.body
    }
}

impl TestApp {
    pub async fn new() -> Self {
        let base = format!("http://{}", local::gateway_addr());
        // Each test app is its own client address, so one test's failed
        // claims never throttle another's (see the gateway's X-Forwarded-For).
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", random_ip().parse().unwrap());
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build().unwrap();
        let health = client.get(format!("{base}/local/health")).send().await;
        assert!(
            health.is_ok_and(|r| r.status().is_success()),
            "the local gateway is not running at {base}: run the tests with infra/run-tests"
        );
        Self { base, tenant: unique("t"), client, expected: jwt::Expected::from_template(&template()) }
    }

    pub fn token(&self, scope: &str) -> String {
        self.token_for(&self.tenant, scope)
    }

    pub fn token_for(&self, tenant: &str, scope: &str) -> String {
        jwt::mint(&self.expected, "staff-test", tenant, scope, 600)
    }

    /// A token of this tenant for another staff member (token subject `sub`).
    pub fn token_as(&self, sub: &str, scope: &str) -> String {
        jwt::mint(&self.expected, sub, &self.tenant, scope, 600)
    }

    /// A request with an optional token and a raw body.
    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: Option<String>) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status();
        let content_type = resp.headers().get("content-type").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, content_type, body }
    }

    pub async fn call(&self, method: Method, path: &str, scope: &str, body: Option<Value>) -> Answer {
        let token = self.token(scope);
        self.raw(method, path, Some(&token), body.map(|b| b.to_string())).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, READ, None).await
    }

    pub async fn put_portal(&self, id: &str, default: bool) -> Answer {
        let body = json!({"name": format!("Portal {id}"), "default": default, "claim_url": "https://portal.example.com/claim"});
        self.call(Method::PUT, &format!("/v1/portals/{id}"), ADMIN, Some(body)).await
    }

    pub async fn put_contact(&self, id: &str, email: Option<&str>) -> Answer {
        let body = json!({"name": format!("Contact {id}"), "email": email, "kind": "individual"});
        self.call(Method::PUT, &format!("/v1/contacts/{id}"), WRITE, Some(body)).await
    }

    pub async fn generate(&self, contact: &str, body: Value) -> Answer {
        self.call(Method::POST, &format!("/v1/contacts/{contact}/codes"), WRITE, Some(body)).await
    }

    pub async fn claim(&self, body: Value) -> Answer {
        self.raw(Method::POST, "/v1/claim", None, Some(body.to_string())).await
    }

    /// A claim that is confirmed by email, as a person would: the claim answers
    /// 202, the confirmation reaches the typed address (moto's SES), and its
    /// link's token is confirmed. Returns the confirmation's answer.
    pub async fn claim_confirmed(&self, body: Value) -> Answer {
        let to = body["email"].as_str().expect("a claim names its email").to_lowercase();
        let before = ses_messages_to(&to).await.len();
        let sent = self.claim(body).await;
        assert_eq!(sent.ok(202), &json!({"state": "confirmation_sent"}));
        let token = confirmation_token_for(&to, before).await;
        self.raw(Method::POST, "/v1/claim/confirm", None, Some(json!({"token": token}).to_string())).await
    }

    /// A claim from client address `ip` (another person than this app's client).
    pub async fn claim_from(&self, ip: &str, body: Value) -> Answer {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/claim", self.base))
            .header("x-forwarded-for", ip)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("gateway answers");
        let status = resp.status();
        let content_type = resp.headers().get("content-type").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, content_type, body }
    }

    /// The portlet as front-desk staff see it (`portal:write`: pending codes whole;
    /// with `portal:read` alone they are masked, `hardening.rs`).
    pub async fn status(&self, contact: &str) -> Answer {
        self.call(Method::GET, &format!("/v1/contacts/{contact}/portal"), WRITE, None).await
    }

    pub async fn emails(&self, contact: &str) -> Answer {
        self.get(&format!("/v1/contacts/{contact}/emails")).await
    }

    /// A tenant with a default portal `main` and one contact; returns the contact id.
    pub async fn with_contact(&self, email: Option<&str>) -> String {
        self.put_portal("main", true).await.ok(200);
        let contact = unique("chart");
        self.put_contact(&contact, email).await.ok(200);
        contact
    }
}

/// Emails moto's SES has accepted for `to`: (subject, body) pairs.
pub async fn ses_messages_to(to: &str) -> Vec<(String, String)> {
    // moto dumps every service's state here; a dump that races a write answers a
    // 500 now and then, so a few tries before giving up.
    let mut data = Value::Null;
    for attempt in 1..=5 {
        let answer = reqwest::get(format!("{}/moto-api/data.json", local::moto_endpoint())).await.expect("moto answers");
        match answer.json::<Value>().await {
            Ok(d) => {
                data = d;
                break;
            }
            Err(e) if attempt == 5 => panic!("moto's data is not JSON after {attempt} tries: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|x| x == to)))
        .map(|m| (m["subject"].as_str().unwrap_or_default().to_owned(), m["body"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The token of the newest confirmation link moto's SES sent to `to`, once
/// more than `before` emails reached it.
pub async fn confirmation_token_for(to: &str, before: usize) -> String {
    // The gateway's mailer sends it; under the whole suite's load that can take a while.
    let found = eventually(Duration::from_secs(60), || async {
        let sent = ses_messages_to(to).await;
        if sent.len() <= before {
            return None;
        }
        sent[before..].iter().rev().find_map(|(_, body)| confirm_token_in(body))
    })
    .await;
    found.unwrap_or_else(|| panic!("no confirmation email reached {to}"))
}

/// The `confirm_token` of a confirmation link in `text`.
pub fn confirm_token_in(text: &str) -> Option<String> {
    let at = text.find("confirm_token=")? + "confirm_token=".len();
    Some(text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect())
}

/// In process (no mailer runs): the confirmation token of the newest
/// claim confirmation on the contact's email log, opened from its sealed copy
/// as the mailer would, then confirmed through the claim handler.
pub async fn confirm_in_process(app: &App, tenant: &str, contact: &str) -> lambda_http::Response<lambda_http::Body> {
    let tenant_id = portal::domain::TenantId::parse(tenant).unwrap();
    let contact_id = portal::domain::ContactId::parse(contact).unwrap();
    let emails = app.store.list_emails(&tenant_id, &contact_id).await.unwrap();
    let email = emails
        .iter()
        .filter(|e| e.kind == portal::domain::EmailKind::ClaimConfirmation)
        .max_by_key(|e| e.created_at)
        .expect("a claim confirmation on the contact's email log");
    let secrets: Value = serde_json::from_str(&app.keys.get().await.unwrap().open_sealed(&email.document_id, email.sealed.as_deref().unwrap()).unwrap()).unwrap();
    let token = confirm_token_in(secrets["link"].as_str().unwrap()).unwrap();
    portal::http::HttpFunction::Claim.handle(app, fixture("claim-confirm.json").json(&json!({"token": token})).request()).await
}

/// The text body of the email moto's SES accepted with `message_id`.
pub async fn ses_message_text(message_id: &str) -> String {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", local::moto_endpoint())).await.expect("moto answers").json().await.expect("JSON");
    let messages = data["ses"]["Message"].as_array().cloned().unwrap_or_default();
    let m = messages.iter().find(|m| m["id"] == message_id).unwrap_or_else(|| panic!("moto holds no SES message {message_id}"));
    m["body"].as_str().map(str::to_owned).unwrap_or_else(|| m["body"].to_string())
}

/// Polls `check` until it returns Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// In-process handler tests: real-shaped events, the functions' handlers, a clock the test controls.

/// `events/<name>` as JSON (the SQS and schedule fixtures).
pub fn event(name: &str) -> Value {
    portal_local::events::fixture_json(name).unwrap()
}

/// The API Gateway fixture `events/<name>`, to build on, from a random
/// client address (so no test's failed claims throttle another's).
pub fn fixture(name: &str) -> ApiEvent {
    ApiEvent::fixture(name).unwrap().source_ip(&random_ip())
}

/// A staff member's request for `route` (as template.yaml writes it) with
/// every scope; [`call`] or `.tenant(..)` says whose tenant.
pub fn staff(method: &str, route: &str) -> ApiEvent {
    ApiEvent::new(method, route).scope(ADMIN)
}

pub fn body(resp: &lambda_http::Response<lambda_http::Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null)
}

pub struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    pub fn install(app: &mut App, start: DateTime<Utc>) -> Self {
        let now = Arc::new(Mutex::new(start));
        let shared = now.clone();
        app.clock = Arc::new(move || *shared.lock().unwrap());
        Self(now)
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

/// A function's dependencies on the local stack. Email jobs go to a queue of
/// the tests' own, so the gateway's mailer does not race the one under test.
pub async fn app(binary: &str) -> App {
    let endpoints = Endpoints::from_env().await;
    let mut app = local::http_app(&endpoints, &template(), binary).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let url = sqs.create_queue().queue_name("HandlerTestMailQueue").send().await.unwrap().queue_url.unwrap();
    app.mail_queue = MailQueue::new(&endpoints.moto, url);
    app
}

/// Calls `f` in process with `e` on behalf of `tenant`: (status, JSON body).
pub async fn call(app: &App, f: portal::http::HttpFunction, tenant: &str, e: ApiEvent) -> (u16, Value) {
    let resp = f.handle(app, e.tenant(tenant).request()).await;
    (resp.status().as_u16(), body(&resp))
}


/// The first link in `text` (an email body) whose URL contains `path`, as a
/// browser would follow it (`&amp;` of an HTML body read back as `&`).
pub fn link_in(text: &str, path: &str) -> Option<String> {
    // An HTML body escapes `/` and `&` in attributes (minijinja: `&#x2f;`, `&amp;`).
    let text = text.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&");
    text.match_indices("http").find_map(|(at, _)| {
        let url: String = text[at..].chars().take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>')).collect();
        url.contains(path).then_some(url)
    })
}

/// The newest link containing `path` in an email moto's SES sent to `to`,
/// once more than `before` emails reached it.
pub async fn emailed_link(to: &str, before: usize, path: &str) -> String {
    let found = eventually(Duration::from_secs(60), || async {
        let sent = ses_messages_to(to).await;
        if sent.len() <= before {
            return None;
        }
        sent[before..].iter().rev().find_map(|(_, body)| link_in(body, path))
    })
    .await;
    found.unwrap_or_else(|| panic!("no email with a {path} link reached {to}"))
}

impl TestApp {
    /// A default portal `main` on the deployment's hosted claim page (no `claim_url`), checking `checks`.
    pub async fn put_hosted_portal(&self, name: &str, checks: Value) -> Answer {
        let body = json!({"name": name, "default": true, "claim_checks": checks});
        self.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await
    }

    /// A hosted portal `main` named `name`, a contact with an email of record,
    /// and an activation link emailed to it: (contact, email, link).
    pub async fn activated_link(&self, name: &str) -> (String, String, String) {
        self.put_hosted_portal(name, json!([])).await.ok(200);
        let contact = unique("chart");
        let email = format!("{contact}@example.com");
        self.put_contact(&contact, Some(&email)).await.ok(200);
        let before = ses_messages_to(&email).await.len();
        self.call(Method::POST, &format!("/v1/contacts/{contact}/portal/activate"), WRITE, Some(json!({}))).await.ok(202);
        let link = emailed_link(&email, before, "/claim?").await;
        (contact, email, link)
    }

    /// The gateway's base URL (the hosted pages' too).
    pub fn base(&self) -> &str {
        &self.base
    }
}

// Activation-queue messages with their proof (`portal::domain::queue_proof`).

/// The key the service signs its own activation messages with, as the local stack derives it
/// (`setup` gives the code hash key's secret the local key; tests that rotate use a secret of their own).
pub fn service_queue_key() -> Vec<u8> {
    let hash_key = local::parameter_value(&template(), "CodeHashKey").expect("the local hash key");
    portal::domain::queue_proof::service_key(hash_key.as_bytes())
}

/// The proof attributes of `body`, signed now by `signer` for `tenant`.
pub fn proof(key: &[u8], tenant: &str, signer: &portal::domain::queue_proof::Signer, body: &str) -> Vec<(&'static str, String)> {
    let tenant = portal::domain::TenantId::parse(tenant).unwrap();
    portal::domain::queue_proof::attributes(key, Utc::now().timestamp(), &tenant, signer, body)
}

/// A SendMessageBatch entry carrying `attributes`.
pub fn queue_entry(id: &str, body: &str, attributes: &[(&'static str, String)]) -> aws_sdk_sqs::types::SendMessageBatchRequestEntry {
    let mut e = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(id).message_body(body);
    for (name, value) in attributes {
        e = e.message_attributes(*name, aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap());
    }
    e.build().unwrap()
}

/// The activator's event for one message as SQS delivers it now, carrying `attributes`.
pub fn activation_event(message_id: &str, body: &str, receive_count: u32, attributes: &[(&'static str, String)]) -> aws_lambda_events::sqs::SqsEvent {
    let mut e = event("activation-batch.json");
    let record = &mut e["Records"][0];
    record["messageId"] = json!(message_id);
    record["body"] = json!(body);
    record["attributes"]["ApproximateReceiveCount"] = json!(receive_count.to_string());
    record["attributes"]["SentTimestamp"] = json!(Utc::now().timestamp_millis().to_string());
    record["messageAttributes"] = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!({"stringValue": v, "stringListValues": [], "binaryListValues": [], "dataType": "String"})))
        .collect::<serde_json::Map<_, _>>()
        .into();
    serde_json::from_value(e).unwrap()
}

/// The same, signed by the service itself.
pub fn service_activation_event(message_id: &str, tenant: &str, body: &str, receive_count: u32) -> aws_lambda_events::sqs::SqsEvent {
    activation_event(message_id, body, receive_count, &proof(&service_queue_key(), tenant, &portal::domain::queue_proof::Signer::Service, body))
}
