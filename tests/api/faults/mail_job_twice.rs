//! The same mail job delivered twice, and handled twice at once: one email.

use super::fault_proxy::FaultProxy;
use super::harness::*;
use crate::helpers::*;
use portal::mail::EmailStatus;
use portal_local::local;
use std::time::{Duration, Instant};

/// The same job on the queue twice (a re-sent message), and one message
/// handed to two handlers at once (the same record twice in a batch, which
/// the mailer handles concurrently): one lease wins, one email.
#[tokio::test]
async fn the_same_mail_job_delivered_twice_and_handled_concurrently_sends_one_email() {
    let w = MailWorld::new("maildup", 2).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let mailer = w.mailer(&proxy).await;
    // The next message other than `skip` (a message not yet handled may come back meanwhile).
    let one_at_a_time = w.queue.source.clone().batch_size(1);
    let receive = |skip: Option<String>| {
        let source = &one_at_a_time;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                assert!(Instant::now() < deadline, "the job never arrived");
                if let Some(m) = source.receive().await.unwrap().into_iter().find(|m| m.message_id != skip) {
                    return m;
                }
            }
        }
    };
    let first = receive(None).await;
    w.sqs.send_message().queue_url(&w.queue.url).message_body(first.body.clone().unwrap()).send().await.unwrap();
    let second = receive(first.message_id.clone()).await;
    assert_eq!(first.body, second.body);
    assert_ne!(first.message_id, second.message_id);
    let batch = [first.clone(), first, second];
    let response = mailer.handle_batch(w.queue.source.event(&batch)).await;
    w.queue.source.settle(&batch, &response).await.unwrap();
    // Whatever was kept (another handler held the lease) comes back and is acknowledged as sent.
    w.poll_until(&mailer, Duration::from_secs(20), || async { messages_on(&w.sqs, &w.queue.url).await == 0 }).await;

    assert_eq!(ses_messages_to(&w.email).await.len(), 1, "one email for one job, however often delivered");
    let entry = w.entry().await;
    assert_eq!(entry.status, EmailStatus::Sent);
    assert_eq!(entry.attempts, 1, "exactly one handler leased and sent it");
    assert_eq!(w.log_len().await, 1);
    assert_eq!(messages_on(&w.sqs, &w.queue.dlq_url).await, 0);
}
