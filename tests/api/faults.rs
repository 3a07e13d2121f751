//! Faults (issue "Hardening"), injected at the network, never by mocking our
//! own code: a proxy ([`crate::fault_proxy`]) in front of moto (SES v2) or
//! DynamoDB Local answers chosen requests with the error AWS would send, and a
//! DynamoDB Local of the test's own is stopped and started again in the middle
//! of a bulk job.
//!
//! - SES throttling and 5xx: the mailer backs off (the message's visibility is
//!   set to the backoff), the message returns, after maxReceiveCount it is in
//!   the DLQ and the email log says `failed` with SES's reason; nothing is sent
//!   and nothing dropped. When SES recovers, exactly one email goes out.
//! - The same mail job delivered twice, and handled twice at once: one email.
//! - A cancelled transaction (ConditionalCheckFailed, TransactionConflict) on
//!   every transaction path reachable from HTTP, in the activator and the
//!   scheduler: a clean 4xx problem+json (or a clean retry/skip), nothing
//!   partial written, nothing queued, counters unchanged.
//! - DynamoDB Local restarted during a 1,000-contact bulk job: the job ends
//!   `done`, every contact accounted for once, no duplicate code or email.

use crate::fault_proxy::{Fault, FaultProxy, Rule};
use crate::helpers::*;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use portal::app::App;
use portal::workers::activator::Activator;
use portal::domain::{Contact, ContactId, ContactKind, EmailAddress, JobId, TenantId};
use portal::http::HttpFunction;
use portal::mail::{retry::Backoff, ses::Ses, EmailStatus};
use portal::queue::{ActivationQueue, MailQueue};
use portal::workers::mailer::Mailer;
use portal::workers::scheduler::Scheduler;
use portal::store::{EmailKey, Store};
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

type Item = HashMap<String, AttributeValue>;

/// Attempts the SDK makes per call (its standard retry), kept quick here.
const SDK_ATTEMPTS: usize = 3;

/// The mailer's backoff in these tests: 1 s, then 2 s.
const BACKOFF: Backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(2) };
/// The test mail queues' own visibility timeout: far above the backoff, so a
/// message back within a few seconds proves the mailer changed its visibility.
const MAIL_VISIBILITY: u32 = 20;
const MAIL_MAX_RECEIVES: u32 = 3;

/// An SDK configuration aimed at `endpoint`, retrying as the SDK does by default but without long sleeps.
async fn quick_sdk(endpoint: &str) -> SdkConfig {
    local::sdk_config(endpoint)
        .await
        .to_builder()
        .retry_config(
            RetryConfig::standard().with_max_attempts(SDK_ATTEMPTS as u32).with_initial_backoff(Duration::from_millis(20)),
        )
        .build()
}

// ---------------------------------------------------------------------------
// Queues and a poller like the local gateway's (receive → handler → delete the rest).

struct TestQueue {
    url: String,
    arn: String,
    dlq_url: String,
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap()
}

/// A fresh queue of the test's own with a DLQ after `max_receives`.
async fn queue_with_dlq(sqs: &aws_sdk_sqs::Client, prefix: &str, visibility: u32, max_receives: u32) -> TestQueue {
    let name = unique(prefix);
    let dlq_url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
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
    let arn = queue_arn(sqs, &url).await;
    TestQueue { url, arn, dlq_url }
}

/// Messages on a queue, visible or not.
async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    attrs.values().map(|v| v.parse::<u64>().unwrap_or(0)).sum()
}

/// Consumers that receive and delete a queue's messages, keeping their bodies.
/// moto's SQS costs O(n) per send and O(n²) per receive in the queue's
/// length, so a queue that grows unconsumed slows everything down: consume as
/// the mailer would.
struct Drain {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    consumers: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Drain {
    fn start(sqs: &aws_sdk_sqs::Client, url: &str, consumers: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumers = (0..consumers)
            .map(|_| {
                let (sqs, url, stop) = (sqs.clone(), url.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let mut bodies = Vec::new();
                    loop {
                        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).visibility_timeout(30).send().await;
                        let messages = out.ok().and_then(|o| o.messages).unwrap_or_default();
                        if messages.is_empty() {
                            if stop.load(std::sync::atomic::Ordering::SeqCst) && messages_on(&sqs, &url).await == 0 {
                                return bodies;
                            }
                            continue;
                        }
                        let entries: Vec<_> = messages
                            .iter()
                            .enumerate()
                            .map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(format!("d{i}")).receipt_handle(m.receipt_handle.clone().unwrap()).build().unwrap())
                            .collect();
                        sqs.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
                        bodies.extend(messages.into_iter().filter_map(|m| m.body));
                    }
                })
            })
            .collect();
        Self { stop, consumers }
    }

    /// Every body, once the queue is empty (bounded).
    async fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let all = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(self.consumers))
            .await
            .expect("the queue was drained within 120 s");
        all.into_iter().flat_map(|r| r.unwrap()).collect()
    }
}

/// Every body on a queue, received (and deleted) until it is empty.
async fn drain_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    Drain::start(sqs, url, 2).finish().await
}

/// One message as the poller handed it over.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    receive_count: u32,
}

/// The Lambda event for these messages, as the gateway's poller builds it.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: BTreeMap<String, String> =
                m.attributes.iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
            json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body, "md5OfBody": m.md5_of_body,
                "attributes": attributes, "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": arn,
                "awsRegion": local::REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// Deletes the messages the handler did not report as failed.
