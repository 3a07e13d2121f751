//! The fault tests' harness: queues of a test's own with DLQs, in-process
//! handler calls and the events they take, the mail world the SES and
//! duplicate-delivery tests share, and reading the table back. Queues are
//! polled with portal-local's event-source loop ([`sqs_loop`]), the one the
//! local gateway runs, and events come from its one builder ([`ApiEvent`]).

use super::fault_proxy::FaultProxy;
use crate::helpers::*;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use portal::app::App;
use portal::domain::{ContactId, TenantId};
use portal::http::HttpFunction;
use portal::mail::{retry::Backoff, ses::Ses};
use portal::queue::MailQueue;
use portal::workers::mailer::Mailer;
use portal::store::{EmailKey, Store};
use portal_local::local::{self, Endpoints};
pub use portal_local::sqs_loop::{self, EventSource};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

pub type Item = HashMap<String, AttributeValue>;

/// Attempts the SDK makes per call (its standard retry), kept quick here.
pub const SDK_ATTEMPTS: usize = 3;

/// The mailer's backoff in these tests: 1 s, then 2 s.
pub const BACKOFF: Backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(2) };
/// The test mail queues' own visibility timeout: far above the backoff, so a
/// message back within a few seconds proves the mailer changed its visibility.
pub const MAIL_VISIBILITY: u32 = 20;
pub const MAIL_MAX_RECEIVES: u32 = 3;

/// An SDK configuration aimed at `endpoint`, retrying as the SDK does by default but without long sleeps.
pub async fn quick_sdk(endpoint: &str) -> SdkConfig {
    local::sdk_config(endpoint)
        .await
        .to_builder()
        .retry_config(
            RetryConfig::standard().with_max_attempts(SDK_ATTEMPTS as u32).with_initial_backoff(Duration::from_millis(20)),
        )
        .build()
}

// ---------------------------------------------------------------------------
// Queues of the test's own.

/// A queue with its DLQ, read as an event source mapping reads it (ten a batch).
pub struct TestQueue {
    pub url: String,
    pub dlq_url: String,
    pub source: EventSource,
}

/// A fresh queue of the test's own with a DLQ after `max_receives`.
pub async fn queue_with_dlq(sqs: &aws_sdk_sqs::Client, prefix: &str, visibility: u32, max_receives: u32) -> TestQueue {
    let name = unique(prefix);
    let dlq_url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let dlq_arn = sqs_loop::queue_arn(sqs, &dlq_url).await.unwrap();
    let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()});
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let source = EventSource::new(sqs, &url).await.unwrap();
    TestQueue { url, dlq_url, source }
}

/// Messages on a queue, visible or not.
pub async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    sqs_loop::messages_on(sqs, url).await.unwrap()
}

/// Every body on a queue, received (and deleted) until it is empty.
pub async fn drain_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    sqs_loop::drain_bodies(sqs, url).await.unwrap()
}

/// One message as the poller handed it over.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub receive_count: u32,
}

// ---------------------------------------------------------------------------
// In-process handlers and their events.

/// Calls a handler as `tenant`'s staff (a public event stays public); (status, content type, body).
pub async fn call_full(app: &App, f: HttpFunction, tenant: &str, e: ApiEvent) -> (u16, String, Value) {
    let resp = f.handle(app, e.tenant(tenant).request()).await;
    let content_type = resp.headers().get("content-type").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    (resp.status().as_u16(), content_type, body(&resp))
}

pub fn put_portal_event(id: &str, extra: Value) -> ApiEvent {
    let mut b = json!({"name": format!("Portal {id}"), "default": true, "claim_url": "https://portal.example.com/claim"});
    b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    staff("PUT", "/v1/portals/{portal_id}").param("portal_id", id).json(&b)
}

pub fn put_contact_event(id: &str, email: Option<&str>) -> ApiEvent {
    let b = json!({"name": format!("Contact {id}"), "email": email, "kind": "individual"});
    staff("PUT", "/v1/contacts/{contact_id}").param("contact_id", id).json(&b)
}

pub fn generate_event(id: &str, body: Value) -> ApiEvent {
    staff("POST", "/v1/contacts/{contact_id}/codes").param("contact_id", id).json(&body)
}

pub fn lifecycle_event(id: &str, action: &str) -> ApiEvent {
    staff("POST", &format!("/v1/contacts/{{contact_id}}/portal/{action}")).param("contact_id", id).json(&json!({}))
}

/// A claim from an address of the test's own (the claim throttle counts by source address).
pub fn claim_event(body: Value, source_ip: &str) -> ApiEvent {
    fixture("claim.json").json(&body).source_ip(source_ip).header("x-forwarded-for", source_ip)
}

pub fn random_loopback() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("127.{}.{}.{}", b[0], b[1], b[2].max(1))
}

