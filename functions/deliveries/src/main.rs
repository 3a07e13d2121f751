//! `deliveries` Lambda (SQS): records SES delivery events (delivered, bounced,
//! complained, delayed) on the email log and suppresses bounced addresses,
//! reporting partial batch failures. Wiring only; see `portal::workers::deliveries`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use portal::{telemetry, workers::deliveries::Deliveries};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deliveries = Deliveries::from_env().await?;
    let deliveries = &deliveries;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(deliveries.handle_batch(event.payload).await)
    }))
    .await
}
