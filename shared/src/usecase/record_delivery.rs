//! Recording one SES delivery event (`domain::delivery`) on the email it is
//! about: the entry must exist and hold SES's message id for it, or nothing
//! changes. A hard bounce or a complaint also puts the address the entry was
//! sent to (ours, not the event's word) on the tenant's suppression list and
//! marks the contact's email, before the event is recorded: a stopped run is
//! finished by the message's next receive, and a recorded event is never
//! applied twice.

use crate::domain::delivery::{apply, DeliveryEvent, DeliveryStatus, MAX_EVENTS_PER_EMAIL};
use crate::store::items::SuppressionItem;
use crate::store::{keys, EmailKey, Store};

#[derive(Debug, thiserror::Error)]
pub enum RecordDeliveryError {
    /// Other events kept landing on the entry between its read and its write.
    #[error("the email log entry kept changing")]
    Contended,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What one event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; the entry's delivery status is now this, and the address was suppressed if `suppressed`.
    Recorded { status: DeliveryStatus, suppressed: bool },
    /// That event was recorded before (or the entry holds as many as it keeps).
    Duplicate,
    /// No email of this service was sent as that message (an unknown entry, another message id).
    Unmatched,
}

pub struct DeliveryRecorder {
    pub store: Store,
}

/// Reads and writes of one event at most: a handful of events per email rarely race.
const ATTEMPTS: usize = 4;

impl DeliveryRecorder {
    #[tracing::instrument(skip_all, fields(tenant = %event.tenant_id, document_id = %event.document_id))]
    pub async fn record(&self, event: &DeliveryEvent) -> Result<Outcome, RecordDeliveryError> {
        let key = EmailKey { tenant_id: event.tenant_id.clone(), contact_id: event.contact_id.clone(), document_id: event.document_id.clone() };
        for _ in 0..ATTEMPTS {
            let Some(entry) = self.store.get_email(&key).await? else { return Ok(Outcome::Unmatched) };
            if entry.ses_message_id.as_deref() != Some(event.message_id.as_str()) {
                return Ok(Outcome::Unmatched);
            }
            if entry.delivery_events.len() >= MAX_EVENTS_PER_EMAIL {
                return Ok(Outcome::Duplicate);
            }
            // SES's events are about emails; a text's entry never matches one.
            let Some(to) = entry.to.email() else { return Ok(Outcome::Unmatched) };
            let Some((status, events)) = apply(&entry.delivery_events, &event.record) else { return Ok(Outcome::Duplicate) };
            let problem = event.record.problem();
            if let Some(problem) = problem {
                let item = SuppressionItem {
                    pk: keys::tenant_pk(&event.tenant_id),
                    sk: keys::suppression_sk(to),
                    address: to.clone(),
                    problem,
                    at: event.record.at,
                    contact_id: event.contact_id.clone(),
                    document_id: event.document_id.clone(),
                    diagnostic: event.record.diagnostic.clone(),
                };
                self.store.suppress(&event.tenant_id, &item).await?;
                self.store.flag_contact_email(&event.tenant_id, &event.contact_id, to, problem).await?;
            }
            if self.store.record_delivery(&key, &event.message_id, entry.delivery_events.len(), status, &events).await? {
                tracing::info!(status = status.as_str(), suppressed = problem.is_some(), "delivery event recorded");
                return Ok(Outcome::Recorded { status, suppressed: problem.is_some() });
            }
        }
        Err(RecordDeliveryError::Contended)
    }
}
