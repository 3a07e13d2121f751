//! A tenant over its sending quota (`domain::quota`): its emails past the
//! limit are held back, shown `throttled`, and sent when the next hour
//! begins — re-sent to the queue with a delay, never received again nor
//! dropped — while another tenant's email goes out at once.

use super::harness::*;
use crate::helpers::*;
use chrono::{DurationRound, Utc};
use portal::domain::{ContactId, TenantId};
use portal::http::HttpFunction;
use portal::mail::EmailStatus;
use portal::queue::MailQueue;
use portal_local::local::{self, Endpoints};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: u32 = 2;
const NOISY_EMAILS: usize = 4;
/// How far before the hour's end the mailer's clock starts.
const LEAD_SECONDS: i64 = 12;

struct Tenant {
    id: String,
    /// contact id → (address, email document id)
    emails: BTreeMap<String, (String, String)>,
}

/// A tenant with `n` contacts, each sent a code by "Generate & Email" onto `queue_url`.
async fn tenant_with_emails(endpoints: &Endpoints, queue_url: &str, prefix: &str, n: usize, emails_per_hour: Option<u32>) -> Tenant {
    let t = template();
    let admin = local::http_app(endpoints, &t, "admin").await.unwrap();
    let mut generate = local::http_app(endpoints, &t, "generate").await.unwrap();
    generate.mail_queue = MailQueue::new(&endpoints.moto, queue_url);
    let id = unique(prefix);
    ok("portal", &call_full(&admin, HttpFunction::Admin, &id, put_portal_event("main", json!({}))).await, 200);
    if let Some(limit) = emails_per_hour {
        let set = staff("PUT", "/v1/settings").json(&json!({"emails_per_hour": limit}));
        let settings = ok("settings", &call_full(&admin, HttpFunction::Admin, &id, set).await, 200);
        assert_eq!(settings["emails_per_hour"], limit);
    }
    let mut emails = BTreeMap::new();
    for _ in 0..n {
        let contact = unique("chart");
        let address = format!("{}@example.com", unique(prefix));
        ok("contact", &call_full(&admin, HttpFunction::Contacts, &id, put_contact_event(&contact, Some(&address))).await, 200);
        let issued = ok("generate & email", &call_full(&generate, HttpFunction::Generate, &id, generate_event(&contact, json!({"send_email": true}))).await, 201);
        emails.insert(contact, (address, issued["email_document_id"].as_str().unwrap().to_owned()));
    }
    Tenant { id, emails }
}

async fn statuses(store: &portal::store::Store, t: &Tenant) -> Vec<EmailStatus> {
    let tenant = TenantId::parse(&t.id).unwrap();
    let mut out = Vec::new();
    for contact in t.emails.keys() {
        let log = store.list_emails(&tenant, &ContactId::parse(contact).unwrap()).await.unwrap();
        assert_eq!(log.len(), 1, "one email per contact, never a copy");
        out.push(log[0].status);
    }
    out.sort_by_key(|s| format!("{s:?}"));
    out
}

/// A queue's (visible, delayed) message counts.
async fn queue_counts(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let get = |a: A| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
    (get(A::ApproximateNumberOfMessages), get(A::ApproximateNumberOfMessagesDelayed))
}

