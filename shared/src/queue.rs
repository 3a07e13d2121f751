//! The SQS adapter: JSON messages onto a queue, one at a time or in batches
//! of ten (SendMessageBatch). A queue is typed by its message: the mail queue
//! ([`MailQueue`]) takes only [`MailJob`]s and the activation queue
//! ([`ActivationQueue`]) only [`ActivationMessage`]s, so a mail job cannot be
//! sent to the activation queue. The activation queue signs what it sends
//! with the service's own key ([`crate::domain::queue_proof`]): the
//! activator believes no message for what it says about itself.

use crate::domain::queue_proof::{self, Signer};
use crate::domain::{email::MailJob, job::ActivationMessage, TenantId};
use crate::metrics::RequestCounter;
use crate::retry::{retry, Attempt, Policy};
use anyhow::Context as _;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::collections::HashMap;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;

/// A message type with a queue of its own. Sealed: only the service's two
/// messages have one.
pub trait QueueMessage: Serialize + sealed::Sealed {
    /// The tenant the message acts for.
    fn tenant(&self) -> &TenantId;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::MailJob {}
    impl Sealed for super::ActivationMessage {}
}

impl QueueMessage for MailJob {
    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
}
impl QueueMessage for ActivationMessage {
    fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// The mail queue: email jobs for the mailer.
pub type MailQueue = Queue<MailJob>;
/// The activation queue: bulk activation batches for the activator.
pub type ActivationQueue = Queue<ActivationMessage>;

/// SQS's limit of messages per SendMessageBatch.
pub const SQS_BATCH: usize = 10;

/// The SQS client is built on first use: most functions hold both queues and
/// send on neither (status, reports, access), and a client costs part of a
/// cold start to build.
#[derive(Debug)]
pub struct Queue<M> {
    client: crate::aws::Lazy<Client>,
    url: String,
    requests: RequestCounter,
    /// The service's key, when this queue's messages carry a proof (its current version signs).
    signer: Option<crate::secrets::HashKeys>,
    message: PhantomData<fn(&M)>,
}

impl<M> Clone for Queue<M> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            url: self.url.clone(),
            requests: self.requests.clone(),
            signer: self.signer.clone(),
            message: PhantomData,
        }
    }
}

impl<M: QueueMessage> Queue<M> {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self { client: crate::aws::Lazy::new(sdk), url: url.into(), requests: RequestCounter::default(), signer: None, message: PhantomData }
    }

    /// Every message sent is signed with the current version of the service's
    /// key as the service's own (`domain::queue_proof`).
    pub fn signed_with(mut self, keys: crate::secrets::HashKeys) -> Self {
        self.signer = Some(keys);
        self
    }

    /// The key to sign with, on a signed queue.
    async fn signing_keys(&self) -> anyhow::Result<Option<Arc<crate::domain::keyring::KeyRing>>> {
        match &self.signer {
            Some(keys) => Ok(Some(keys.get().await?)),
            None => Ok(None),
        }
    }

    /// The body and, with a key, the proof attributes of `message`.
    fn encode(message: &M, key: Option<&[u8]>) -> anyhow::Result<(String, Option<HashMap<String, MessageAttributeValue>>)> {
        let body = serde_json::to_string(message)?;
        let Some(key) = key else { return Ok((body, None)) };
        let now = chrono::Utc::now().timestamp();
        let attributes = queue_proof::attributes(key, now, message.tenant(), &Signer::Service, &body)
            .into_iter()
            .map(|(name, value)| Ok((name.to_owned(), MessageAttributeValue::builder().data_type("String").string_value(value).build()?)))
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        Ok((body, Some(attributes)))
    }

    fn client(&self) -> &Client {
        self.client.get_or(|sdk| Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).interceptor(self.requests.clone()).build()))
    }

    /// Whether the SQS client has been built (it is, at the first send).
    pub fn client_built(&self) -> bool {
        self.client.built()
    }

    /// SQS requests sent so far (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.get()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, message: &M) -> anyhow::Result<()> {
        self.send_after(message, 0).await
    }

    /// Sends `message` so that it becomes visible after `delay_seconds` (at most 900).
    async fn send_after(&self, message: &M, delay_seconds: u32) -> anyhow::Result<()> {
        let ring = self.signing_keys().await?;
        let (body, attributes) = Self::encode(message, ring.as_ref().map(|r| r.current.queue_key.as_slice()))?;
        self.client()
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_message_attributes(attributes)
            .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds.min(900) as i32))
            .send()
            .await
            .context("Failed to send a message")?;
        Ok(())
    }

    /// Sends every message, ten per request; entries SQS refuses are retried
    /// once, then reported as an error (sending again is always safe).
    pub async fn send_all(&self, messages: &[M]) -> anyhow::Result<()> {
        let ring = self.signing_keys().await?;
        let key = ring.as_ref().map(|r| r.current.queue_key.as_slice());
        for chunk in messages.chunks(SQS_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let (body, attributes) = Self::encode(m, key)?;
                    Ok(SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body(body).set_message_attributes(attributes).build()?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            // Entries SQS refused are sent once more; the rest are done.
            let entries = std::sync::Mutex::new(entries);
            let entries = &entries;
            retry(
                Policy::immediate(2),
                |refused: usize| anyhow::anyhow!("SQS refused {refused} messages of a batch"),
                |_| async move {
                    let sending = entries.lock().expect("entries lock").clone();
                    let out = match self.client().send_message_batch().queue_url(&self.url).set_entries(Some(sending)).send().await {
                        Ok(out) => out,
                        Err(e) => return Attempt::Stop(anyhow::Error::new(e).context("Failed to send a message batch")),
                    };
                    let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                    if failed.is_empty() {
                        return Attempt::Done(());
                    }
                    entries.lock().expect("entries lock").retain(|e| failed.contains(&e.id()));
                    Attempt::Again(failed.len())
                },
            )
            .await?;
        }
        Ok(())
    }

}

impl Queue<MailJob> {
    #[tracing::instrument(skip_all, fields(document_id = %job.document_id))]
    pub async fn enqueue(&self, job: &MailJob) -> anyhow::Result<()> {
        self.send(job).await.context("Failed to put an email job on the mail queue")
    }

    /// A job held back by its tenant's sending quota, back on the queue after `delay_seconds`.
    #[tracing::instrument(skip_all, fields(document_id = %job.document_id, delay_seconds))]
    pub async fn send_delayed(&self, job: &MailJob, delay_seconds: u32) -> anyhow::Result<()> {
        self.send_after(job, delay_seconds).await.context("Failed to put a throttled email job back on the mail queue")
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
        let queue = MailQueue::new(&sdk, "http://127.0.0.1:1/123456789012/q");
        let twin = queue.clone();
        assert!(!queue.client_built() && !twin.client_built());
        let _ = queue.client();
        assert!(queue.client_built() && twin.client_built(), "a clone shares the client");
    }
}
