//! SES throttling and 5xx: the mailer backs off (the message's visibility is
//! set to the backoff), the message returns, after maxReceiveCount it is in
//! the DLQ and the email log says `failed` with SES's reason; nothing is sent
//! and nothing dropped. When SES recovers, exactly one email goes out.

use super::fault_proxy::{Fault, FaultProxy, Rule};
use super::harness::*;
use crate::helpers::*;
use portal::mail::EmailStatus;
use portal_local::local;
use serde_json::Value;
use std::time::Duration;

/// SES answers `fault` to every SendEmail: the job backs off, returns, and
/// after maxReceiveCount is in the DLQ; the log says `failed` with the reason.
async fn ses_keeps_failing(fault: Fault, reason_has: &[&str]) {
    let w = MailWorld::new("sesdown", MAIL_VISIBILITY).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let hits = proxy.inject(Rule::ses_send_email().answer(fault));
    let mailer = w.mailer(&proxy).await;
    let received = w.poll_until(&mailer, Duration::from_secs(40), || async { messages_on(&w.sqs, &w.queue.dlq_url).await > 0 }).await;

    let counts: Vec<u32> = received.iter().map(|r| r.receive_count).collect();
    assert_eq!(counts, [1, 2, 3], "one try per receive up to maxReceiveCount: {received:?}");
    for pair in received.windows(2) {
        let (gap, n) = (pair[1].at - pair[0].at, pair[0].receive_count);
        assert!(gap >= BACKOFF.delay(n), "back after {gap:?}, before the backoff of {:?} after try {n}", BACKOFF.delay(n));
        assert!(gap < Duration::from_secs(u64::from(MAIL_VISIBILITY) - 5), "back after {gap:?}: the visibility was not changed");
    }
    assert_eq!(hits.get(), received.len() * SDK_ATTEMPTS, "every try reached SES (the SDK's own retries included)");
    // The mailer set each message's visibility: the backoff after tries 1 and 2, zero after the last.
    let visibility: Vec<i64> = proxy
        .seen()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some("AmazonSQS.ChangeMessageVisibility"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["VisibilityTimeout"].as_i64().unwrap())
        .collect();
    assert_eq!(visibility.len(), 3, "{visibility:?}");
    assert!((1..=2).contains(&visibility[0]) && (2..=3).contains(&visibility[1]) && visibility[2] == 0, "{visibility:?}");

    // Nothing dropped: the job is in the DLQ, intact; the log says why.
    let dead = drain_bodies(&w.sqs, &w.queue.dlq_url).await;
    assert_eq!(dead.len(), 1);
    let job: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!((job["document_id"].as_str(), job["contact_id"].as_str()), (Some(w.document_id.as_str()), Some(w.contact.as_str())));
    assert_eq!(messages_on(&w.sqs, &w.queue.url).await, 0);
    let entry = w.entry().await;
    assert_eq!(entry.status, EmailStatus::Failed);
    let reason = entry.failure_reason.clone().unwrap_or_default();
    for part in reason_has {
        assert!(reason.contains(part), "failure reason {reason:?} lacks {part:?}");
    }
    assert_eq!(entry.attempts, 3, "three leases, one per try");
    assert!(ses_messages_to(&w.email).await.is_empty(), "nothing was sent");
}

/// SES answers `fault` to the first `failed_tries` tries, then recovers: one email.
async fn ses_recovers(fault: Fault, failed_tries: usize) {
    let w = MailWorld::new("sesback", MAIL_VISIBILITY).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let hits = proxy.inject(Rule::ses_send_email().times(failed_tries * SDK_ATTEMPTS).answer(fault));
    let mailer = w.mailer(&proxy).await;
    let received = w.poll_until(&mailer, Duration::from_secs(40), || async { w.entry().await.status == EmailStatus::Sent }).await;
    let counts: Vec<u32> = received.iter().map(|r| r.receive_count).collect();
    assert_eq!(counts, (1..=failed_tries as u32 + 1).collect::<Vec<_>>(), "{received:?}");
    for pair in received.windows(2) {
        assert!(pair[1].at - pair[0].at >= BACKOFF.delay(pair[0].receive_count), "{received:?}");
    }
    assert_eq!(hits.get(), failed_tries * SDK_ATTEMPTS);
    let sent = ses_messages_to(&w.email).await;
    assert_eq!(sent.len(), 1, "exactly one email once SES is back");
    let entry = w.entry().await;
    assert!(entry.ses_message_id.is_some() && entry.failure_reason.is_none(), "{entry:?}");
    assert_eq!(entry.attempts as usize, failed_tries + 1);
    assert_eq!(messages_on(&w.sqs, &w.queue.url).await, 0, "the job was deleted once sent");
    assert_eq!(messages_on(&w.sqs, &w.queue.dlq_url).await, 0);
    assert_eq!(w.log_len().await, 1);
}

#[tokio::test]
async fn ses_throttling_backs_off_then_dead_letters_the_job_with_the_reason() {
    ses_keeps_failing(Fault::ses_throttled(), &["TooManyRequests", "HTTP 429"]).await;
}

#[tokio::test]
async fn ses_503_backs_off_then_dead_letters_the_job_with_the_reason() {
    ses_keeps_failing(Fault::ses_unavailable(503), &["HTTP 503"]).await;
}

#[tokio::test]
async fn ses_500_once_then_recovered_sends_exactly_one_email() {
    ses_recovers(Fault::ses_unavailable(500), 1).await;
}

#[tokio::test]
async fn ses_throttling_twice_then_recovered_on_the_last_receive_sends_exactly_one_email() {
    ses_recovers(Fault::ses_throttled(), 2).await;
}
