//! Sending one message (an email, or a text): a job is a reference to an
//! entry of the Email/Text Log. Sending is guarded so that a redelivered or
//! duplicated job never sends a second message:
//! 1. the entry is leased (`queued`/`failed` → `sending`, conditional);
//! 2. it is rendered (the template of the contact's language, `domain::locale`)
//!    and sent through SES, or for a text through SNS (`mail::sns`) after the
//!    number's opt-out is checked;
//! 3. it is marked `sent` with the message id and the rendered document.
//!
//! After 1, the entry's companions (the same send's other channels) are put
//! on the queue, so whatever queues a message queues all of its send.
//!
//! If SES fails in a retryable way the entry goes back to `queued` and the
//! outcome says to try again ([`Outcome::WillRetry`]); on the last receive
//! before the DLQ the entry is marked `failed` with the reason. A refused
//! address fails at once: retrying cannot help. The SQS batch around it, with
//! its backoff, is the mailer worker's (`workers::mailer`).
//!
//! Before 2, an address on the tenant's suppression list (a hard bounce or a
//! complaint, `domain::delivery`) fails the email at once: nothing is sent.
//! Every send carries the configuration set and the email's tags, so SES's
//! delivery events find their way back to the entry (`workers::deliveries`).
//!
//! Between 2 and 3 the email is counted against its tenant's sending quota
//! (`domain::quota`); past it the entry is marked `throttled`, the lease given
//! up, and the outcome says when to try again ([`Outcome::Throttled`]).

use crate::app::Clock;
use crate::domain::quota::Window;
use crate::domain::{locale, Channel, EmailStatus, MailJob, Recipient};
use crate::mail::{
    ses::{SendError, SendTags, Ses},
    sns::Sms,
    templates::{choose, render, render_sms, RenderedEmail, TemplateVars},
};
use crate::queue::MailQueue;
use crate::store::{EmailKey, Store};

