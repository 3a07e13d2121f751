//! The SQS adapter: JSON messages onto a queue, one at a time or in batches
//! of ten (SendMessageBatch). Used for the mail queue and the activation queue.

use super::MailJob;
use crate::metrics::RequestCounter;
use anyhow::Context as _;
use aws_sdk_sqs::{types::SendMessageBatchRequestEntry, Client};
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// SQS's limit of messages per SendMessageBatch.
pub const SQS_BATCH: usize = 10;

/// The SQS client is built on first use: most functions hold both queues and
/// send on neither (status, reports, access), and a client costs part of a
/// cold start to build.
#[derive(Clone, Debug)]
pub struct JsonQueue {
    sdk: aws_config::SdkConfig,
    client: Arc<OnceLock<Client>>,
    url: String,
    requests: RequestCounter,
}

/// The mail queue: email jobs for the mailer.
pub type MailQueue = JsonQueue;

impl JsonQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self { sdk: sdk.clone(), client: Arc::default(), url: url.into(), requests: RequestCounter::default() }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let config = aws_sdk_sqs::config::Builder::from(&self.sdk).interceptor(self.requests.clone()).build();
            Client::from_conf(config)
        })
    }

    /// Whether the SQS client has been built (it is, at the first send).
    pub fn client_built(&self) -> bool {
        self.client.get().is_some()
    }

    /// SQS requests sent so far (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.get()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send<T: Serialize>(&self, message: &T) -> anyhow::Result<()> {
        self.client()
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
                    .client()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqs_client_is_built_at_first_use_and_shared_by_clones() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let queue = JsonQueue::new(&sdk, "http://127.0.0.1:1/123456789012/q");
        let twin = queue.clone();
        assert!(!queue.client_built() && !twin.client_built());
        let _ = queue.client();
        assert!(queue.client_built() && twin.client_built(), "a clone shares the client");
    }
}
