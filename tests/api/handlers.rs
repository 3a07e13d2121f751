//! Handler tests driven by the real-shaped events in events/*.json (the same
//! files `sam local invoke -e` takes), calling the functions' handlers in
//! process against the local stack, with a clock the test controls.

use crate::helpers::*;
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, Utc};
use portal::app::App;

use portal_local::local::{self, Endpoints};
use serde_json::json;

/// Seeds a tenant through the admin handler with the admin events; returns the contact's email.
async fn seed(admin_app: &App, tenant: &str) -> String {
    let email = format!("{}@example.com", unique("events"));
    let put_portal = portal::http::HttpFunction::Admin.handle(admin_app, fixture("admin-put-portal.json").tenant(tenant).request()).await;
    assert_eq!(put_portal.status(), 200, "{:?}", body(&put_portal));
    let contact = fixture("contacts-put.json");
    let mut contact_body = contact.body_json().unwrap();
    contact_body["email"] = json!(email);
    let put_contact = portal::http::HttpFunction::Contacts.handle(admin_app, contact.json(&contact_body).tenant(tenant).request()).await;
    assert_eq!(put_contact.status(), 200, "{:?}", body(&put_contact));
    email
}

#[tokio::test]
async fn events_drive_generate_mailer_claim_and_status_and_a_redelivered_job_sends_once() {
    let tenant = unique("ev");
    let (admin_app, gen_app, claim_app, status_app) = (app("admin").await, app("generate").await, app("claim").await, app("status").await);
    let email = seed(&admin_app, &tenant).await;

    let generated = portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").tenant(&tenant).request()).await;
    assert_eq!(generated.status(), 201);
    let issued = body(&generated);
    let document_id = issued["email_document_id"].as_str().unwrap().to_owned();

    // The SQS event from events/mailer.json, carrying this job.
    let mailer = local::mailer(&Endpoints::from_env().await, &template()).await.unwrap();
    let mut sqs = event("mailer.json");
    sqs["Records"][0]["body"] = json!(json!({"tenant_id": tenant, "contact_id": "chart-1001", "document_id": document_id}).to_string());
    let sqs: SqsEvent = serde_json::from_value(sqs).unwrap();
    let first = mailer.handle_batch(sqs.clone()).await;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    let redelivered = mailer.handle_batch(sqs).await;
    assert!(redelivered.batch_item_failures.is_empty(), "a redelivery is acknowledged, not retried");
    let sent = ses_messages_to(&email).await;
    assert_eq!(sent.len(), 1, "the redelivered job sent no second email");
    assert!(sent[0].1.contains(issued["code"].as_str().unwrap()));

    let emails = portal::http::HttpFunction::Contacts.handle(&admin_app, fixture("contacts-list-emails.json").tenant(&tenant).request()).await;
    assert_eq!(body(&emails)["items"][0]["status"], "sent");

    let claim_body = json!({"code": issued["code"], "email": email, "portal_id": "main"});
    let claimed = portal::http::HttpFunction::Claim.handle(&claim_app, fixture("claim.json").json(&claim_body).request()).await;
    assert_eq!(claimed.status(), 202, "{:?}", body(&claimed));
    let claimed = confirm_in_process(&claim_app, &tenant, "chart-1001").await;
    assert_eq!(claimed.status(), 201, "{:?}", body(&claimed));

    let view = portal::http::HttpFunction::Status.handle(&status_app, fixture("status.json").tenant(&tenant).request()).await;
    let view = body(&view);
    assert_eq!(view["accounts"][0]["email"], email.as_str());
    assert_eq!(view["pending_codes"], json!([]));
}

