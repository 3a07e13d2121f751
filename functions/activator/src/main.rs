//! `activator` Lambda (SQS): processes bulk activation batches, reporting
//! partial batch failures. Wiring only; see `portal::workers::activator`.

#![recursion_limit = "256"]

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use portal::{telemetry, workers::activator::Activator};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let activator = Activator::from_env().await?;
    let activator = &activator;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(activator.handle_batch(event.payload).await)
    }))
    .await
}
