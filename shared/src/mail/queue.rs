//! The SQS adapter: JSON messages onto a queue, one at a time or in batches
//! of ten (SendMessageBatch). Used for the mail queue and the activation queue.

use super::MailJob;
use crate::metrics::RequestCounter;
use anyhow::Context as _;
use aws_sdk_sqs::{types::SendMessageBatchRequestEntry, Client};
use serde::Serialize;

/// SQS's limit of messages per SendMessageBatch.
pub const SQS_BATCH: usize = 10;

#[derive(Clone, Debug)]
pub struct JsonQueue {
    client: Client,
    url: String,
    requests: RequestCounter,
}

/// The mail queue: email jobs for the mailer.
pub type MailQueue = JsonQueue;

impl JsonQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        let requests = RequestCounter::default();
        let config = aws_sdk_sqs::config::Builder::from(sdk).interceptor(requests.clone()).build();
        Self { client: Client::from_conf(config), url: url.into(), requests }
    }

    /// SQS requests sent so far (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.get()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send<T: Serialize>(&self, message: &T) -> anyhow::Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(serde_json::to_string(message)?)
            .send()
            .await
            .context("Failed to send a message")?;
        Ok(())
    }

    /// Sends every message, ten per request; entries SQS refuses are retried
    /// once, then reported as an error (sending again is always safe).
    pub async fn send_all<T: Serialize>(&self, messages: &[T]) -> anyhow::Result<()> {
        for chunk in messages.chunks(SQS_BATCH) {
            let mut entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    Ok(SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(serde_json::to_string(m)?)
                        .build()?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            for attempt in 0..2 {
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await
                    .context("Failed to send a message batch")?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                if failed.is_empty() {
                    break;
                }
                anyhow::ensure!(attempt == 0, "SQS refused {} messages of a batch", failed.len());
                entries.retain(|e| failed.contains(&e.id()));
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(document_id = %job.document_id))]
    pub async fn enqueue(&self, job: &MailJob) -> anyhow::Result<()> {
        self.send(job).await.context("Failed to put an email job on the mail queue")
    }
}
