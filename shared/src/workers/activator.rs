//! The `activator` function's worker: the SQS batch of activation messages
//! around [`crate::usecase::apply_batch`], and its composition at cold start.
//! A message that fails is reported as a batch item failure, so SQS brings
//! it back; on its last receive (the queue's maxReceiveCount) its contacts
//! that still fail are counted as failed so the job can finish, and an
//! unreadable message goes on to the DLQ.

use crate::app::{App, Settings};
use crate::domain::job::ActivationMessage;
use crate::usecase::apply_batch::{apply_batch, ApplyError};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// The activator's dependencies.
pub struct Activator {
    pub app: App,
    /// The activation queue's maxReceiveCount: the last receive before the DLQ.
    pub max_receive_count: u32,
}

impl Activator {
    /// Cold start: settings and AWS configuration from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self { app: App::new(&sdk, &settings), max_receive_count: settings.activation_max_receive_count })
    }

    /// One message: `true` when it is done (SQS may delete it).
    async fn process_message(&self, message: &SqsMessage) -> bool {
        let receive_count = super::receive_count(message);
        let batch = match message.body.as_deref().map(ActivationMessage::parse) {
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                tracing::error!(error = %e, message_id = ?message.message_id, "unreadable activation message; leaving it for the DLQ");
                return false;
            }
            None => return false,
        };
        match apply_batch(&self.app, &batch, receive_count >= self.max_receive_count).await {
            Ok(counts) => {
                tracing::info!(job = %batch.job_id, activated = counts.activated, accounted = counts.accounted(), "activation batch done");
                crate::metrics::emf::put("BulkContactsProcessed", counts.accounted() as f64, &[]);
                true
            }
            Err(e @ ApplyError::ContactsFailed { .. }) => {
                tracing::warn!(error = %e, job = %batch.job_id, "activation batch will be retried");
                false
            }
            Err(ApplyError::Unexpected(e)) => {
                tracing::error!(error = ?e, job = %batch.job_id, "activation batch failed");
                false
            }
        }
    }

    /// The SQS batch: messages one after another, failures reported per message id.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed = Vec::new();
        for message in &event.records {
            if !self.process_message(message).await {
                failed.push(message);
            }
        }
        super::batch_response(failed.into_iter())
    }
}
