//! The SES v2 adapter: sends one rendered email, and says whether a failure
//! is worth retrying. It also carries the mailer's [`Redelivery`] (the SQS
//! side of a retry: how long a job SES could not take waits), built from the
//! same SDK configuration, so every way a mailer is built gets it.

use super::retry::{Backoff, Redelivery};
use super::RenderedEmail;
use crate::domain::delivery::{TAG_CONTACT, TAG_DOCUMENT, TAG_TENANT};
use aws_sdk_sesv2::{
    operation::send_email::SendEmailError,
    types::{Body, Content, Destination, EmailContent, Message, MessageTag},
    Client,
};

#[derive(Clone, Debug)]
pub struct Ses {
    client: Client,
    from: String,
    configuration_set: Option<String>,
    redelivery: Redelivery,
}

/// Which email a send is: SES echoes these tags in its delivery events (`domain::delivery`).
#[derive(Debug, Clone, Copy)]
pub struct SendTags<'a> {
    pub tenant_id: &'a str,
    pub contact_id: &'a str,
    pub document_id: &'a str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Throttling, 5xx, timeouts: the queue will bring the job back.
    #[error("SES is unavailable: {0}")]
    Retryable(String),
    /// The address or the message was refused: retrying cannot help.
    #[error("SES refused the email: {0}")]
    Permanent(String),
}

fn tag(name: &str, value: &str) -> Result<MessageTag, SendError> {
    MessageTag::builder().name(name).value(value).build().map_err(|e| SendError::Permanent(e.to_string()))
}

fn content(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Permanent(e.to_string()))
}

impl Ses {
    pub fn new(sdk: &aws_config::SdkConfig, from: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), from: from.into(), configuration_set: None, redelivery: Redelivery::new(sdk) }
    }

    /// Every send names this configuration set, whose event destination publishes its delivery events.
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }

    /// With another retry backoff (the default: 30 s doubling to 15 min).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.redelivery.backoff = backoff;
        self
    }

    /// How the mailer holds back a job SES could not take.
    pub fn redelivery(&self) -> &Redelivery {
        &self.redelivery
    }

    /// Sends the email; returns SES's message id.
    #[tracing::instrument(skip_all)]
    pub async fn send(&self, to: &str, email: &RenderedEmail, tags: SendTags<'_>) -> Result<String, SendError> {
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(Body::builder().text(content(&email.text)?).html(content(&email.html)?).build())
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .email_tags(tag(TAG_TENANT, tags.tenant_id)?)
            .email_tags(tag(TAG_CONTACT, tags.contact_id)?)
            .email_tags(tag(TAG_DOCUMENT, tags.document_id)?)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let service = err.into_service_error();
                let reason = match status {
                    Some(code) => format!("{service} (HTTP {code})"),
                    None => service.to_string(),
                };
                match service {
                    SendEmailError::MessageRejected(_)
                    | SendEmailError::MailFromDomainNotVerifiedException(_)
                    | SendEmailError::BadRequestException(_)
                    | SendEmailError::NotFoundException(_) => Err(SendError::Permanent(reason)),
                    _ => Err(SendError::Retryable(reason)),
                }
            }
        }
    }
}
