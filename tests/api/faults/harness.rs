//! The fault tests' harness: queues of a test's own with DLQs, a poller
//! like the local gateway's, in-process handler calls and their events, the
//! mail world the SES and duplicate-delivery tests share, and table scans.

use super::fault_proxy::FaultProxy;
use crate::helpers::*;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use portal::app::App;
use portal::domain::{ContactId, TenantId};
use portal::http::HttpFunction;
use portal::mail::{queue::JsonQueue, retry::Backoff, ses::Ses, worker::Mailer};
use portal::store::{EmailKey, Store};
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
// Queues and a poller like the local gateway's (receive → handler → delete the rest).

pub struct TestQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
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
pub async fn queue_with_dlq(sqs: &aws_sdk_sqs::Client, prefix: &str, visibility: u32, max_receives: u32) -> TestQueue {
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
pub async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
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
pub struct Drain {
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub consumers: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Drain {
    pub fn start(sqs: &aws_sdk_sqs::Client, url: &str, consumers: usize) -> Self {
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
    pub async fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let all = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(self.consumers))
            .await
            .expect("the queue was drained within 120 s");
        all.into_iter().flat_map(|r| r.unwrap()).collect()
    }
}

/// Every body on a queue, received (and deleted) until it is empty.
pub async fn drain_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    Drain::start(sqs, url, 2).finish().await
}

/// One message as the poller handed it over.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub receive_count: u32,
}

/// The Lambda event for these messages, as the gateway's poller builds it.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], arn: &str) -> SqsEvent {
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
pub async fn delete_done(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[aws_sdk_sqs::types::Message], response: &SqsBatchResponse) {
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
pub async fn poll_once<F, Fut>(sqs: &aws_sdk_sqs::Client, q: &TestQueue, max: i32, handler: F) -> Vec<Received>
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
pub async fn call_full(app: &App, f: HttpFunction, tenant: &str, e: Value) -> (u16, String, Value) {
    let resp = f.handle(app, request(e, tenant, None)).await;
    let content_type = resp.headers().get("content-type").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    (resp.status().as_u16(), content_type, body(&resp))
}

pub fn put_portal_event(id: &str, extra: Value) -> Value {
    let mut b = json!({"name": format!("Portal {id}"), "default": true, "claim_url": "https://portal.example.com/claim"});
    b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    staff_event("PUT", "/v1/portals/{portal_id}", &format!("/v1/portals/{id}"), json!({"portal_id": id}), Some(b), None)
}

pub fn put_contact_event(id: &str, email: Option<&str>) -> Value {
    let b = json!({"name": format!("Contact {id}"), "email": email, "kind": "individual"});
    staff_event("PUT", "/v1/contacts/{contact_id}", &format!("/v1/contacts/{id}"), json!({"contact_id": id}), Some(b), None)
}

pub fn generate_event(id: &str, body: Value) -> Value {
    staff_event("POST", "/v1/contacts/{contact_id}/codes", &format!("/v1/contacts/{id}/codes"), json!({"contact_id": id}), Some(body), None)
}

pub fn lifecycle_event(id: &str, action: &str) -> Value {
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
pub fn claim_event(body: Value, source_ip: &str) -> Value {
    let mut e = event("claim.json");
    e["body"] = json!(body.to_string());
    e["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    e["headers"]["x-forwarded-for"] = json!(source_ip);
    e
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
        generate.mail_queue = JsonQueue::new(&endpoints.moto, &queue.url);
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
    pub async fn mailer(&self, proxy: &FaultProxy) -> Mailer {
        let t = template();
        let mut m = local::mailer(&self.endpoints, &t).await.unwrap();
        let from = local::parameter_value(&t, "MailFrom").unwrap();
        m.ses = Ses::new(&quick_sdk(&proxy.endpoint()).await, from).with_backoff(BACKOFF);
        m.max_receive_count = MAIL_MAX_RECEIVES;
        m
    }

    pub async fn entry(&self) -> portal::store::items::EmailItem {
        let key = EmailKey { tenant_id: self.tenant.clone(), contact_id: self.contact.clone(), document_id: self.document_id.clone() };
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
            received.extend(poll_once(&self.sqs, &self.queue, 10, |e| mailer.handle_batch(e)).await);
        }
        received
    }
}

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

