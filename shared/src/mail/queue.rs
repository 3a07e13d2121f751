//! The SQS adapter for the mail queue.

use super::MailJob;
use anyhow::Context as _;
use aws_sdk_sqs::Client;

#[derive(Clone, Debug)]
pub struct MailQueue {
    client: Client,
    url: String,
}

impl MailQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), url: url.into() }
    }

    #[tracing::instrument(skip_all, fields(document_id = %job.document_id))]
    pub async fn enqueue(&self, job: &MailJob) -> anyhow::Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(serde_json::to_string(job)?)
            .send()
            .await
            .context("Failed to put an email job on the mail queue")?;
        Ok(())
    }
}
