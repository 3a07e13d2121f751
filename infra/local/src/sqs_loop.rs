//! The SQS polling loop of an event source mapping, in one place.
//!
//! On AWS, Lambda's event source mapping receives a batch from the queue,
//! hands it to the function as an `SqsEvent`, and deletes the messages the
//! function did not report as failed (ReportBatchItemFailures; without it, a
//! batch with any failure is left whole). Failed messages reappear after the
//! visibility timeout and move to the DLQ after maxReceiveCount. The local
//! gateway drives the mailer and the activator with this loop, and the tests
//! and benchmarks drive their own handlers with it, so all of them see the
//! batches Lambda would hand over.
//!
//! Also here: counting a queue's messages and draining one (moto's SQS slows
//! down with every message a queue holds, so queues that grow unconsumed are
//! drained as the mailer would drain them).

use anyhow::Context as _;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long one receive waits for messages (long polling).
const WAIT_SECONDS: i32 = 1;

/// One queue as an event source mapping reads it.
#[derive(Debug, Clone)]
pub struct EventSource {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    batch_size: i32,
    report_batch_item_failures: bool,
}

/// A batch handed to the handler: the messages as received, when, and what the handler answered.
#[derive(Debug, Clone)]
pub struct Batch {
    pub messages: Vec<Message>,
    pub received_at: Instant,
    pub response: SqsBatchResponse,
}

impl EventSource {
    /// The queue at `url`, read through `sqs` (any client: a benchmark counts
    /// its requests), ten messages a batch, with ReportBatchItemFailures.
    pub async fn new(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            arn: queue_arn(sqs, url).await?,
            sqs: sqs.clone(),
            url: url.to_owned(),
            batch_size: 10,
            report_batch_item_failures: true,
        })
    }

    /// The template's event source of a function: its BatchSize and ReportBatchItemFailures.
    pub async fn from_template(endpoints: &crate::local::Endpoints, source: &crate::template::SqsSource) -> anyhow::Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
        let url = crate::local::queue_url(endpoints, &source.queue_logical_id).await?;
        Ok(Self::new(&sqs, &url)
            .await?
            .batch_size(source.batch_size.clamp(1, 10) as i32)
            .report_batch_item_failures(source.report_batch_item_failures))
    }

    /// Messages per batch, 1 to 10.
    pub fn batch_size(mut self, n: i32) -> Self {
        self.batch_size = n.clamp(1, 10);
        self
    }

    /// Whether the handler's `batch_item_failures` are honoured (else any failure keeps the whole batch).
    pub fn report_batch_item_failures(mut self, on: bool) -> Self {
        self.report_batch_item_failures = on;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// One receive of up to a batch, with every system attribute (receive count, sent timestamp…).
    pub async fn receive(&self) -> anyhow::Result<Vec<Message>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .with_context(|| format!("receiving from {}", self.url))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// The Lambda event for `messages`, as the event source mapping builds it.
    pub fn event(&self, messages: &[Message]) -> SqsEvent {
        sqs_event(messages, &self.arn)
    }

    /// Deletes what the handler finished: every message not reported failed
    /// (each receipt handle once), or, without ReportBatchItemFailures, the
    /// whole batch only when nothing failed.
    pub async fn settle(&self, messages: &[Message], response: &SqsBatchResponse) -> anyhow::Result<()> {
        let failed: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        if !failed.is_empty() && !self.report_batch_item_failures {
            return Ok(()); // the whole batch returns to the queue
        }
        let mut handles = HashSet::new();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
            .filter_map(|m| m.receipt_handle.as_deref())
            .filter(|h| handles.insert(*h))
            .enumerate()
            .filter_map(|(i, h)| DeleteMessageBatchRequestEntry::builder().id(format!("m{i}")).receipt_handle(h).build().ok())
            .collect();
        if !done.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(done))
                .send()
                .await
                .with_context(|| format!("deleting from {}", self.url))?;
        }
        Ok(())
    }

    /// One round: receive → `handler` → delete what succeeded. `None` when the queue had nothing.
    pub async fn poll_once<F, Fut>(&self, handler: F) -> anyhow::Result<Option<Batch>>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let messages = self.receive().await?;
        let received_at = Instant::now();
        if messages.is_empty() {
            return Ok(None);
        }
        let response = handler(self.event(&messages)).await;
        self.settle(&messages, &response).await?;
        Ok(Some(Batch { messages, received_at, response }))
    }

    /// Polls until `shutdown` turns true; a failed round is logged and retried after a second.
    pub async fn run<F, Fut>(&self, handler: F, mut shutdown: watch::Receiver<bool>)
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                result = self.poll_once(&handler) => {
                    if let Err(e) = result {
                        tracing::warn!(error = ?e, queue = %self.url, "poll failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The Lambda event for `messages` of the queue `arn`, record by record as
/// Lambda writes it (system attributes by name, the region, the source ARN).
pub fn sqs_event(messages: &[Message], arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: BTreeMap<&str, &str> = m.attributes.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            // Message attributes as Lambda writes them (string values; binary ones are not used here).
            let message_attributes: BTreeMap<&str, Value> = m
                .message_attributes
                .iter()
                .flatten()
                .map(|(k, v)| {
                    (k.as_str(), json!({"stringValue": v.string_value, "stringListValues": [], "binaryListValues": [], "dataType": v.data_type}))
                })
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "md5OfBody": m.md5_of_body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": crate::local::REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("SQS records deserialise")
}

/// A message's ApproximateReceiveCount (0 when the receive did not ask for it).
pub fn receive_count(m: &Message) -> u32 {
    m.attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("the ARN of {url}"))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("{url} has no ARN"))
}

/// Messages on a queue, visible, in flight or delayed.
pub async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<u64> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .with_context(|| format!("counting the messages on {url}"))?
        .attributes
        .unwrap_or_default();
    Ok(attrs.values().map(|v| v.parse::<u64>().unwrap_or(0)).sum())
}