async fn delete_done(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[aws_sdk_sqs::types::Message], response: &SqsBatchResponse) {
    let failed: BTreeSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let mut seen = BTreeSet::new();
    let done: Vec<_> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .filter(|m| seen.insert(m.receipt_handle.clone()))
        .enumerate()
        .map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(format!("m{i}")).receipt_handle(m.receipt_handle.clone().unwrap()).build().unwrap())
        .collect();
    if !done.is_empty() {
        sqs.delete_message_batch().queue_url(url).set_entries(Some(done)).send().await.unwrap();
    }
}

/// One receive → handler → delete round, as the local gateway's SQS poller does.
async fn poll_once<F, Fut>(sqs: &aws_sdk_sqs::Client, q: &TestQueue, max: i32, handler: F) -> Vec<Received>
where
    F: FnOnce(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let out = sqs
        .receive_message()
        .queue_url(&q.url)
        .max_number_of_messages(max)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let at = Instant::now();
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Vec::new();
    }
    let response = handler(sqs_event(&messages, &q.arn)).await;
    delete_done(sqs, &q.url, &messages, &response).await;
    messages
        .iter()
        .map(|m| Received {
            at,
            receive_count: m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// In-process handlers.

/// Calls a handler; (status, content type, body).
async fn call_full(app: &App, f: HttpFunction, tenant: &str, e: Value) -> (u16, String, Value) {
    let resp = f.handle(app, request(e, tenant, None)).await;
    let content_type = resp.headers().get("content-type").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    (resp.status().as_u16(), content_type, body(&resp))
}

fn put_portal_event(id: &str, extra: Value) -> Value {
    let mut b = json!({"name": format!("Portal {id}"), "default": true, "claim_url": "https://portal.example.com/claim"});
    b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    staff_event("PUT", "/v1/portals/{portal_id}", &format!("/v1/portals/{id}"), json!({"portal_id": id}), Some(b), None)
}

fn put_contact_event(id: &str, email: Option<&str>) -> Value {
    let b = json!({"name": format!("Contact {id}"), "email": email, "kind": "individual"});
    staff_event("PUT", "/v1/contacts/{contact_id}", &format!("/v1/contacts/{id}"), json!({"contact_id": id}), Some(b), None)
}

fn generate_event(id: &str, body: Value) -> Value {
    staff_event("POST", "/v1/contacts/{contact_id}/codes", &format!("/v1/contacts/{id}/codes"), json!({"contact_id": id}), Some(body), None)
}

fn lifecycle_event(id: &str, action: &str) -> Value {
    staff_event(
        "POST",
        &format!("/v1/contacts/{{contact_id}}/portal/{action}"),
        &format!("/v1/contacts/{id}/portal/{action}"),
        json!({"contact_id": id}),
        Some(json!({})),
        None,
    )
}

/// A claim from an address of the test's own (the claim throttle counts by source address).
fn claim_event(body: Value, source_ip: &str) -> Value {
    let mut e = event("claim.json");
    e["body"] = json!(body.to_string());
    e["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    e["headers"]["x-forwarded-for"] = json!(source_ip);
    e
}

fn random_loopback() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("127.{}.{}.{}", b[0], b[1], b[2].max(1))
}

#[track_caller]
fn ok(what: &str, (status, _, body): &(u16, String, Value), want: u16) -> Value {
    assert_eq!(*status, want, "{what}: {body}");
    body.clone()
}

// ---------------------------------------------------------------------------
// 1. SES throttling and 5xx; 2. duplicate delivery.

struct MailWorld {
    endpoints: Endpoints,
    sqs: aws_sdk_sqs::Client,
    queue: TestQueue,
    tenant: String,
    contact: String,
    email: String,
    document_id: String,
    store: Store,
}

impl MailWorld {
    /// A tenant whose contact was sent a code by "Generate & Email": its job is on a queue of the test's own.
    async fn new(prefix: &str, visibility: u32) -> Self {
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
        ok("contact", &call_full(&admin, HttpFunction::Admin, &tenant, put_contact_event(&contact, Some(&email))).await, 200);
        let issued = ok(
            "generate & email",
            &call_full(&generate, HttpFunction::Generate, &tenant, generate_event(&contact, json!({"send_email": true}))).await,
            201,
        );
        let document_id = issued["email_document_id"].as_str().unwrap().to_owned();
        Self { store: admin.store.clone(), endpoints, sqs, queue, tenant, contact, email, document_id }
    }

    /// The real mailer, its SES (and SQS for the backoff) through `proxy`.
    async fn mailer(&self, proxy: &FaultProxy) -> Mailer {
        let t = template();
        let mut m = local::mailer(&self.endpoints, &t).await.unwrap();
        let from = local::parameter_value(&t, "MailFrom").unwrap();
        m.sender.ses = Ses::new(&quick_sdk(&proxy.endpoint()).await, from).with_backoff(BACKOFF);
        m.sender.max_receive_count = MAIL_MAX_RECEIVES;
        m
    }

    async fn entry(&self) -> portal::store::items::EmailItem {
        let key = EmailKey {
            tenant_id: portal::domain::TenantId::parse(&self.tenant).unwrap(),
            contact_id: portal::domain::ContactId::parse(&self.contact).unwrap(),
            document_id: portal::domain::DocumentId::parse(&self.document_id).unwrap(),
        };
        self.store.get_email(&key).await.unwrap().expect("the email log entry")
    }

    async fn log_len(&self) -> usize {
        let tenant = TenantId::parse(&self.tenant).unwrap();
        self.store.list_emails(&tenant, &ContactId::parse(&self.contact).unwrap()).await.unwrap().len()
    }

    /// Polls like the gateway until `done` says so (bounded), returning what was received.
    async fn poll_until<D, DFut>(&self, mailer: &Mailer, limit: Duration, mut done: D) -> Vec<Received>
    where
        D: FnMut() -> DFut,
        DFut: Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        let mut received = Vec::new();
        while !done().await {
            assert!(Instant::now() < deadline, "not settled within {limit:?}; received so far: {received:?}");
            received.extend(poll_once(&self.sqs, &self.queue, 10, |e| mailer.handle_batch(e)).await);
        }
        received
    }
}

/// SES answers `fault` to every SendEmail: the job backs off, returns, and
/// after maxReceiveCount is in the DLQ; the log says `failed` with the reason.
async fn ses_keeps_failing(fault: Fault, reason_has: &[&str]) {
    let w = MailWorld::new("sesdown", MAIL_VISIBILITY).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let hits = proxy.inject(Rule::ses_send_email().answer(fault));
    let mailer = w.mailer(&proxy).await;
    let received = w.poll_until(&mailer, Duration::from_secs(40), || async { messages_on(&w.sqs, &w.queue.dlq_url).await > 0 }).await;

    let counts: Vec<u32> = received.iter().map(|r| r.receive_count).collect();
    assert_eq!(counts, [1, 2, 3], "one try per receive up to maxReceiveCount: {received:?}");
    for pair in received.windows(2) {
        let (gap, n) = (pair[1].at - pair[0].at, pair[0].receive_count);
        assert!(gap >= BACKOFF.delay(n), "back after {gap:?}, before the backoff of {:?} after try {n}", BACKOFF.delay(n));
        assert!(gap < Duration::from_secs(u64::from(MAIL_VISIBILITY) - 5), "back after {gap:?}: the visibility was not changed");
    }
    assert_eq!(hits.get(), received.len() * SDK_ATTEMPTS, "every try reached SES (the SDK's own retries included)");
    // The mailer set each message's visibility: the backoff after tries 1 and 2, zero after the last.
    let visibility: Vec<i64> = proxy
        .seen()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some("AmazonSQS.ChangeMessageVisibility"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["VisibilityTimeout"].as_i64().unwrap())
        .collect();
    assert_eq!(visibility.len(), 3, "{visibility:?}");
    assert!((1..=2).contains(&visibility[0]) && (2..=3).contains(&visibility[1]) && visibility[2] == 0, "{visibility:?}");

    // Nothing dropped: the job is in the DLQ, intact; the log says why.
    let dead = drain_bodies(&w.sqs, &w.queue.dlq_url).await;
    assert_eq!(dead.len(), 1);
    let job: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!((job["document_id"].as_str(), job["contact_id"].as_str()), (Some(w.document_id.as_str()), Some(w.contact.as_str())));
    assert_eq!(messages_on(&w.sqs, &w.queue.url).await, 0);
    let entry = w.entry().await;
    assert_eq!(entry.status, EmailStatus::Failed);
    let reason = entry.failure_reason.clone().unwrap_or_default();
    for part in reason_has {
        assert!(reason.contains(part), "failure reason {reason:?} lacks {part:?}");
    }
    assert_eq!(entry.attempts, 3, "three leases, one per try");
    assert!(ses_messages_to(&w.email).await.is_empty(), "nothing was sent");
}

/// SES answers `fault` to the first `failed_tries` tries, then recovers: one email.
async fn ses_recovers(fault: Fault, failed_tries: usize) {
    let w = MailWorld::new("sesback", MAIL_VISIBILITY).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let hits = proxy.inject(Rule::ses_send_email().times(failed_tries * SDK_ATTEMPTS).answer(fault));
    let mailer = w.mailer(&proxy).await;
    let received = w.poll_until(&mailer, Duration::from_secs(40), || async { w.entry().await.status == EmailStatus::Sent }).await;
    let counts: Vec<u32> = received.iter().map(|r| r.receive_count).collect();
    assert_eq!(counts, (1..=failed_tries as u32 + 1).collect::<Vec<_>>(), "{received:?}");
    for pair in received.windows(2) {
        assert!(pair[1].at - pair[0].at >= BACKOFF.delay(pair[0].receive_count), "{received:?}");
    }
    assert_eq!(hits.get(), failed_tries * SDK_ATTEMPTS);
    let sent = ses_messages_to(&w.email).await;
    assert_eq!(sent.len(), 1, "exactly one email once SES is back");
    let entry = w.entry().await;
    assert!(entry.ses_message_id.is_some() && entry.failure_reason.is_none(), "{entry:?}");
    assert_eq!(entry.attempts as usize, failed_tries + 1);
    assert_eq!(messages_on(&w.sqs, &w.queue.url).await, 0, "the job was deleted once sent");
    assert_eq!(messages_on(&w.sqs, &w.queue.dlq_url).await, 0);
    assert_eq!(w.log_len().await, 1);
}

#[tokio::test]
async fn ses_throttling_backs_off_then_dead_letters_the_job_with_the_reason() {
    ses_keeps_failing(Fault::ses_throttled(), &["TooManyRequests", "HTTP 429"]).await;
}

#[tokio::test]
async fn ses_503_backs_off_then_dead_letters_the_job_with_the_reason() {
    ses_keeps_failing(Fault::ses_unavailable(503), &["HTTP 503"]).await;
}

#[tokio::test]
async fn ses_500_once_then_recovered_sends_exactly_one_email() {
    ses_recovers(Fault::ses_unavailable(500), 1).await;
}

#[tokio::test]
async fn ses_throttling_twice_then_recovered_on_the_last_receive_sends_exactly_one_email() {
    ses_recovers(Fault::ses_throttled(), 2).await;
}

/// The same job on the queue twice (a re-sent message), and one message
/// handed to two handlers at once (the same record twice in a batch, which
/// the mailer handles concurrently): one lease wins, one email.
#[tokio::test]
async fn the_same_mail_job_delivered_twice_and_handled_concurrently_sends_one_email() {
    let w = MailWorld::new("maildup", 2).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let mailer = w.mailer(&proxy).await;
    // The next message other than `skip` (a message not yet handled may come back meanwhile).
    let (sqs, url) = (&w.sqs, &w.queue.url);
    let receive = |skip: Option<String>| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "the job never arrived");
            let out = sqs
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            if let Some(m) = out.messages.unwrap_or_default().into_iter().find(|m| m.message_id != skip) {
                return m;
            }
        }
    };
    let first = receive(None).await;
    w.sqs.send_message().queue_url(&w.queue.url).message_body(first.body.clone().unwrap()).send().await.unwrap();
    let second = receive(first.message_id.clone()).await;
    assert_eq!(first.body, second.body);
    assert_ne!(first.message_id, second.message_id);
    let batch = [first.clone(), first, second];
    let response = mailer.handle_batch(sqs_event(&batch, &w.queue.arn)).await;
    delete_done(&w.sqs, &w.queue.url, &batch, &response).await;
    // Whatever was kept (another handler held the lease) comes back and is acknowledged as sent.
    w.poll_until(&mailer, Duration::from_secs(20), || async { messages_on(&w.sqs, &w.queue.url).await == 0 }).await;

    assert_eq!(ses_messages_to(&w.email).await.len(), 1, "one email for one job, however often delivered");
    let entry = w.entry().await;
    assert_eq!(entry.status, EmailStatus::Sent);
    assert_eq!(entry.attempts, 1, "exactly one handler leased and sent it");
    assert_eq!(w.log_len().await, 1);
    assert_eq!(messages_on(&w.sqs, &w.queue.dlq_url).await, 0);
}