#[tokio::test]
async fn a_tenant_over_its_quota_is_delayed_not_lost_while_another_tenant_s_email_goes_out_at_once() {
    let endpoints = Endpoints::from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let queue = queue_with_dlq(&sqs, "quota", MAIL_VISIBILITY, MAIL_MAX_RECEIVES).await;
    let noisy = tenant_with_emails(&endpoints, &queue.url, "noisy", NOISY_EMAILS, Some(LIMIT)).await;
    let quiet = tenant_with_emails(&endpoints, &queue.url, "quiet", 1, None).await;

    // The mailer's clock stands 12 s before the next hour, so the throttled
    // jobs wait ~13 s (until the window ends) rather than an hour; time
    // enough to look at them while they wait, even on a busy machine.
    let now = Utc::now();
    let target = now.duration_trunc(chrono::Duration::hours(1)).unwrap() + chrono::Duration::hours(1) - chrono::Duration::seconds(LEAD_SECONDS);
    let offset = target - now;
    let t = template();
    let mut mailer = local::mailer(&endpoints, &t).await.unwrap();
    mailer.sender.queue = MailQueue::new(&endpoints.moto, &queue.url);
    mailer.sender.max_receive_count = MAIL_MAX_RECEIVES;
    mailer.sender.clock = Arc::new(move || portal::domain::time::truncate(Utc::now() + offset));
    let store = mailer.sender.store.clone();

    // First pass: everything on the queue is received once.
    let started = Instant::now();
    let mut received = 0;
    while received < NOISY_EMAILS + 1 {
        assert!(started.elapsed() < Duration::from_secs(20), "the five jobs were not all received: {received}");
        if let Some(batch) = queue.source.poll_once(|e| mailer.handle_batch(e)).await.unwrap() {
            assert!(batch.messages.iter().all(|m| sqs_loop::receive_count(m) == 1), "a first receive each");
            assert!(batch.response.batch_item_failures.is_empty(), "no job is left to be received again");
            received += batch.messages.len();
        }
    }
    let first_pass = started.elapsed();
    // The quiet tenant's email went out at once; the noisy one's first two did, the rest wait.
    assert_eq!(statuses(&store, &quiet).await, [EmailStatus::Sent]);
    assert_eq!(statuses(&store, &noisy).await, [EmailStatus::Sent, EmailStatus::Sent, EmailStatus::Throttled, EmailStatus::Throttled]);
    let (address, _) = quiet.emails.values().next().unwrap();
    assert_eq!(ses_messages_to(address).await.len(), 1, "the quiet tenant's contact has its email");
    // Staff see `throttled` in the email log.
    let admin = local::http_app(&endpoints, &t, "admin").await.unwrap();
    let held: Vec<String> = {
        let mut held = Vec::new();
        for contact in noisy.emails.keys() {
            let log = ok("log", &call_full(&admin, HttpFunction::Contacts, &noisy.id, staff("GET", "/v1/contacts/{contact_id}/emails").param("contact_id", contact)).await, 200);
            if log["items"][0]["status"] == "throttled" {
                held.push(contact.clone());
            }
        }
        held
    };
    assert_eq!(held.len(), NOISY_EMAILS - LIMIT as usize);
    for contact in &held {
        assert!(ses_messages_to(&noisy.emails[contact].0).await.is_empty(), "held back, not sent");
    }
    // Held on the queue with a delay: nothing to receive now, nothing in the DLQ.
    let counts = queue_counts(&sqs, &queue.url).await;
    assert_eq!(counts, (0, (NOISY_EMAILS - LIMIT as usize) as u64), "(visible, delayed): the re-sent jobs wait, delayed");
    assert_eq!(messages_on(&sqs, &queue.dlq_url).await, 0);

    // When the next hour begins, the delayed jobs come back (as new messages) and go out.
    let waited = Instant::now();
    loop {
        assert!(waited.elapsed() < Duration::from_secs(45), "the throttled emails were not sent when the window allowed");
        if let Some(batch) = queue.source.poll_once(|e| mailer.handle_batch(e)).await.unwrap() {
            assert!(batch.messages.iter().all(|m| sqs_loop::receive_count(m) == 1), "a re-sent job's receives start again");
        }
        if statuses(&store, &noisy).await.iter().all(|s| *s == EmailStatus::Sent) {
            break;
        }
    }
    // Sent only once the mailer's hour had turned: the held emails' sent_at is in the next window.
    let next_hour = target + chrono::Duration::seconds(LEAD_SECONDS);
    let tenant = TenantId::parse(&noisy.id).unwrap();
    for contact in &held {
        let log = store.list_emails(&tenant, &ContactId::parse(contact).unwrap()).await.unwrap();
        let sent_at = log[0].sent_at.expect("sent");
        assert!(sent_at >= next_hour, "a held email went out at {sent_at}, before the window ended at {next_hour}");
    }
    println!("sending quota: first pass {first_pass:?}, the held emails out {:?} later", waited.elapsed());
    for (address, _) in noisy.emails.values() {
        assert_eq!(ses_messages_to(address).await.len(), 1, "every email sent exactly once");
    }
    assert_eq!(messages_on(&sqs, &queue.dlq_url).await, 0, "nothing dead-lettered");
    let settings = ok("settings", &call_full(&admin, HttpFunction::Admin, &noisy.id, staff("GET", "/v1/settings")).await, 200);
    assert_eq!(settings["emails_per_hour"], LIMIT);
}
