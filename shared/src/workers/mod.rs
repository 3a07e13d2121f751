//! The workers: the functions that are not HTTP. Each takes its events
//! (SQS batches, the schedule), calls the use cases, and handles their
//! errors as outcomes (retry, skip, dead-letter) instead of answers. Each
//! also composes its own dependencies at cold start (`from_env`).

pub mod activator;
pub mod deliveries;
pub mod mailer;
pub mod publisher;
pub mod scheduler;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

/// SQS's ApproximateReceiveCount of a message (1 when absent).
pub(crate) fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// A partial batch response reporting these messages as failed (ReportBatchItemFailures).
pub(crate) fn batch_response<'a>(failed: impl Iterator<Item = &'a SqsMessage>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}