// ---------------------------------------------------------------------------
// 3. Cancelled transactions on every transaction path.

/// A tenant whose handlers' DynamoDB goes through a fault proxy; email jobs
/// and activation batches go to queues of the test's own.
struct TxWorld {
    proxy: FaultProxy,
    tenant: String,
    table: String,
    direct: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    mail_url: String,
    activation_url: String,
    apps: HashMap<&'static str, App>,
}

impl TxWorld {
    async fn new() -> Self {
        let endpoints = Endpoints::from_env().await;
        let proxy = FaultProxy::start(&local::dynamodb_endpoint()).await;
        let proxied = Endpoints { dynamodb: quick_sdk(&proxy.endpoint()).await, moto: endpoints.moto.clone() };
        let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
        let mail_url = sqs.create_queue().queue_name(unique("txmail")).send().await.unwrap().queue_url.unwrap();
        let activation_url = sqs.create_queue().queue_name(unique("txact")).send().await.unwrap().queue_url.unwrap();
        let t = template();
        let mut apps = HashMap::new();
        for binary in ["admin", "generate", "lifecycle", "claim", "activations", "activator", "scheduler"] {
            let mut a = local::http_app(&proxied, &t, binary).await.unwrap();
            a.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
            a.activation_queue = ActivationQueue::new(&endpoints.moto, &activation_url);
            apps.insert(binary, a);
        }
        let table = local::table_name(&t).unwrap();
        let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
        Self { proxy, tenant: unique("tx"), table, direct, sqs, mail_url, activation_url, apps }
    }