/// Consumers that take a queue's messages and keep their bodies: each
/// receives from an [`EventSource`] and deletes what it received. Consuming keeps a
/// queue short, which moto's SQS needs (it costs O(n) per send and O(n²) per
/// receive in the queue's length).
pub struct Drain {
    stop: Arc<AtomicBool>,
    consumers: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>>,
}

impl Drain {
    /// Starts `consumers` of the queue at `url`.
    pub async fn start(sqs: &aws_sdk_sqs::Client, url: &str, consumers: usize) -> anyhow::Result<Self> {
        let source = EventSource::new(sqs, url).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let consumers = (0..consumers)
            .map(|_| {
                let (source, stop) = (source.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut bodies = Vec::new();
                    loop {
                        // A failed receive is a round with nothing (the next one tries again).
                        let messages = source.receive().await.unwrap_or_default();
                        if messages.is_empty() {
                            if stop.load(Ordering::SeqCst) && messages_on(&source.sqs, &source.url).await? == 0 {
                                return Ok(bodies);
                            }
                            continue;
                        }
                        source.settle(&messages, &SqsBatchResponse::default()).await?;
                        bodies.extend(messages.into_iter().filter_map(|m| m.body));
                    }
                })
            })
            .collect();
        Ok(Self { stop, consumers })
    }

    /// Every body taken, once the queue is empty (within `limit`).
    pub async fn finish(self, limit: Duration) -> anyhow::Result<Vec<String>> {
        self.stop.store(true, Ordering::SeqCst);
        let all = tokio::time::timeout(limit, futures::future::join_all(self.consumers))
            .await
            .with_context(|| format!("the queue was not drained within {limit:?}"))?;
        let mut bodies = Vec::new();
        for consumer in all {
            bodies.extend(consumer.context("a drain consumer panicked")??);
        }
        Ok(bodies)
    }
}

/// Every body on a queue, taken (and deleted) until it is empty (within two minutes).
pub async fn drain_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Vec<String>> {
    Drain::start(sqs, url, 2).await?.finish(Duration::from_secs(120)).await
}
