//! `publisher` Lambda (DynamoDB Streams): puts the table's state changes on
//! the service's EventBridge bus, reporting the first record not published as
//! its batch item failure. Wiring only; see `portal::workers::publisher`.

use aws_lambda_events::{dynamodb::Event, streams::DynamoDbEventResponse};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use portal::{telemetry, workers::publisher::Publisher};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let publisher = Publisher::from_env().await?;
    let publisher = &publisher;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, Error>(publisher.handle_batch(event.payload).await)
    }))
    .await
}
