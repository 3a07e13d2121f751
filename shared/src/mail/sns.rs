//! The SMS adapter: Amazon SNS `Publish` to a phone number (transactional),
//! after SNS's own opt-out list is asked (`CheckIfPhoneNumberIsOptedOut`):
//! a number that replied STOP gets nothing from us, even where an emulator
//! or a sandbox would still accept the publish.
//!
//! SNS rather than AWS End User Messaging SMS: one API, no origination
//! identity to provision for the sandbox, and the account's SMS settings
//! (spend limit, default sender id) stay where ops already keep them.

use super::ses::SendError;
use crate::domain::PhoneNumber;
use aws_sdk_sns::{types::MessageAttributeValue, Client};

#[derive(Clone, Debug)]
pub struct Sms {
    /// Built at the first text: most mail jobs are emails.
    client: crate::aws::Lazy<Client>,
}

/// Whether an SNS error is worth a retry: throttling, 5xx, timeouts are.
fn classify<E: std::error::Error + aws_sdk_sns::error::ProvideErrorMetadata + Send + Sync + 'static>(err: aws_sdk_sns::error::SdkError<E>) -> SendError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retryable = match &err {
        aws_sdk_sns::error::SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            status.is_none_or(|s| s >= 500) || code.contains("Throttl") || code == "InternalError"
        }
        _ => true,
    };
    let reason = match (err.as_service_error().and_then(|e| e.message().map(str::to_owned)), status) {
        (Some(m), Some(code)) => format!("{m} (HTTP {code})"),
        (Some(m), None) => m,
        (None, _) => format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err)),
    };
    if retryable { SendError::Retryable(format!("SNS is unavailable: {reason}")) } else { SendError::Permanent(format!("SNS refused the text message: {reason}")) }
}

impl Sms {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: crate::aws::Lazy::new(sdk) }
    }

    fn client(&self) -> &Client {
        self.client.get_or(Client::new)
    }

    /// Whether the number is on the account's SMS opt-out list.
    #[tracing::instrument(skip_all)]
    pub async fn opted_out(&self, to: &PhoneNumber) -> Result<bool, SendError> {
        let out = self.client().check_if_phone_number_is_opted_out().phone_number(to.as_str()).send().await.map_err(classify)?;
        Ok(out.is_opted_out)
    }

    /// Sends one text; returns SNS's message id.
    #[tracing::instrument(skip_all)]
    pub async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, SendError> {
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let out = self
            .client()
            .publish()
            .phone_number(to.as_str())
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", transactional)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.message_id.unwrap_or_default())
    }
}