#[derive(Debug, thiserror::Error)]
pub enum SendEmailError {
    /// The job names an email the log does not hold.
    #[error("no email log entry for this job")]
    NoLogEntry,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What sending needs, built once at cold start.
pub struct EmailSender {
    pub store: Store,
    pub ses: Ses,
    /// Text messages (`domain::channel`).
    pub sms: Sms,
    /// The mail queue: where a message's companions go (and a throttled job goes back, delayed).
    pub queue: MailQueue,
    /// The hash key's versions: open the secrets sealed in the log entry (`domain::sealed`).
    pub keys: crate::secrets::HashKeys,
    pub clock: Clock,
    /// The mail queue's maxReceiveCount: the receive after which SQS gives up.
    pub max_receive_count: u32,
    /// How long a lease keeps other mailers off an entry (ms); above SES's worst latency.
    pub lease_ms: i64,
    /// The deployment's cap on any tenant's `emails_per_hour` (`MAX_EMAILS_PER_HOUR`).
    pub max_emails_per_hour: u32,
    /// The deployment's cap on any tenant's `sms_per_hour` (`MAX_SMS_PER_HOUR`).
    pub max_sms_per_hour: u32,
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
    /// The tenant's sending quota is used up for this hour: recorded as
    /// `throttled`; the job should come back after `delay_seconds`, as a new
    /// message (this one's receives count toward the DLQ).
    Throttled { delay_seconds: u32 },
}

impl Outcome {
    /// Whether SQS should keep (redeliver, and eventually dead-letter) the message.
    pub fn keep_message(&self) -> bool {
        match self {
            Self::Sent | Self::AlreadySent => false,
            Self::Busy | Self::WillRetry(_) => true,
            Self::Failed { to_dlq, .. } => *to_dlq,
            // The worker sends it again with a delay before letting this one go.
            Self::Throttled { .. } => false,
        }
    }
}

impl EmailSender {
    /// Sends one job's email; `receive_count` is SQS's ApproximateReceiveCount.
    #[tracing::instrument(skip_all, fields(document_id = %job.document_id, receive_count))]
    pub async fn send(&self, job: &MailJob, receive_count: u32) -> Result<Outcome, SendEmailError> {
        let key = EmailKey {
            tenant_id: job.tenant_id.clone(),
            contact_id: job.contact_id.clone(),
            document_id: job.document_id.clone(),
        };
        let entry = self.store.get_email(&key).await?.ok_or(SendEmailError::NoLogEntry)?;
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
        // The other channels' messages of this send go on the queue first (each is sent once, whoever queues it).
        if !entry.companions.is_empty() {
            let jobs: Vec<MailJob> = entry
                .companions
                .iter()
                .map(|document_id| MailJob { tenant_id: job.tenant_id.clone(), contact_id: job.contact_id.clone(), document_id: document_id.clone() })
                .collect();
            if let Err(e) = self.queue.send_all(&jobs).await {
                self.store.mark_email_unsent(&key, "its companion messages could not be queued", false).await?;
                return Ok(Outcome::WillRetry(format!("could not queue the companion messages: {e:#}")));
            }
        }
        match &entry.to {
            Recipient::Email(to) => {
                // An address that bounced hard or complained gets nothing more (`domain::delivery`).
                if let Some(suppressed) = self.store.suppression(&job.tenant_id, to).await? {
                    let reason = format!("not sent: the address is on the suppression list ({} on {})", suppressed.problem.as_str(), crate::domain::time::format(&suppressed.at));
                    tracing::info!("email not sent to a suppressed address");
                    self.store.mark_email_unsent(&key, &reason, true).await?;
                    return Ok(Outcome::Failed { reason, to_dlq: false });
                }
            }
            Recipient::Sms(to) => match self.sms.opted_out(to).await {
                // Asked before every text: a number that replied STOP gets nothing (`domain::channel`).
                Ok(true) => {
                    let reason = "not sent: this number has opted out of text messages (replied STOP)".to_owned();
                    tracing::info!("text not sent to an opted-out number");
                    self.store.mark_email_unsent(&key, &reason, true).await?;
                    return Ok(Outcome::Failed { reason, to_dlq: false });
                }
                Ok(false) => {}
                Err(e) => return self.unsent(&key, e, receive_count).await,
            },
        }
        // What is stored shows the secrets masked; only what is sent has them.
        let masked = TemplateVars::from_map(&entry.vars);
        let vars = match &entry.sealed {
            None => Ok(masked.clone()),
            // A key that cannot be read now is worth a retry (an error), not a failed email.
            Some(sealed) => Self::unseal(&*self.keys.get().await?, &job.document_id, sealed, &masked),
        };
        let own = self.store.templates_of(&job.tenant_id, &entry.portal_id, entry.kind, &entry.default_locale).await?;
        let chosen = choose(entry.kind, &locale::chain(entry.locale.as_ref(), &entry.default_locale), &own);
        let channel = entry.to.channel();
        // On a blocking thread: a render that takes its whole budget holds up
        // no other job of the batch (they run concurrently on this runtime).
        let template = chosen.template;
        let rendered = tokio::task::spawn_blocking(move || {
            vars.and_then(|vars| {
                let both = |v: &TemplateVars| match channel {
                    Channel::Email => render(&template, v).map_err(|e| e.to_string()),
                    Channel::Sms => render_sms(&template, v).map(|text| RenderedEmail { subject: String::new(), text, html: String::new() }).map_err(|e| e.to_string()),
                };
                Ok((both(&vars)?, both(&masked)?))
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("the template could not be rendered: {e}")));
        let (rendered, kept) = match rendered {
            Ok(r) => r,
            Err(reason) => {
                self.store.mark_email_unsent(&key, &reason, true).await?;
                return Ok(Outcome::Failed { reason, to_dlq: false });
            }
        };
        let now = (self.clock)();
        let window = Window::of(now);
        let settings = self.store.tenant_settings(&job.tenant_id).await?;
        let limit = match channel {
            Channel::Email => settings.emails_per_hour.min(self.max_emails_per_hour),
            Channel::Sms => settings.sms_per_hour.min(self.max_sms_per_hour),
        };
        // `sms_per_hour` counts what SNS bills: segments, not messages.
        let count = match channel {
            Channel::Email => 1,
            Channel::Sms => u32::try_from(crate::domain::channel::sms_info(&rendered.text).segments).unwrap_or(u32::MAX),
        };
        if !self.store.take_send_slot(&job.tenant_id, channel, window, limit, count).await? {
            self.store.mark_email_throttled(&key).await?;
            let delay_seconds = window.delay_seconds(now);
            tracing::info!(limit, delay_seconds, channel = channel.as_str(), "message held back by the tenant's sending quota");
            return Ok(Outcome::Throttled { delay_seconds });
        }
        let sent = match &entry.to {
            Recipient::Email(to) => {
                let tags = SendTags { tenant_id: job.tenant_id.as_str(), contact_id: job.contact_id.as_str(), document_id: job.document_id.as_str() };
                self.ses.send(to.as_str(), &rendered, tags).await
            }
            Recipient::Sms(to) => self.sms.send(to, &rendered.text).await,
        };
        match sent {
            Ok(message_id) => {
                self.store.mark_email_sent(&key, &message_id, &kept, &chosen.locale, (self.clock)()).await?;
                tracing::info!(channel = channel.as_str(), "message sent");
                Ok(Outcome::Sent)
            }
            Err(e) => self.unsent(&key, e, receive_count).await,
        }
    }

    /// Records a send that failed: at once if retrying cannot help, else on the last receive.
    async fn unsent(&self, key: &EmailKey, error: SendError, receive_count: u32) -> Result<Outcome, SendEmailError> {
        match error {
            SendError::Permanent(reason) => {
                tracing::warn!(%reason, "message refused");
                self.store.mark_email_unsent(key, &reason, true).await?;
                Ok(Outcome::Failed { reason, to_dlq: false })
            }
            SendError::Retryable(reason) => {
                let last_try = receive_count >= self.max_receive_count;
                tracing::warn!(%reason, last_try, "message not sent");
                self.store.mark_email_unsent(key, &reason, last_try).await?;
                Ok(if last_try { Outcome::Failed { reason, to_dlq: true } } else { Outcome::WillRetry(reason) })
            }
        }
    }

    /// The variables with the sealed secrets put back.
    fn unseal(keys: &crate::domain::keyring::KeyRing, document: &crate::domain::DocumentId, sealed: &str, masked: &TemplateVars) -> Result<TemplateVars, String> {
        #[derive(serde::Deserialize)]
        struct Secrets {
            code: String,
            link: String,
        }
        let opened = keys.open_sealed(document, sealed).map_err(|e| e.to_string())?;
        let secrets: Secrets = serde_json::from_str(&opened).map_err(|_| "the email's sealed secrets are not readable".to_owned())?;
        Ok(TemplateVars { code: secrets.code.into(), link: secrets.link.into(), ..masked.clone() })
    }
}
