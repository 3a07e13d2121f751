//! The `publisher` function's worker: the table's change stream, read as
//! state changes (`store::changes`), put on the service's EventBridge bus
//! (`bus`). At least once and in order: a batch whose events the bus did not
//! all take reports the first record not fully published as its batch item
//! failure (ReportBatchItemFailures), so Lambda retries from there; the
//! events before it were published, and the retried ones keep their ids.

use crate::bus::Bus;
use crate::domain::event_out::OutEvent;
use crate::store::changes::{events_of, Change};
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

pub struct Publisher {
    pub bus: Bus,
}

impl Publisher {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self { bus: Bus::new(&sdk, crate::bus::bus_name()?) })
    }

    /// Each record's events, in the stream's order.
    pub fn events(event: &Event) -> Vec<(Option<String>, Vec<OutEvent>)> {
        event
            .records
            .iter()
            .map(|r| {
                let at = r.change.approximate_creation_date_time;
                let at = if at.timestamp() == 0 { chrono::Utc::now() } else { at };
                let change = Change { event_id: &r.event_id, at, old: present(&r.change.old_image), new: present(&r.change.new_image) };
                (r.change.sequence_number.clone(), events_of(&change))
            })
            .collect()
    }

    pub async fn handle_batch(&self, event: Event) -> DynamoDbEventResponse {
        let per_record = Self::events(&event);
        let all: Vec<OutEvent> = per_record.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
        let taken = match self.bus.put(&all).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = ?e, "no event published; the batch is retried");
                0
            }
        };
        crate::metrics::emf::put("EventsPublished", taken as f64, &[]);
        let mut response = DynamoDbEventResponse::default();
        let mut published = 0;
        for (sequence, events) in per_record {
            if published + events.len() > taken {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                response.batch_item_failures.push(failure);
                break;
            }
            published += events.len();
        }
        response
    }
}

/// An image the record has (an insert has no old one, a delete no new one).
fn present(image: &crate::store::changes::Image) -> Option<&crate::store::changes::Image> {
    (!image.is_empty()).then_some(image)
}