    fn app(&self, binary: &str) -> &App {
        &self.apps[binary]
    }

    async fn call(&self, binary: &str, f: HttpFunction, e: Value) -> (u16, String, Value) {
        call_full(self.app(binary), f, &self.tenant, e).await
    }

    fn contact_pk(&self, contact: &str) -> String {
        format!("T#{}#C#{contact}", self.tenant)
    }

    /// Every item of these partitions, read straight from DynamoDB Local.
    async fn snapshot(&self, pks: &[String]) -> Vec<Item> {
        let mut all = Vec::new();
        for pk in pks {
            let mut start = None;
            loop {
                let out = self
                    .direct
                    .query()
                    .table_name(&self.table)
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

    /// Calls `e` while every TransactWriteItems is cancelled with `fault`:
    /// asserts a clean `want` problem+json, that the injection fired, and
    /// that nothing in `pks` changed and nothing was queued.
    async fn refused(&self, what: &str, binary: &str, f: HttpFunction, e: Value, fault: Fault, want: u16, pks: &[String]) -> Value {
        let before = self.snapshot(pks).await;
        let queued_before = (messages_on(&self.sqs, &self.mail_url).await, messages_on(&self.sqs, &self.activation_url).await);
        let hits = self.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(fault));
        let (status, content_type, body) = self.call(binary, f, e).await;
        self.proxy.clear();
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(body["status"], want, "{what}: {body}");
        for field in ["type", "title", "detail"] {
            assert!(body[field].is_string(), "{what}: problem lacks {field}: {body}");
        }
        assert!(hits.get() >= 1, "{what}: no transaction was attempted, so nothing was injected");
        assert_eq!(self.snapshot(pks).await, before, "{what}: a refused transaction left something behind");
        let queued_after = (messages_on(&self.sqs, &self.mail_url).await, messages_on(&self.sqs, &self.activation_url).await);
        assert_eq!(queued_after, queued_before, "{what}: something was queued");
        body
    }

    async fn job(&self, job: &str) -> portal::store::items::JobItem {
        let store = &self.app("admin").store;
        store.get_job(&TenantId::parse(&self.tenant).unwrap(), &JobId::parse(job).unwrap()).await.unwrap().expect("the job")
    }
}

/// Generate (with and without email), activate, resend, deactivate, claim,
/// template PUT and group PUT, each under a cancelled transaction.
#[tokio::test]
async fn a_cancelled_transaction_on_each_http_path_is_a_clean_4xx_and_writes_nothing() {
    let w = TxWorld::new().await;
    let ccf = Fault::conditional_check_failed(0);
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for id in &ids {
        ok("contact", &w.call("admin", HttpFunction::Admin, put_contact_event(id, Some(&format!("{id}-{}@example.com", w.tenant)))).await, 200);
    }
    let (fresh, pending_link, active, pending_code) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    // Set-up before any fault: a pending link, an active contact, a pending code.
    ok("activate", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "activate")).await, 202);
    let code = ok("generate", &w.call("generate", HttpFunction::Generate, generate_event(active, json!({}))).await, 201)["code"].clone();
    let ip = random_loopback();
    ok("claim", &w.call("claim", HttpFunction::Claim, claim_event(json!({"code": code, "email": format!("{active}@example.com")}), &ip)).await, 201);
    let pending = ok("generate", &w.call("generate", HttpFunction::Generate, generate_event(pending_code, json!({}))).await, 201);
    drain_bodies(&w.sqs, &w.mail_url).await;

