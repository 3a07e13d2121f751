// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `mailer` Lambda (SQS): renders and sends queued emails through SES v2,
//! reporting partial batch failures. Wiring only; see `portal::workers::mailer`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use portal::{telemetry, workers::mailer::Mailer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let mailer = Mailer::from_env().await?;
    let mailer = &mailer;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(mailer.handle_batch(event.payload).await)
    }))
    .await
}
