//! The mailer: one email job at a time, and the SQS batch around it.
//!
//! A job is a reference to an email log entry. Sending is guarded so that a
//! redelivered or duplicated message never sends a second email:
//! 1. the entry is leased (`queued`/`failed` → `sending`, conditional);
//! 2. it is rendered and sent through SES;
//! 3. it is marked `sent` with SES's message id and the rendered document.
//!
//! If SES fails in a retryable way the entry goes back to `queued` and the
//! message is reported as a batch item failure, so SQS brings it back; it
//! backs off first: its visibility is set to an exponential backoff by its
//! receive count ([`super::retry`]). On the last receive before the DLQ the
//! entry is marked `failed` with the reason and the message is made visible
//! at once, so SQS moves it to the DLQ: nothing is dropped silently. A refused
//! address fails at once: retrying cannot help.

use super::{
    ses::{SendError, Ses},
    templates::{default_template, render, EmailTemplate, TemplateVars},
    EmailStatus, MailJob,
};
use crate::app::Clock;
use crate::domain::{PortalId, TenantId};
use crate::store::{EmailKey, Store};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// What a mailer instance needs, built once at cold start.
pub struct Mailer {
    pub store: Store,
    pub ses: Ses,
    pub clock: Clock,
    /// The mail queue's maxReceiveCount: the receive after which SQS gives up.
    pub max_receive_count: u32,
    /// How long a lease keeps other mailers off an entry (ms); above SES's worst latency.
    pub lease_ms: i64,
}

/// What happened to one job.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Sent before (a redelivery): nothing done.
    AlreadySent,
    /// Another mailer holds the lease right now: try again later.
    Busy,
    /// SES failed in a way worth retrying.
    WillRetry(String),
    /// Recorded as `failed`; `to_dlq` when the message should go on to the DLQ.
    Failed { reason: String, to_dlq: bool },
}

impl Outcome {
    /// Whether SQS should keep (redeliver, and eventually dead-letter) the message.
    pub fn keep_message(&self) -> bool {
        match self {
            Self::Sent | Self::AlreadySent => false,
            Self::Busy | Self::WillRetry(_) => true,
            Self::Failed { to_dlq, .. } => *to_dlq,
        }
    }
}

impl Mailer {
    /// Handles one job; `receive_count` is SQS's ApproximateReceiveCount.
    #[tracing::instrument(skip_all, fields(document_id = %job.document_id, receive_count))]
    pub async fn process(&self, job: &MailJob, receive_count: u32) -> anyhow::Result<Outcome> {
        let key = EmailKey {
            tenant_id: job.tenant_id.clone(),
            contact_id: job.contact_id.clone(),
            document_id: job.document_id.clone(),
        };
        let entry = self
            .store
            .get_email(&key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no email log entry for this job"))?;
        if entry.status == EmailStatus::Sent {
            return Ok(Outcome::AlreadySent);
        }
        let now = (self.clock)();
        if !self.store.lease_email(&key, now, self.lease_ms).await? {
            let again = self.store.get_email(&key).await?;
            return Ok(match again.map(|e| e.status) {
                Some(EmailStatus::Sent) => Outcome::AlreadySent,
                _ => Outcome::Busy,
            });
        }
        let vars = TemplateVars::from_map(&entry.vars);
        let template = self.template_for(&job.tenant_id, &entry.portal_id, entry.kind).await?;
        let rendered = match render(&template, &vars) {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                self.store.mark_email_unsent(&key, &reason, true).await?;
                return Ok(Outcome::Failed { reason, to_dlq: false });
            }
        };
        match self.ses.send(&entry.to, &rendered).await {
            Ok(message_id) => {
                self.store.mark_email_sent(&key, &message_id, &rendered, (self.clock)()).await?;
                tracing::info!("email sent");
                Ok(Outcome::Sent)
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(%reason, "email refused");
                self.store.mark_email_unsent(&key, &reason, true).await?;
                Ok(Outcome::Failed { reason, to_dlq: false })
            }
            Err(SendError::Retryable(reason)) => {
                let last_try = receive_count >= self.max_receive_count;
                tracing::warn!(%reason, last_try, "email not sent");
                self.store.mark_email_unsent(&key, &reason, last_try).await?;
                Ok(if last_try { Outcome::Failed { reason, to_dlq: true } } else { Outcome::WillRetry(reason) })
            }
        }
    }

    /// The portal's own template for the kind, or the built-in default.
    async fn template_for(&self, tenant: &str, portal: &str, kind: super::EmailKind) -> anyhow::Result<EmailTemplate> {
        let (Ok(tenant), Ok(portal)) = (TenantId::parse(tenant), PortalId::parse(portal)) else {
            return Ok(default_template(kind));
        };
        Ok(self.store.get_template(&tenant, &portal, kind).await?.unwrap_or_else(|| default_template(kind)))
    }

    async fn process_message(&self, message: &SqsMessage) -> bool {
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let job: MailJob = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message_id = ?message.message_id, "unreadable mail job; leaving it for the DLQ");
                return true;
            }
        };
        let redelivery = self.ses.redelivery();
        let outcome = self.process(&job, receive_count).await;
        match &outcome {
            Ok(Outcome::Sent) => crate::metrics::emf::count("EmailsSent", &[]),
            Ok(Outcome::Failed { .. }) => crate::metrics::emf::count("EmailsFailed", &[]),
            Ok(Outcome::WillRetry(_)) | Err(_) => crate::metrics::emf::count("EmailsRetried", &[]),
            Ok(Outcome::AlreadySent | Outcome::Busy) => {}
        }
        match outcome {
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
        let mut response = SqsBatchResponse::default();
        for (message, keep) in event.records.iter().zip(results) {
            if keep {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }
}