    let pk = |c: &str| vec![w.contact_pk(c)];
    let gen = |c: &str, b: Value| generate_event(c, b);
    let body = w.refused("generate", "generate", HttpFunction::Generate, gen(fresh, json!({})), ccf.clone(), 409, &pk(fresh)).await;
    assert_eq!(body["type"], "/problems/conflict");
    w.refused("generate & email", "generate", HttpFunction::Generate, gen(fresh, json!({"send_email": true})), ccf.clone(), 409, &pk(fresh)).await;
    w.refused("generate for a pending contact", "generate", HttpFunction::Generate, gen(pending_code, json!({"send_email": true})), ccf.clone(), 409, &pk(pending_code)).await;
    w.refused("activate", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(fresh, "activate"), ccf.clone(), 409, &pk(fresh)).await;
    w.refused("resend", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "resend"), ccf.clone(), 409, &pk(pending_link)).await;
    w.refused("deactivate", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(active, "deactivate"), ccf.clone(), 409, &pk(active)).await;
    let claim_body = json!({"code": pending["code"], "email": format!("{pending_code}@example.com")});
    let ip = random_loopback();
    let body = w
        .refused("claim", "claim", HttpFunction::Claim, claim_event(claim_body.clone(), &ip), ccf.clone(), 400, &pk(pending_code))
        .await;
    assert_eq!(body["type"], "/problems/claim-rejected");

    let template_event = staff_event(
        "PUT",
        "/v1/portals/{portal_id}/templates/{kind}",
        "/v1/portals/main/templates/pickup_code",
        json!({"portal_id": "main", "kind": "pickup_code"}),
        Some(json!({"subject": "Your code", "text": "Code {{ code }}", "html": "<p>Code {{ code }}</p>"})),
        None,
    );
    let tenant_pk = vec![format!("T#{}", w.tenant)];
    // The audit record's put (item 1) is the template save's only real condition; a concurrent save conflicts.
    w.refused("template PUT", "admin", HttpFunction::Admin, template_event.clone(), Fault::conditional_check_failed(1), 409, &tenant_pk).await;
    w.refused("template PUT (conflict)", "admin", HttpFunction::Admin, template_event.clone(), Fault::transaction_conflict(0), 409, &tenant_pk).await;
    let group_event = staff_event(
        "PUT",
        "/v1/groups/{group_id}",
        "/v1/groups/vip",
        json!({"group_id": "vip"}),
        Some(json!({"name": "VIP", "contact_ids": [fresh, pending_link]})),
        None,
    );
    let group_pk = vec![format!("T#{}#G#vip", w.tenant)];
    w.refused("group PUT", "activations", HttpFunction::Activations, group_event.clone(), ccf.clone(), 409, &group_pk).await;
    w.refused("group PUT (conflict)", "activations", HttpFunction::Activations, group_event.clone(), Fault::transaction_conflict(0), 409, &group_pk).await;

    // Portal PUT, contact PUT, job submission (selection or group) issue no
    // transaction: under the same injection they answer as usual (their
    // transactions, the activator's, are tested below).
    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(ccf.clone()));
    ok("portal PUT", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    ok("contact PUT", &w.call("admin", HttpFunction::Admin, put_contact_event(fresh, Some("fresh@example.com"))).await, 200);
    let submit = staff_event("POST", "/v1/activations", "/v1/activations", json!({}), Some(json!({"contact_ids": [fresh], "method": "code"})), None);
    ok("activations submit", &w.call("activations", HttpFunction::Activations, submit).await, 202);
    assert_eq!(hits.get(), 0, "these paths issue no TransactWriteItems");
    w.proxy.clear();

    // Nothing was used up: once DynamoDB lets them through, the same requests work.
    ok("claim after", &w.call("claim", HttpFunction::Claim, claim_event(claim_body, &random_loopback())).await, 201);
    ok("template after", &w.call("admin", HttpFunction::Admin, template_event).await, 200);
    ok("group after", &w.call("activations", HttpFunction::Activations, group_event).await, 200);
    ok("resend after", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "resend")).await, 202);
    ok("deactivate after", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(active, "deactivate")).await, 200);
}

/// Marks of the transactions the activator writes: a contact's invitation
/// (it puts a code lookup, `CODE#…`) and a batch's counters (`B#…`).
const INVITATION_TX: &str = r#"{"S":"CODE#"#;
const COUNTING_TX: &str = r#"{"S":"B#"#;

