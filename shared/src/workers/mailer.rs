//! The `mailer` function's worker: the SQS batch of email jobs around
//! [`crate::usecase::send_email`], and its composition at cold start.
//!
//! Each message is one job. A job SES could not take now is reported as a
//! batch item failure, so SQS brings it back, after an exponential backoff
//! set on its visibility by its receive count ([`crate::mail::retry`]). On
//! the last receive before the DLQ the message is made visible at once, so
//! SQS moves it to the DLQ: nothing is dropped silently. A job held back by
//! its tenant's sending quota is sent to the queue again with a delay (a new
//! message, whose receives start at one) before this one is let go.

use crate::app::{system_clock, Settings};
use crate::domain::MailJob;
use crate::mail::{ses::Ses, sns::Sms};
use crate::queue::MailQueue;
use crate::store::Store;
use crate::usecase::send_email::{EmailSender, Outcome};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// The mailer: sends what the mail queue brings.
pub struct Mailer {
    /// Holds the mail queue too: where a throttled job goes back, delayed.
    pub sender: EmailSender,
}

impl Mailer {
    pub fn new(sdk: &aws_config::SdkConfig, settings: &Settings) -> Self {
        Self::from_parts(
            Store::new(sdk, &settings.table_name),
            Ses::new(sdk, &settings.mail_from).with_configuration_set(settings.ses_configuration_set.clone()),
            Sms::new(sdk),
            MailQueue::new(sdk, &settings.mail_queue_url),
            crate::secrets::Secrets::new(sdk),
            settings,
        )
    }

    /// From adapters built elsewhere (the local stack points each at its own endpoint).
    pub fn from_parts(store: Store, ses: Ses, sms: Sms, queue: MailQueue, secrets: crate::secrets::Secrets, settings: &Settings) -> Self {
        Self {
            sender: EmailSender {
                store,
                ses,
                sms,
                queue,
                keys: crate::secrets::HashKeys::new(secrets, &settings.code_hash_key_secret),
                clock: system_clock(),
                max_receive_count: settings.mail_max_receive_count,
                lease_ms: 60_000,
                max_emails_per_hour: settings.max_emails_per_hour,
                max_sms_per_hour: settings.max_sms_per_hour,
            },
        }
    }

    /// Cold start: settings and AWS configuration from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        anyhow::ensure!(!settings.mail_from.is_empty(), "environment variable MAIL_FROM is not set");
        anyhow::ensure!(!settings.mail_queue_url.is_empty(), "environment variable MAIL_QUEUE_URL is not set");
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self::new(&sdk, &settings))
    }

    /// One message: `true` when SQS should keep it (redeliver, eventually dead-letter).
    async fn process_message(&self, message: &SqsMessage) -> bool {
        let receive_count = super::receive_count(message);
        let job: MailJob = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message_id = ?message.message_id, "unreadable mail job; leaving it for the DLQ");
                return true;
            }
        };
        let redelivery = self.sender.ses.redelivery();
        let outcome = self.sender.send(&job, receive_count).await;
        match &outcome {
            Ok(Outcome::Sent) => crate::metrics::emf::count("EmailsSent", &[]),
            Ok(Outcome::Failed { .. }) => crate::metrics::emf::count("EmailsFailed", &[]),
            Ok(Outcome::WillRetry(_)) | Err(_) => crate::metrics::emf::count("EmailsRetried", &[]),
            Ok(Outcome::Throttled { .. }) => crate::metrics::emf::count("EmailsThrottled", &[]),
            Ok(Outcome::AlreadySent | Outcome::Busy) => {}
        }
        match outcome {
            Ok(Outcome::Throttled { delay_seconds }) => match self.sender.queue.send_delayed(&job, delay_seconds).await {
                Ok(()) => false,
                Err(e) => {
                    // Not re-sent: keep this one, so it comes back (and is counted) rather than lost.
                    tracing::error!(error = ?e, "could not put a throttled job back on the queue");
                    redelivery.back_off(message, receive_count).await;
                    true
                }
            },
            Ok(Outcome::WillRetry(_)) => {
                redelivery.back_off(message, receive_count).await;
                true
            }
            Ok(outcome @ Outcome::Failed { to_dlq: true, .. }) => {
                // The last try: on to the DLQ now rather than after the visibility timeout.
                redelivery.release(message).await;
                outcome.keep_message()
            }
            Ok(outcome) => outcome.keep_message(),
            Err(e) => {
                // DynamoDB (or the log entry) failed: retrying at once rarely helps either.
                tracing::error!(error = ?e, "mail job failed");
                redelivery.back_off(message, receive_count).await;
                true
            }
        }
    }

    /// The SQS batch: every message handled, failures reported one per message id.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let results = futures::future::join_all(event.records.iter().map(|m| self.process_message(m))).await;
        super::batch_response(event.records.iter().zip(results).filter(|(_, keep)| *keep).map(|(m, _)| m))
    }
}