#[tokio::test]
async fn codes_expire_after_the_portal_ttl() {
    let tenant = unique("ttl");
    let admin_app = app("admin").await;
    seed(&admin_app, &tenant).await;
    let t0: DateTime<Utc> = "2026-03-01T09:00:00Z".parse().unwrap();
    let mut gen_app = app("generate").await;
    let _gen_clock = Clock::install(&mut gen_app, t0);
    let mut claim_app = app("claim").await;
    let claim_clock = Clock::install(&mut claim_app, t0);
    let mut status_app = app("status").await;
    let status_clock = Clock::install(&mut status_app, t0);

    let issued = body(&portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").json(&json!({})).tenant(&tenant).request()).await);
    assert_eq!(issued["expires_at"], "2026-03-08T09:00:00.000Z", "168 h, the portal's code_ttl_hours");
    let claim_body = json!({"code": issued["code"], "email": "late@example.com"});

    // At the expiry instant the code is gone from the portlet and refused.
    status_clock.set(t0 + Duration::hours(168));
    let view = body(&portal::http::HttpFunction::Status.handle(&status_app, fixture("status.json").tenant(&tenant).request()).await);
    assert_eq!(view["pending_codes"], json!([]));
    claim_clock.set(t0 + Duration::hours(168));
    let late = portal::http::HttpFunction::Claim.handle(&claim_app, fixture("claim.json").json(&claim_body).request()).await;
    assert_eq!(late.status(), 400);

    // A moment earlier the same code still works: the refusal changed nothing.
    claim_clock.set(t0 + Duration::hours(168) - Duration::seconds(1));
    let in_time = portal::http::HttpFunction::Claim.handle(&claim_app, fixture("claim.json").json(&claim_body).request()).await;
    assert_eq!(in_time.status(), 202, "the code is claimable (its claim is confirmed by email): {:?}", body(&in_time));
}

#[tokio::test]
async fn the_portlet_costs_one_dynamodb_request() {
    let tenant = unique("cost");
    let admin_app = app("admin").await;
    seed(&admin_app, &tenant).await;
    let gen_app = app("generate").await;
    portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").json(&json!({})).tenant(&tenant).request()).await;
    let status_app = app("status").await;
    // The first call also fills the portal cache (one more Query).
    let first = portal::http::HttpFunction::Status.handle(&status_app, fixture("status.json").tenant(&tenant).request()).await;
    assert_eq!(first.status(), 200);
    let before = status_app.store.requests_sent();
    let second = portal::http::HttpFunction::Status.handle(&status_app, fixture("status.json").tenant(&tenant).request()).await;
    assert_eq!(second.status(), 200);
    assert_eq!(body(&second)["pending_codes"].as_array().unwrap().len(), 1);
    assert_eq!(status_app.store.requests_sent() - before, 1, "status is exactly one DynamoDB request");
}

#[tokio::test]
async fn a_cold_portlet_reads_the_contact_then_the_portal_list_and_an_unknown_contact_nothing_more() {
    let tenant = unique("cold");
    seed(&app("admin").await, &tenant).await;
    // A fresh instance, no portal list cached: an unknown contact is a 404 after its one Query.
    let status_app = app("status").await;
    let unknown = fixture("status.json").tenant(&tenant).param("contact_id", "nobody");
    let unknown = portal::http::HttpFunction::Status.handle(&status_app, unknown.request()).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(status_app.store.requests_sent(), 1, "the contact's Query alone");
    // A known one: its Query, then the portal list (status.rs: one after the other, on one connection).
    let first = portal::http::HttpFunction::Status.handle(&status_app, fixture("status.json").tenant(&tenant).request()).await;
    assert_eq!(first.status(), 200, "{:?}", body(&first));
    assert_eq!(status_app.store.requests_sent(), 3, "the contact's Query and the portal list");
    assert_eq!(body(&first)["portals"][0]["portal_id"], "main", "{:?}", body(&first));
}

#[tokio::test]
async fn the_email_log_is_one_dynamodb_request_newest_first_without_the_partition_s_other_items() {
    let tenant = unique("log");
    let admin_app = app("admin").await;
    seed(&admin_app, &tenant).await;
    let list = || portal::http::HttpFunction::Contacts.handle(&admin_app, fixture("contacts-list-emails.json").tenant(&tenant).request());
    // A contact with no email yet: an empty log, not a 404.
    let before = admin_app.store.requests_sent();
    let empty = list().await;
    assert_eq!((empty.status().as_u16(), body(&empty)["items"].clone()), (200, json!([])));
    assert_eq!(admin_app.store.requests_sent() - before, 1, "the contact and its log in one Query");
    // Two codes emailed: the log holds both emails, newest first, and none of the
    // codes, accounts or profile that share its partition.
    let gen_app = app("generate").await;
    let mut documents = Vec::new();
    for _ in 0..2 {
        let issued = portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").tenant(&tenant).request()).await;
        assert_eq!(issued.status(), 201);
        documents.push(body(&issued)["email_document_id"].as_str().unwrap().to_owned());
    }
    let before = admin_app.store.requests_sent();
    let log = body(&list().await);
    assert_eq!(admin_app.store.requests_sent() - before, 1, "still one Query");
    let ids: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["document_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [documents[1].as_str(), documents[0].as_str()], "{log}");
    let unknown = fixture("contacts-list-emails.json").tenant(&tenant).param("contact_id", "nobody");
    assert_eq!(portal::http::HttpFunction::Contacts.handle(&admin_app, unknown.request()).await.status(), 404);
}

#[tokio::test]
async fn a_code_costs_two_dynamodb_requests_one_query_and_one_transaction() {
    let tenant = unique("gencost");
    seed(&app("admin").await, &tenant).await;
    let gen_app = app("generate").await;
    // The first also fills the portal list and profile caches.
    let first = portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").json(&json!({})).tenant(&tenant).request()).await;
    assert_eq!(first.status(), 201);
    let before = gen_app.store.requests_sent();
    let second = portal::http::HttpFunction::Generate.handle(&gen_app, fixture("generate.json").json(&json!({})).tenant(&tenant).request()).await;
    assert_eq!(second.status(), 201, "{:?}", body(&second));
    assert_eq!(gen_app.store.requests_sent() - before, 2, "the contact's partition (profile, states, codes) in one Query, then the transaction");
    // The second code revoked the first: read in that same Query.
    let view = body(&portal::http::HttpFunction::Status.handle(&app("status").await, fixture("status.json").tenant(&tenant).request()).await);
    assert_eq!(view["pending_codes"].as_array().unwrap().len(), 1, "{view}");
}

#[tokio::test]
async fn handlers_answer_401_without_authorizer_claims() {
    let resp = portal::http::HttpFunction::Status.handle(&app("status").await, fixture("status.json").public().request()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