/// The activator: every contact's transaction cancelled → the message is
/// retried and nothing is written; on its last receive the contacts count as
/// failed and the job is done. A cancellation that passes (a contact's first
/// try; the counter update meeting a concurrent batch) is retried inside.
#[tokio::test]
async fn the_activator_under_cancelled_transactions_writes_nothing_and_still_finishes() {
    let mut w = TxWorld::new().await;
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<String> = (0..3).map(|i| format!("b{i}")).collect();
    for id in &ids {
        ok("contact", &w.call("admin", HttpFunction::Admin, put_contact_event(id, Some(&format!("{id}@example.com")))).await, 200);
    }
    let pks: Vec<String> = ids.iter().map(|c| w.contact_pk(c)).collect();
    let activator = Activator { app: w.apps.remove("activator").unwrap(), max_receive_count: 3 };
    let arn = queue_arn(&w.sqs, &w.activation_url).await;
    let submit = |ids: &[String]| {
        let b = json!({"contact_ids": ids, "method": "code", "send_email": true});
        staff_event("POST", "/v1/activations", "/v1/activations", json!({}), Some(b), None)
    };
    let take_message = || async {
        let mut got = Vec::new();
        for _ in 0..10 {
            let out = w.sqs.receive_message().queue_url(&w.activation_url).wait_time_seconds(1).send().await.unwrap();
            got.extend(out.messages.unwrap_or_default());
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1, "one batch for three contacts");
        got.remove(0)
    };
    // The message as the n-th receive hands it over.
    let delivery = |m: &aws_sdk_sqs::types::Message, n: u32| {
        let mut m = m.clone();
        let mut attrs = m.attributes.clone().unwrap_or_default();
        attrs.insert(MessageSystemAttributeName::ApproximateReceiveCount, n.to_string());
        m.attributes = Some(attrs);
        sqs_event(&[m], &arn)
    };

    let job = ok("submit", &w.call("activations", HttpFunction::Activations, submit(&ids[..])).await, 202)["job_id"].as_str().unwrap().to_owned();
    let message = take_message().await;
    let before = w.snapshot(&pks).await;
    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(INVITATION_TX).answer(Fault::conditional_check_failed(0)));
    for n in 1..3 {
        let r = activator.handle_batch(delivery(&message, n)).await;
        assert_eq!(r.batch_item_failures.len(), 1, "receive {n}: the message is left for redelivery");
        assert_eq!(w.snapshot(&pks).await, before, "receive {n}: nothing written for any contact");
        assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0, "receive {n}: no email queued");
        let j = w.job(&job).await;
        assert_eq!((j.activated, j.failed, j.skipped_no_email, j.skipped_already_active), (0, 0, 0, 0), "receive {n}: counters unchanged");
        assert_eq!(j.state, portal::domain::job::JobState::Queued);
    }
    assert!(hits.get() >= 2 * ids.len(), "every contact's transaction was refused: {}", hits.get());
    let r = activator.handle_batch(delivery(&message, 3)).await;
    assert!(r.batch_item_failures.is_empty(), "the last receive finishes the batch: {r:?}");
    w.proxy.clear();
    assert_eq!(w.snapshot(&pks).await, before, "still nothing written for any contact");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0);
    let j = w.job(&job).await;
    assert_eq!((j.state, j.activated, j.failed, j.total), (portal::domain::job::JobState::Done, 0, 3, 3), "every contact accounted for, as failed");

    // Transient cancellations: a contact's first try, and the job counters
    // meeting another batch's update. Both are retried inside the batch.
    let job = ok("submit", &w.call("activations", HttpFunction::Activations, submit(&ids[..])).await, 202)["job_id"].as_str().unwrap().to_owned();
    let message = take_message().await;
    let first_try = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(INVITATION_TX).times(1).answer(Fault::conditional_check_failed(0)));
    let counting = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(COUNTING_TX).times(1).answer(Fault::transaction_conflict(1)));
    let r = activator.handle_batch(delivery(&message, 1)).await;
    w.proxy.clear();
    assert!(r.batch_item_failures.is_empty(), "retried inside the batch, not redelivered: {r:?}");
    assert_eq!((first_try.get(), counting.get()), (1, 1), "both injections fired");
    let j = w.job(&job).await;
    assert_eq!((j.state, j.activated, j.failed), (portal::domain::job::JobState::Done, 3, 0));
    for pk in &pks {
        let items = w.snapshot(std::slice::from_ref(pk)).await;
        let sks: Vec<&str> = items.iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str)).collect();
        assert_eq!(sks.iter().filter(|s| s.starts_with("CONTACT#CODE#")).count(), 1, "{pk}: one code");
        assert_eq!(sks.iter().filter(|s| s.starts_with("EMAIL#")).count(), 1, "{pk}: one email");
    }
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 3, "one email job per contact");
}

/// The scheduler's steps (expiry, auto-generation, auto-email) under
/// cancelled transactions: the run completes and changes nothing; the next
/// run does everything.
#[tokio::test]
async fn the_scheduler_under_cancelled_transactions_changes_nothing_and_the_next_run_does_it() {
    let mut w = TxWorld::new().await;
    let automated = json!({"auto_generate": true, "auto_email": true, "code_ttl_hours": 24});
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", automated)).await, 200);
    for id in ["s0", "s1"] {
        ok("contact", &w.call("admin", HttpFunction::Admin, put_contact_event(id, Some(&format!("{id}@example.com")))).await, 200);
    }
    ok("generate", &w.call("generate", HttpFunction::Generate, generate_event("s1", json!({}))).await, 201);
    let mut app = w.apps.remove("scheduler").unwrap();
    // A day and an hour on: s1's code has expired, s0 has never had one.
    let _clock = Clock::install(&mut app, Utc::now() + chrono::Duration::hours(25));
    let scheduler = Scheduler { app };
    let tenant = TenantId::parse(&w.tenant).unwrap();
    let run = || scheduler.run_for(std::slice::from_ref(&tenant), Instant::now() + Duration::from_secs(120));
    let pks = vec![w.contact_pk("s0"), w.contact_pk("s1")];
    let before = w.snapshot(&pks).await;

    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(Fault::conditional_check_failed(0)));
    let s = run().await.expect("a run under cancelled transactions still completes");
    w.proxy.clear();
    assert!(hits.get() >= 3, "expiry and generation were attempted: {}", hits.get());
    assert_eq!((s.expired, s.generated, s.emailed, s.reminded, s.complete), (0, 0, 0, 0, true), "{s:?}");
    assert_eq!(w.snapshot(&pks).await, before, "nothing changed");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0, "nothing queued");

    let s = run().await.unwrap();
    assert_eq!((s.expired, s.generated, s.emailed, s.complete), (1, 2, 2, true), "{s:?}");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 2);
}

