// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `scheduler` Lambda (EventBridge schedule): expiry, auto-generate,
//! auto-email and reminders, stopping before the invocation's deadline.
//! Wiring only; see `portal::workers::scheduler`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use portal::{telemetry, workers::scheduler::Scheduler};
use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let scheduler = Scheduler::from_env().await?;
    let scheduler = &scheduler;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let left = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
        let summary = scheduler.run(Instant::now() + left).await?;
        Ok::<_, Error>(serde_json::to_value(summary)?)
    }))
    .await
}
