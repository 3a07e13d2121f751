//! DynamoDB paused (SIGSTOP: connections are accepted, nothing answers):
//! a status request and a claim answer 503 problem+json with `Retry-After`
//! within the SDK's operation timeout rather than hanging, the activator
//! leaves its message for redelivery, and once DynamoDB resumes every
//! request is fine again. The App runs with the functions' own timeouts
//! (`portal::aws::bounded`, applied by `local::sdk_config`).

use super::harness::*;
use crate::helpers::*;
use portal::http::HttpFunction;
use portal::queue::MailQueue;
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A bound on a hang, not a performance target: the operation timeout (5 s)
/// and a margin for a shared 2-core machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// A response's status, content type, `Retry-After` and JSON body, and how long it took.
struct Timed {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn timed(app: &portal::app::App, f: HttpFunction, req: lambda_http::Request) -> Timed {
    let started = Instant::now();
    // The outer bound only turns a hang into a failure message; the answer must come well before it.
    let resp = tokio::time::timeout(Duration::from_secs(30), f.handle(app, req)).await.expect("an answer, not a hang");
    let took = started.elapsed();
    let header = |name: &str| resp.headers().get(name).and_then(|h| h.to_str().ok()).map(str::to_owned);
    Timed { status: resp.status().as_u16(), content_type: header("content-type").unwrap_or_default(), retry_after: header("retry-after"), body: body(&resp), took }
}

#[track_caller]
fn assert_unavailable(what: &str, t: &Timed) {
    eprintln!("{what} while DynamoDB is paused: {} after {:.2} s", t.status, t.took.as_secs_f64());
    assert_eq!(t.status, 503, "{what}: {}", t.body);
    assert_eq!(t.content_type, "application/problem+json", "{what}");
    assert_eq!(t.retry_after.as_deref(), Some("2"), "{what}: Retry-After");
    assert_eq!(t.body["type"], "/problems/unavailable", "{what}");
    let detail = t.body["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("127.0.0.1") && !detail.to_lowercase().contains("dynamo"), "{what}: a generic detail, got {detail:?}");
    assert!(t.took < ANSWER_WITHIN, "{what}: answered after {:?}, not within {ANSWER_WITHIN:?}", t.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dynamodb_paused_requests_answer_503_with_retry_after_in_time_and_all_is_well_once_it_resumes() {
    let mut ddb = OwnDynamo::start(OwnDynamo::scratch_dir("portal-faults-pause"), PAUSE_PORT_OFFSET).await;
    let t = template();
    ddb.create_table(&t).await;
    let endpoints = Endpoints { dynamodb: local::sdk_config(&ddb.endpoint()).await, moto: Endpoints::from_env().await.moto };
    assert_eq!(endpoints.dynamodb.timeout_config(), Some(&portal::aws::timeouts()), "the functions' own timeouts");

    // Email jobs go to a queue of the test's own (no mailer reads it).
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let mail_url = sqs.create_queue().queue_name(unique("pausemail")).send().await.unwrap().queue_url.unwrap();
    let app = |binary: &'static str| {
        let (endpoints, t, mail_url) = (&endpoints, &t, &mail_url);
        async move {
            let mut app = local::http_app(endpoints, t, binary).await.unwrap();
            app.mail_queue = MailQueue::new(&endpoints.moto, mail_url);
            app
        }
    };
    let (admin, generate, status, claim) = (app("admin").await, app("generate").await, app("status").await, app("claim").await);
    let mut activator = local::activator(&endpoints, &t).await.unwrap();
    activator.app.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);

    // A tenant with a portal, a contact with a pending code, a second contact for a bulk batch.
    let tenant = unique("pause");
    let (contact, other) = (unique("pc"), unique("pb"));
    let email = format!("{}@example.com", unique("pause"));
    ok("portal", &call_full(&admin, HttpFunction::Admin, &tenant, put_portal_event("main", json!({}))).await, 200);
    ok("contact", &call_full(&admin, HttpFunction::Contacts, &tenant, put_contact_event(&contact, Some(&email))).await, 200);
    ok("other contact", &call_full(&admin, HttpFunction::Contacts, &tenant, put_contact_event(&other, Some(&format!("o-{email}")))).await, 200);
    let code = ok("generate", &call_full(&generate, HttpFunction::Generate, &tenant, generate_event(&contact, json!({}))).await, 201)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_event = || staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", &contact).tenant(&tenant).request();
    let claim_request = || claim_event(json!({"code": code, "email": email, "portal_id": "main"}), &random_loopback()).request();
    // Warm: the status function's portal cache is filled, so what is measured is its one read.
    let warm = timed(&status, HttpFunction::Status, status_event()).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    let job = unique("pausejob");
    let batch = json!({"version": 1, "tenant_id": tenant, "job_id": job, "method": "code", "contact_ids": [other], "job_total": 1}).to_string();

    ddb.pause();

    // (a) A status request.
    let paused_status = timed(&status, HttpFunction::Status, status_event()).await;
    assert_unavailable("status", &paused_status);
    // (b) A claim.
    let paused_claim = timed(&claim, HttpFunction::Claim, claim_request()).await;
    assert_unavailable("claim", &paused_claim);
    // (c) The activator leaves its message for redelivery, in time.
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), activator.handle_batch(service_activation_event("pause-1", &tenant, &batch, 1)))
        .await
        .expect("the activator answers, not hangs");
    let took = started.elapsed();
    eprintln!("activator batch while DynamoDB is paused: {} failure(s) after {:.2} s", r.batch_item_failures.len(), took.as_secs_f64());
    assert_eq!(r.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect::<Vec<_>>(), ["pause-1"], "left for redelivery");
    assert!(took < ANSWER_WITHIN, "the activator gave up after {took:?}");

    ddb.resume();

    // (d) Every request fine again: the same App, its clients and pools as they were.
    let after = eventually(Duration::from_secs(20), || async {
        let t = timed(&status, HttpFunction::Status, status_event()).await;
        (t.status == 200).then_some(t)
    })
    .await
    .expect("status answers 200 within 20 s of DynamoDB resuming");
    eprintln!("status after DynamoDB resumed: 200 after {:.2} s", after.took.as_secs_f64());
    assert_eq!(after.body["pending_codes"].as_array().map(Vec::len), Some(1), "{}", after.body);
    let claimed = timed(&claim, HttpFunction::Claim, claim_request()).await;
    assert_eq!(claimed.status, 202, "the claim goes through (confirmed by email): {}", claimed.body);
    let redelivered = activator.handle_batch(service_activation_event("pause-1", &tenant, &batch, 2)).await;
    assert!(redelivered.batch_item_failures.is_empty(), "the redelivered batch is done: {redelivered:?}");
    let jobs = app("activations").await;
    let j = ok("job", &call_full(&jobs, HttpFunction::Activations, &tenant, staff("GET", "/v1/jobs/{job_id}").param("job_id", &job)).await, 200);
    assert_eq!((j["state"].clone(), j["activated"].clone()), (json!("done"), json!(1)), "{j}");
    ddb.stop().await;
}
