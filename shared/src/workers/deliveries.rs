//! The `deliveries` function's worker: the SQS batch of SES delivery events
//! (each an SNS notification, `domain::delivery`) around
//! [`crate::usecase::record_delivery`], and its composition at cold start.
//!
//! - unreadable (not an SNS notification of an SES event): kept, so after its
//!   receives it reaches the DLQ, whose alarm says so; counted
//!   (`DeliveryEventsUnreadable`);
//! - an event type the log does not track (Send, Open, …): let go;
//! - an event naming no email of this service, or one whose message id is not
//!   the entry's (a forgery, another system's email on the same topic): let
//!   go, nothing changed, counted (`DeliveryEventsUnmatched`);
//! - DynamoDB failing: kept, for the next receive.

use crate::app::Settings;
use crate::domain::delivery::{parse_notification, DeliveryParseError};
use crate::store::Store;
use crate::usecase::record_delivery::{DeliveryRecorder, Outcome};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

pub struct Deliveries {
    pub recorder: DeliveryRecorder,
}

impl Deliveries {
    pub fn new(sdk: &aws_config::SdkConfig, settings: &Settings) -> Self {
        Self::from_store(Store::new(sdk, &settings.table_name))
    }

    pub fn from_store(store: Store) -> Self {
        Self { recorder: DeliveryRecorder { store } }
    }

    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self::new(&sdk, &settings))
    }

    /// One message: `true` when SQS should keep it.
    async fn process_message(&self, message: &SqsMessage) -> bool {
        let event = match parse_notification(message.body.as_deref().unwrap_or_default()) {
            Ok(event) => event,
            Err(DeliveryParseError::Untracked(kind)) => {
                tracing::debug!(%kind, "delivery event not tracked");
                return false;
            }
            Err(e @ DeliveryParseError::NotOurs(_)) => {
                tracing::warn!(message_id = ?message.message_id, reason = %e, "delivery event for no email of ours");
                crate::metrics::emf::count("DeliveryEventsUnmatched", &[]);
                return false;
            }
            Err(e @ DeliveryParseError::Unreadable(_)) => {
                tracing::error!(message_id = ?message.message_id, reason = %e, "unreadable delivery event; leaving it for the DLQ");
                crate::metrics::emf::count("DeliveryEventsUnreadable", &[]);
                return true;
            }
        };
        match self.recorder.record(&event).await {
            Ok(Outcome::Recorded { status, suppressed }) => {
                crate::metrics::emf::count("DeliveryEvents", &[("Status", status.as_str())]);
                if suppressed {
                    crate::metrics::emf::count("AddressesSuppressed", &[]);
                }
                false
            }
            Ok(Outcome::Duplicate) => false,
            Ok(Outcome::Unmatched) => {
                tracing::warn!(tenant = %event.tenant_id, "delivery event matches no email sent");
                crate::metrics::emf::count("DeliveryEventsUnmatched", &[]);
                false
            }
            Err(e) => {
                tracing::error!(error = ?e, "delivery event not recorded");
                true
            }
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let results = futures::future::join_all(event.records.iter().map(|m| self.process_message(m))).await;
        super::batch_response(event.records.iter().zip(results).filter(|(_, keep)| *keep).map(|(m, _)| m))
    }
}
