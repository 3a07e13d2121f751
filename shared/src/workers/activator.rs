//! The `activator` function's worker: the SQS batch of activation messages
//! around [`crate::usecase::apply_batch`], and its composition at cold start.
//! A message that fails is reported as a batch item failure, so SQS brings
//! it back; on its last receive (the queue's maxReceiveCount) its contacts
//! that still fail are counted as failed so the job can finish, and an
//! unreadable message goes on to the DLQ.
//!
//! Nothing is believed for what a message says about itself: its proof
//! (`domain::queue_proof`) must verify under the key of the service or of an
//! integration registered for the tenant it names, and it then acts for that
//! tenant only, with the integration's registered name as actor. A message
//! whose proof fails changes nothing: it is counted
//! (`ActivationMessagesRefused`, alarmed in template.yaml) and goes to the DLQ
//! after its receives.

use crate::app::{App, Settings};
use crate::domain::job::{ActivationBatch, ActivationMessage, MessageError, Sender};
use crate::domain::queue_proof::{Proof, ProofError, Signer};
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

    /// The batch a message proves it may apply.
    async fn verified(&self, message: &SqsMessage) -> Result<ActivationBatch, MessageError> {
        let attributes = message.message_attributes.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value.clone()?))).collect();
        let proof = Proof::read(&attributes)?;
        let body = message.body.as_deref().unwrap_or_default();
        let sent_at_ms = message.attributes.get("SentTimestamp").and_then(|t| t.parse().ok()).ok_or(ProofError::Missing("SentTimestamp"))?;
        match &proof.signer {
            Signer::Service => {
                // The service's key, current or previous: a rotation voids no message in flight.
                let ring = self.app.keys.get().await.map_err(|e| MessageError::Invalid(format!("the service's key could not be read: {e:#}")))?;
                let keys: Vec<&[u8]> = ring.all().map(|k| k.queue_key.as_slice()).collect();
                proof.verify(&keys, body, sent_at_ms)?;
                ActivationMessage::parse(body, &proof.tenant, Sender::Service)
            }
            Signer::Integration(id) => {
                let lookup = async {
                    let Some(item) = self.app.store.get_integration(&proof.tenant, id).await? else { return Ok(None) };
                    // Values cached from before the registration's last rotation are read again.
                    let secret = self.app.secrets.get_at_least(&item.secret_name, item.secret_version.as_deref()).await?;
                    Ok::<_, anyhow::Error>(secret.map(|v| (item, v)))
                };
                let (item, secret) = lookup.await.map_err(|e| MessageError::Invalid(format!("the integration could not be read: {e:#}")))?.ok_or(ProofError::UnknownSigner)?;
                let keys = secret.keys();
                // A revoked previous secret verifies nothing, even where it is still cached.
                let keys = if item.previous_revoked { &keys[..1] } else { &keys[..] };
                proof.verify(keys, body, sent_at_ms)?;
                ActivationMessage::parse(body, &proof.tenant, Sender::Integration { name: &item.name })
            }
        }
    }

    /// One message: `true` when it is done (SQS may delete it).
    async fn process_message(&self, message: &SqsMessage) -> bool {
        let receive_count = super::receive_count(message);
        let batch = match self.verified(message).await {
            Ok(batch) => batch,
            Err(MessageError::Refused(e)) => {
                tracing::warn!(error = %e, reason = e.reason(), message_id = ?message.message_id, receive_count, "activation message refused: its proof fails; it changes nothing and goes to the DLQ");
                crate::metrics::emf::count("ActivationMessagesRefused", &[]);
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, message_id = ?message.message_id, "unreadable activation message; leaving it for the DLQ");
                return false;
            }
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
