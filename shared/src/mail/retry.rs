//! Backing off a mail job that SES could not take now (throttling, 5xx).
//!
//! The mailer reports such a job as a batch item failure, so SQS keeps it;
//! before that it sets the message's visibility (ChangeMessageVisibility) to
//! an exponential backoff by its receive count, so a throttled or failing SES
//! is retried after 30 s, 1 min, 2 min, 4 min… (at most 15 min, plus up to a
//! quarter of jitter so a throttled burst does not come back at one instant)
//! instead of after the queue's fixed visibility timeout. On the last receive
//! the message is made visible at once, so it moves to the DLQ without waiting.
//!
//! The queue is the one the message came from: its URL is derived from the
//! record's `eventSourceARN`. If the call fails (e.g. the role lacks
//! `sqs:ChangeMessageVisibility`) the message still returns, after the
//! queue's visibility timeout: backing off is an optimisation, never a
//! condition for a retry.

use aws_lambda_events::sqs::SqsMessage;
use std::time::Duration;

/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// The delay before try `n + 1` after `n` failed tries: `base · 2^(n−1)`, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(30), cap: Duration::from_secs(900) }
    }
}

impl Backoff {
    /// The delay after the `receive_count`-th failed try, without jitter.
    pub fn delay(&self, receive_count: u32) -> Duration {
        // The one exponential pause of the crate (`retry::Policy`), within what SQS can hold.
        crate::retry::Policy::backoff(receive_count.max(1), self.base, self.cap).pause(receive_count).min(MAX_VISIBILITY)
    }

    /// [`Self::delay`] plus `jitter` (0 to 1) of a quarter of it, in whole
    /// seconds (SQS's unit), never below the delay itself.
    pub fn visibility_seconds(&self, receive_count: u32, jitter: f64) -> i32 {
        let d = self.delay(receive_count).as_secs_f64();
        let with_jitter = (d + d * 0.25 * jitter.clamp(0.0, 1.0)).ceil();
        with_jitter.min(MAX_VISIBILITY.as_secs_f64()) as i32
    }
}

/// A random fraction in [0, 1) for the jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.0,
    }
}

/// The queue URL of an SQS ARN (`arn:aws:sqs:eu-west-1:123456789012:MailQueue`
/// → `https://sqs.eu-west-1.amazonaws.com/123456789012/MailQueue`). SQS takes
/// the URL as a parameter; the endpoint the request goes to is the client's.
pub fn queue_url_from_arn(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_arn, partition, "sqs", region, account, name] = parts.as_slice() else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    let domain = match *partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

/// Holds messages back on their queue: the SQS client of the mailer's account and the backoff.
#[derive(Clone, Debug)]
pub struct Redelivery {
    /// Built at the first message held back.
    sqs: crate::aws::Lazy<aws_sdk_sqs::Client>,
    pub backoff: Backoff,
}

impl Redelivery {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { sqs: crate::aws::Lazy::new(sdk), backoff: Backoff::default() }
    }

    /// Sets the message's visibility timeout from now; logs (and otherwise
    /// ignores) a failure: the message then returns after the queue's own timeout.
    async fn set_visibility(&self, message: &SqsMessage, seconds: i32) -> bool {
        let (Some(arn), Some(receipt)) = (message.event_source_arn.as_deref(), message.receipt_handle.as_deref()) else {
            tracing::warn!(message_id = ?message.message_id, "no queue ARN or receipt handle; the message returns after the queue's visibility timeout");
            return false;
        };
        let Some(url) = queue_url_from_arn(arn) else {
            tracing::warn!(%arn, "not an SQS queue ARN; the message returns after the queue's visibility timeout");
            return false;
        };
        match self.sqs.get_or(aws_sdk_sqs::Client::new).change_message_visibility().queue_url(url).receipt_handle(receipt).visibility_timeout(seconds).send().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = ?aws_sdk_sqs::error::DisplayErrorContext(&e), "could not change the message's visibility; it returns after the queue's visibility timeout");
                false
            }
        }
    }

    /// Keeps the message away for the backoff after its `receive_count`-th try.
    pub async fn back_off(&self, message: &SqsMessage, receive_count: u32) -> bool {
        let seconds = self.backoff.visibility_seconds(receive_count, jitter());
        tracing::info!(receive_count, seconds, "mail job backs off");
        self.set_visibility(message, seconds).await
    }

    /// Makes the message visible at once (its last try: SQS moves it to the DLQ).
    pub async fn release(&self, message: &SqsMessage) -> bool {
        self.set_visibility(message, 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_cap() {
        let b = Backoff { base: Duration::from_secs(30), cap: Duration::from_secs(900) };
        let secs: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(b.delay(0).as_secs(), 30);
        assert_eq!(b.delay(u32::MAX).as_secs(), 900);
        assert_eq!(b.visibility_seconds(2, 0.0), 60);
        assert_eq!(b.visibility_seconds(2, 0.999), 75);
        let huge = Backoff { base: Duration::from_secs(40_000), cap: Duration::from_secs(100_000) };
        assert_eq!(huge.visibility_seconds(3, 1.0), 43_200, "never beyond SQS's 12 hours");
    }

    #[test]
    fn jitter_is_a_fraction() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:MailQueue").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/MailQueue")
        );
        assert_eq!(
            queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
        );
        assert_eq!(queue_url_from_arn("arn:aws:sns:eu-west-1:123456789012:topic"), None);
        assert_eq!(queue_url_from_arn("MailQueue"), None);
        assert_eq!(queue_url_from_arn("arn:aws:sqs:::q"), None);
    }
}