// ---------------------------------------------------------------------------
// 4. DynamoDB Local restarted in the middle of a 1,000-contact bulk job.

const BULK_CONTACTS: usize = 1000;

/// A DynamoDB Local of the test's own (`infra/dynamodb-local.cjs`) with its
/// data on disk, on a port derived from PORTAL_DYNAMODB_PORT (+40), so CI and
/// a second stack never clash. Stopped (SIGTERM, by its pid) when dropped.
struct OwnDynamo {
    child: Option<tokio::process::Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnDynamo {
    fn port() -> u16 {
        let base: u16 = std::env::var("PORTAL_DYNAMODB_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
        base + 40
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(dir: std::path::PathBuf) -> Self {
        let port = Self::port();
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} (PORTAL_DYNAMODB_PORT + 40) is in use; the restart test needs it for its own DynamoDB Local"
        );
        let mut me = Self { child: None, port, dir };
        me.spawn().await;
        me
    }

    async fn spawn(&mut self) {
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

    /// SIGTERM to the node wrapper (it passes it on to Java), then waits for it to exit.
    async fn stop(&mut self) {
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
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every item of the table (the test's own DynamoDB Local holds only this test's data).
async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
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

fn attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_restarted_in_the_middle_of_a_bulk_job_still_finishes_it_exactly_once() {
    // On tmpfs where there is one: files that outlive the process, without
    // paying SQLite's fsyncs on a shared 2-core machine.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }.join(unique("portal-faults-ddb"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut ddb = OwnDynamo::start(dir).await;
    let t = template();
    let table = local::table_name(&t).unwrap();
    let endpoints = Endpoints { dynamodb: local::sdk_config(&ddb.endpoint()).await, moto: Endpoints::from_env().await.moto };
    let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
    // The table, as `portal-local setup` creates it.
    let spec = portal_local::setup::table_spec(t.tables.first().unwrap()).unwrap();
    direct
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(spec.attributes))
        .set_key_schema(Some(spec.keys))
        .set_global_secondary_indexes((!spec.indexes.is_empty()).then_some(spec.indexes))
        .send()
        .await
        .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    // A batch that fails while DynamoDB is away is back after 10 s.
    let activation = queue_with_dlq(&sqs, "restartact", 10, 50).await;
    let mail_url = sqs.create_queue().queue_name(unique("restartmail")).send().await.unwrap().queue_url.unwrap();
    let mut submit_app = local::http_app(&endpoints, &t, "activations").await.unwrap();
    submit_app.activation_queue = ActivationQueue::new(&endpoints.moto, &activation.url);
    let admin_app = local::http_app(&endpoints, &t, "admin").await.unwrap();
    let mut activator = local::activator(&endpoints, &t).await.unwrap();
    activator.app.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
    activator.max_receive_count = 50;
    let activator = std::sync::Arc::new(activator);

    // 1,000 contacts with email addresses.
    let tenant_s = unique("restart");
    let tenant = TenantId::parse(&tenant_s).unwrap();
    ok("portal", &call_full(&admin_app, HttpFunction::Admin, &tenant_s, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<ContactId> = (0..BULK_CONTACTS).map(|i| ContactId::parse(&format!("r{i:04}")).unwrap()).collect();
    let now = Utc::now();
    stream::iter(&ids)
        .map(|id| {
            let contact = Contact {
                contact_id: id.clone(),
                name: format!("Contact {id}"),
                email: Some(EmailAddress::parse(&format!("{id}@example.com")).unwrap()),
                kind: ContactKind::Individual,
                portal_ids: vec![],
            };
            let (store, tenant) = (&admin_app.store, &tenant);
            async move { store.put_contact(tenant, &contact, "faults", now).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    let mail = Drain::start(&sqs, &mail_url, 4);
    let b = json!({"contact_ids": ids, "method": "code", "send_email": true});
    let submit = staff_event("POST", "/v1/activations", "/v1/activations", json!({}), Some(b), None);
    let job_id = ok("submit", &call_full(&submit_app, HttpFunction::Activations, &tenant_s, submit).await, 202)["job_id"].as_str().unwrap().to_owned();
    let job = JobId::parse(&job_id).unwrap();

    // Four activators polling like the gateway, two messages per receive (the
    // job has ten); errors while DynamoDB is away are expected.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed_batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (activator, sqs, stop, failed) = (activator.clone(), sqs.clone(), stop.clone(), failed_batches.clone());
            let (url, arn) = (activation.url.clone(), activation.arn.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let out = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(2)
                        .wait_time_seconds(1)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .send()
                        .await;
                    let messages = match out {
                        Ok(o) => o.messages.unwrap_or_default(),
                        Err(_) => continue,
                    };
                    if messages.is_empty() {
                        continue;
                    }
                    let response = activator.handle_batch(sqs_event(&messages, &arn)).await;
                    failed.fetch_add(response.batch_item_failures.len(), std::sync::atomic::Ordering::SeqCst);
                    delete_done(&sqs, &url, &messages, &response).await;
                }
            })
        })
        .collect();

    let store = &admin_app.store;
    let progress = || async { store.get_job(&tenant, &job).await.ok().flatten() };
    // Part-way: some hundreds counted, more in flight.
    let started = Instant::now();
    let at_kill = eventually(Duration::from_secs(150), || async {
        let j = progress().await?;
        assert_ne!(j.state, portal::domain::job::JobState::Done, "the job finished before DynamoDB could be restarted");
        (j.activated >= 200).then_some(j.activated)
    })
    .await
    .expect("200 contacts activated within 150 s");
    eprintln!("restarting DynamoDB Local after {:.1} s with {at_kill} contacts counted", started.elapsed().as_secs_f64());
    ddb.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ddb.spawn().await;
    eprintln!("DynamoDB Local is back after {:.1} s", started.elapsed().as_secs_f64());
    let mut shown = Instant::now();
    let finished = eventually(Duration::from_secs(180), || {
        let show = shown.elapsed() > Duration::from_secs(15);
        if show {
            shown = Instant::now();
        }
        async move {
            let j = progress().await;
            if show {
                eprintln!("{:.1} s: {:?}", started.elapsed().as_secs_f64(), j.as_ref().map(|j| (j.activated, j.state)));
            }
            j.filter(|j| j.state == portal::domain::job::JobState::Done)
        }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    let j = finished.expect("the job reached `done` within 180 s of the restart");
    eprintln!("job done after {:.1} s; {} batch failures were redelivered", started.elapsed().as_secs_f64(), failed_batches.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        (j.total, j.activated, j.failed, j.skipped_no_email, j.skipped_already_active),
        (BULK_CONTACTS as u32, BULK_CONTACTS as u32, 0, 0, 0),
        "every contact accounted for, once"
    );
    assert!(failed_batches.load(std::sync::atomic::Ordering::SeqCst) > 0, "the restart hit batches in flight (else this tested nothing)");
    assert_eq!(messages_on(&sqs, &activation.dlq_url).await, 0, "no batch was dead-lettered");

    // The table: per contact exactly one pending code, one email entry, one audit record, one marker naming that email.
    let items = scan_all(&direct, &table).await;
    let contact_prefix = format!("T#{tenant}#C#");
    let mut codes: HashMap<String, Vec<&Item>> = HashMap::new();
    let mut emails: HashMap<String, Vec<String>> = HashMap::new();
    let mut audits: HashMap<String, usize> = HashMap::new();
    let mut markers: HashMap<String, (String, String)> = HashMap::new();
    let mut lookups = 0;
    for item in &items {
        let (pk, sk) = (attr(item, "pk"), attr(item, "sk"));
        if let Some(contact) = pk.strip_prefix(&contact_prefix) {
            if sk.starts_with("CONTACT#CODE#") {
                codes.entry(contact.to_owned()).or_default().push(item);
            } else if sk.starts_with("EMAIL#") {
                emails.entry(contact.to_owned()).or_default().push(attr(item, "document_id").to_owned());
            } else if sk.starts_with("AUDIT#") {
                *audits.entry(contact.to_owned()).or_default() += 1;
            }
        } else if pk.starts_with("CODE#") {
            lookups += 1;
            assert_eq!(attr(item, "state"), "pending");
        } else if pk == format!("T#{tenant}#J#{job}") && sk.starts_with("C#") {
            let previous = markers.insert(attr(item, "contact_id").to_owned(), (attr(item, "outcome").to_owned(), attr(item, "email_document_id").to_owned()));
            assert!(previous.is_none());
        }
    }
    assert_eq!(lookups, BULK_CONTACTS, "one code lookup per contact, no orphan");
    for id in &ids {
        let id = id.as_str();
        let c = codes.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(c.len(), 1, "{id}: exactly one code");
        assert_eq!(attr(c[0], "state"), "pending", "{id}");
        let e = emails.get(id).cloned().unwrap_or_default();
        assert_eq!(e.len(), 1, "{id}: exactly one email log entry");
        assert_eq!(audits.get(id), Some(&1), "{id}: one audit record");
        assert_eq!(markers.get(id), Some(&("activated".to_owned(), e[0].clone())), "{id}: the marker names the email");
    }

    // The listing shows all of them pending.
    let mut listed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut q = json!({"portal_status": "pending", "limit": "200"});
        if let Some(c) = &cursor {
            q["cursor"] = json!(c);
        }
        let mut e = staff_event("GET", "/v1/contacts", "/v1/contacts", json!({}), None, Some(q));
        e.as_object_mut().unwrap().remove("pathParameters");
        let page = ok("listing", &call_full(&admin_app, HttpFunction::Admin, &tenant_s, e).await, 200);
        listed.extend(page["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed.len(), BULK_CONTACTS, "the listing shows every contact pending");

    // The mail queue: a job for every contact, all naming its one email (a
    // redelivered batch queues its jobs again; the mailer sends each once).
    let bodies = mail.finish().await;
    let mut queued: HashMap<String, BTreeSet<String>> = HashMap::new();
    for b in &bodies {
        let job: Value = serde_json::from_str(b).unwrap();
        queued.entry(job["contact_id"].as_str().unwrap().to_owned()).or_default().insert(job["document_id"].as_str().unwrap().to_owned());
    }
    eprintln!("{} email jobs queued for {} contacts", bodies.len(), queued.len());
    for id in &ids {
        let want: BTreeSet<String> = emails[id.as_str()].iter().cloned().collect();
        assert_eq!(queued.get(id.as_str()), Some(&want), "{id}: email jobs name exactly its one email");
    }
    ddb.stop().await;
}