#[track_caller]
pub fn ok(what: &str, (status, _, body): &(u16, String, Value), want: u16) -> Value {
    assert_eq!(*status, want, "{what}: {body}");
    body.clone()
}

// ---------------------------------------------------------------------------
// The mail world: what the SES and duplicate-delivery tests share.

pub struct MailWorld {
    pub endpoints: Endpoints,
    pub sqs: aws_sdk_sqs::Client,
    pub queue: TestQueue,
    pub tenant: String,
    pub contact: String,
    pub email: String,
    pub document_id: String,
    pub store: Store,
}

impl MailWorld {
    /// A tenant whose contact was sent a code by "Generate & Email": its job is on a queue of the test's own.
    pub async fn new(prefix: &str, visibility: u32) -> Self {
        let endpoints = Endpoints::from_env().await;
        let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
        let queue = queue_with_dlq(&sqs, prefix, visibility, MAIL_MAX_RECEIVES).await;
        let t = template();
        let admin = local::http_app(&endpoints, &t, "admin").await.unwrap();
        let mut generate = local::http_app(&endpoints, &t, "generate").await.unwrap();
        generate.mail_queue = MailQueue::new(&endpoints.moto, &queue.url);
        let tenant = unique(prefix);
        let contact = unique("chart");
        let email = format!("{}@example.com", unique(prefix));
        ok("portal", &call_full(&admin, HttpFunction::Admin, &tenant, put_portal_event("main", json!({}))).await, 200);
        ok("contact", &call_full(&admin, HttpFunction::Contacts, &tenant, put_contact_event(&contact, Some(&email))).await, 200);
        let issued = ok(
            "generate & email",
            &call_full(&generate, HttpFunction::Generate, &tenant, generate_event(&contact, json!({"send_email": true}))).await,
            201,
        );
        let document_id = issued["email_document_id"].as_str().unwrap().to_owned();
        Self { store: admin.store.clone(), endpoints, sqs, queue, tenant, contact, email, document_id }
    }

    /// The real mailer, its SES (and SQS for the backoff) through `proxy`.
    pub async fn mailer(&self, proxy: &FaultProxy) -> Mailer {
        let t = template();
        let mut m = local::mailer(&self.endpoints, &t).await.unwrap();
        let from = local::parameter_value(&t, "MailFrom").unwrap();
        m.sender.ses = Ses::new(&quick_sdk(&proxy.endpoint()).await, from)
            .with_configuration_set(local::function_env(&self.endpoints, &t, "mailer").await.unwrap().get("SES_CONFIGURATION_SET").cloned())
            .with_backoff(BACKOFF);
        m.sender.max_receive_count = MAIL_MAX_RECEIVES;
        m
    }

    pub async fn entry(&self) -> portal::store::items::EmailItem {
        let key = EmailKey {
            tenant_id: portal::domain::TenantId::parse(&self.tenant).unwrap(),
            contact_id: portal::domain::ContactId::parse(&self.contact).unwrap(),
            document_id: portal::domain::DocumentId::parse(&self.document_id).unwrap(),
        };
        self.store.get_email(&key).await.unwrap().expect("the email log entry")
    }

    pub async fn log_len(&self) -> usize {
        let tenant = TenantId::parse(&self.tenant).unwrap();
        self.store.list_emails(&tenant, &ContactId::parse(&self.contact).unwrap()).await.unwrap().len()
    }

    /// Polls like the gateway until `done` says so (bounded), returning what was received.
    pub async fn poll_until<D, DFut>(&self, mailer: &Mailer, limit: Duration, mut done: D) -> Vec<Received>
    where
        D: FnMut() -> DFut,
        DFut: Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        let mut received = Vec::new();
        while !done().await {
            assert!(Instant::now() < deadline, "not settled within {limit:?}; received so far: {received:?}");
            let batch = self.queue.source.poll_once(|e| mailer.handle_batch(e)).await.unwrap();
            received.extend(batch.iter().flat_map(|b| {
                b.messages.iter().map(|m| Received { at: b.received_at, receive_count: sqs_loop::receive_count(m) })
            }));
        }
        received
    }
}

// ---------------------------------------------------------------------------
// Reading the table back, straight from DynamoDB.

/// Every item of the table (the test's own DynamoDB Local holds only this test's data).
pub async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client.scan().table_name(table).consistent_read(true).set_exclusive_start_key(start).send().await.unwrap();
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return items,
        }
    }
}

pub fn attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}


