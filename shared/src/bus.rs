//! The EventBridge adapter: puts events out (`domain::event_out`) on the
//! service's bus, ten to a PutEvents call, and says which were not taken.

use crate::domain::event_out::{OutEvent, SOURCE};
use anyhow::Context as _;
use aws_sdk_eventbridge::{types::PutEventsRequestEntry, Client};

/// PutEvents takes at most ten entries.
const PER_CALL: usize = 10;

#[derive(Clone, Debug)]
pub struct Bus {
    client: Client,
    name: String,
}

impl Bus {
    pub fn new(sdk: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), name: name.into() }
    }

    /// Puts `events` in order; answers how many from the start were taken (all of them, or up to
    /// the first one the bus refused or a call that failed): the caller retries from there.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn put(&self, events: &[OutEvent]) -> anyhow::Result<usize> {
        let mut taken = 0;
        for chunk in events.chunks(PER_CALL) {
            let entries = chunk
                .iter()
                .map(|e| {
                    Ok(PutEventsRequestEntry::builder()
                        .event_bus_name(&self.name)
                        .source(SOURCE)
                        .detail_type(e.kind.as_str())
                        .detail(serde_json::to_string(e)?)
                        .time(aws_smithy_types::DateTime::from_millis(e.occurred_at.timestamp_millis()))
                        .build())
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out = match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(out) => out,
                Err(e) if taken > 0 => {
                    tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), taken, "PutEvents failed part way");
                    return Ok(taken);
                }
                Err(e) => return Err(anyhow::Error::new(e).context("PutEvents")),
            };
            if out.failed_entry_count() == 0 {
                taken += chunk.len();
                continue;
            }
            // Entries answer in order; the first refused one is where the retry starts.
            let first_refused = out.entries().iter().position(|r| r.error_code().is_some()).unwrap_or(0);
            tracing::warn!(refused = out.failed_entry_count(), "the bus refused events");
            return Ok(taken + first_refused);
        }
        Ok(taken)
    }
}

/// The bus name from the environment (`EVENT_BUS_NAME`).
pub fn bus_name() -> anyhow::Result<String> {
    std::env::var("EVENT_BUS_NAME").ok().filter(|v| !v.trim().is_empty()).context("environment variable EVENT_BUS_NAME is not set")
}