/// Every item of these partitions.
pub async fn partition_items(client: &aws_sdk_dynamodb::Client, table: &str, pks: &[String]) -> Vec<Item> {
    let mut all = Vec::new();
    for pk in pks {
        let mut start = None;
        loop {
            let out = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            all.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------
// A DynamoDB Local of the test's own.

/// Port offsets (from PORTAL_DYNAMODB_PORT) of the tests' own DynamoDB Locals,
/// one per test, so they can run at the same time.
pub const RESTART_PORT_OFFSET: u16 = 40;
pub const PAUSE_PORT_OFFSET: u16 = 41;

/// A DynamoDB Local of the test's own (`infra/dynamodb-local.cjs`, a node
/// wrapper that spawns Java) with its data on disk in `dir`, on
/// PORTAL_DYNAMODB_PORT + an offset of the test's own, so CI and a second
/// stack never clash. It can be stopped and started again ([`Self::stop`],
/// [`Self::spawn`]) or paused and resumed ([`Self::pause`], SIGSTOP to the
/// wrapper and every process under it, Java included). When dropped it is
/// resumed and stopped (SIGTERM, by pid), even if the test panicked.
pub struct OwnDynamo {
    child: Option<tokio::process::Child>,
    port: u16,
    dir: std::path::PathBuf,
    paused: Vec<u32>,
}

impl OwnDynamo {
    fn port(offset: u16) -> u16 {
        let base: u16 = std::env::var("PORTAL_DYNAMODB_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
        base + offset
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A fresh directory for its data and log, on tmpfs where there is one:
    /// files that outlive the process, without paying SQLite's fsyncs on a
    /// shared 2-core machine.
    pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }.join(unique(prefix));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        dir
    }

    pub async fn start(dir: std::path::PathBuf, port_offset: u16) -> Self {
        let port = Self::port(port_offset);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} (PORTAL_DYNAMODB_PORT + {port_offset}) is in use; this test needs it for its own DynamoDB Local"
        );
        let mut me = Self { child: None, port, dir, paused: Vec::new() };
        me.spawn().await;
        me
    }

    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("dynamodb.log")).unwrap();
        let child = tokio::process::Command::new("node")
            .arg(portal_local::repo_root().join("infra/dynamodb-local.cjs"))
            .env("PORTAL_DYNAMODB_PORT", self.port.to_string())
            .env("PORTAL_DYNAMODB_DIR", self.dir.join("data"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("node runs infra/dynamodb-local.cjs");
        self.child = Some(child);
        let client = aws_sdk_dynamodb::Client::new(&local::sdk_config(&self.endpoint()).await);
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.list_tables().send().await.is_err() {
            assert!(Instant::now() < deadline, "DynamoDB Local did not start on {} (see {:?})", self.port, self.dir.join("dynamodb.log"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The table, as `portal-local setup` creates it.
    pub async fn create_table(&self, t: &portal_local::template::Template) {
        let direct = aws_sdk_dynamodb::Client::new(&local::sdk_config(&self.endpoint()).await);
        let spec = portal_local::setup::table_spec(t.tables.first().unwrap()).unwrap();
        direct
            .create_table()
            .table_name(local::table_name(t).unwrap())
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(spec.attributes))
            .set_key_schema(Some(spec.keys))
            .set_global_secondary_indexes((!spec.indexes.is_empty()).then_some(spec.indexes))
            .send()
            .await
            .unwrap();
    }

    /// The wrapper's pid and every process under it (Java), parents first.
    fn process_tree(&self) -> Vec<u32> {
        let Some(root) = self.child.as_ref().and_then(|c| c.id()) else { return Vec::new() };
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let out = std::process::Command::new("pgrep").args(["-P", &tree[i].to_string()]).output().expect("pgrep runs");
            tree.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            i += 1;
        }
        tree
    }

    fn signal(pids: &[u32], signal: &str) {
        for pid in pids {
            let _ = std::process::Command::new("kill").args([signal, &pid.to_string()]).status();
        }
    }

    /// SIGSTOP to the wrapper and Java: the port still accepts connections
    /// (the kernel's backlog) and nothing answers, as with a dependency that hangs.
    pub fn pause(&mut self) {
        let tree = self.process_tree();
        assert!(tree.len() >= 2, "the node wrapper and its Java child: {tree:?}");
        Self::signal(&tree, "-STOP");
        self.paused = tree;
    }

    /// SIGCONT to what [`Self::pause`] stopped, children first.
    pub fn resume(&mut self) {
        let paused: Vec<u32> = self.paused.drain(..).rev().collect();
        Self::signal(&paused, "-CONT");
    }

    /// SIGTERM to the node wrapper (it passes it on to Java), then waits for it to exit.
    pub async fn stop(&mut self) {
        self.resume();
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
        // The port is free again before anyone starts on it.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still answers after DynamoDB Local stopped", self.port);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OwnDynamo {
    fn drop(&mut self) {
        // A stopped process holds a SIGTERM until it is continued.
        self.resume();
        let tree = self.process_tree();
        Self::signal(&tree, "-TERM");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
