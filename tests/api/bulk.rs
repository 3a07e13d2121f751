//! Bulk activation (seed 002): selections, groups and lists, direct queue
//! submission, job progress, and the activator's redelivery and tenancy rules.

use crate::helpers::*;
use aws_lambda_events::sqs::SqsEvent;
use futures::future::join_all;
use portal::domain::{ContactId, TenantId};
use portal::queue::MailQueue;
use portal_local::local::{self, Endpoints};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Waits for a job to be done and returns it.
async fn done(app: &TestApp, job: &str, limit: Duration) -> Value {
    eventually(limit, || async {
        let j = app.get(&format!("/v1/jobs/{job}")).await.body;
        (j["state"] == "done").then_some(j)
    })
    .await
    .unwrap_or_else(|| panic!("job {job} not done within {limit:?}"))
}

async fn contacts(app: &TestApp, prefix: &str, n: usize, with_email: bool) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    for chunk in ids.chunks(50) {
        join_all(chunk.iter().map(|id| {
            let email = with_email.then(|| format!("{id}@example.com"));
            async move { app.put_contact(id, email.as_deref()).await.ok(200).clone() }
        }))
        .await;
    }
    ids
}

fn state_on_main(status: &Value) -> String {
    status["portals"][0]["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_group_is_activated_as_it_is_at_that_moment() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "g", 3, true).await;
    let put = |members: Vec<&String>| app.call(Method::PUT, "/v1/groups/vip", WRITE, Some(json!({"name": "VIP list", "contact_ids": members})));
    put(vec![&ids[0], &ids[1]]).await.ok(200);
    let job = app.call(Method::POST, "/v1/groups/vip/activate", WRITE, Some(json!({"method": "code", "send_email": false}))).await;
    let job = job.ok(202)["job_id"].as_str().unwrap().to_owned();
    // A member added afterwards is not part of the job.
    put(vec![&ids[0], &ids[1], &ids[2]]).await.ok(200);
    assert_eq!(app.get("/v1/groups/vip").await.ok(200)["size"], 3);

    let j = done(&app, &job, Duration::from_secs(30)).await;
    assert_eq!((j["total"].clone(), j["activated"].clone()), (json!(2), json!(2)));
    assert_eq!(j["source"], "group:vip");
    assert_eq!(state_on_main(&app.status(&ids[0]).await.body), "pending");
    assert_eq!(state_on_main(&app.status(&ids[1]).await.body), "pending");
    assert_eq!(state_on_main(&app.status(&ids[2]).await.body), "none", "added later, not activated");
    app.call(Method::POST, "/v1/groups/nobody/activate", WRITE, Some(json!({"method": "code"}))).await.problem(404);
}

#[tokio::test]
async fn skips_are_counted_exactly() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let fresh = contacts(&app, "fresh", 3, true).await;
    let no_email = contacts(&app, "noemail", 2, false).await;
    let active = contacts(&app, "active", 2, true).await;
    for id in &active {
        let code = app.generate(id, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
        app.claim_confirmed(json!({"code": code, "email": format!("{id}@example.com")})).await.ok(201);
    }
    let all: Vec<&String> = fresh.iter().chain(&no_email).chain(&active).collect();
    let mut body: Vec<Value> = all.iter().map(|s| json!(s)).collect();
    body.push(json!("not-a-contact"));
    body.push(json!(fresh[0])); // duplicates count once
    let job = app.call(Method::POST, "/v1/activations", WRITE, Some(json!({"contact_ids": body, "method": "link"}))).await;
    let job = job.ok(202).clone();
    assert_eq!(job["total"], 8);
    let j = done(&app, job["job_id"].as_str().unwrap(), Duration::from_secs(90)).await;
    assert_eq!(
        (j["activated"].clone(), j["skipped_no_email"].clone(), j["skipped_already_active"].clone(), j["failed"].clone()),
        (json!(3), json!(2), json!(2), json!(1))
    );
    assert!(j["finished_at"].is_string());
    for id in &fresh {
        let emails = app.emails(id).await.body;
        assert_eq!(emails["items"].as_array().unwrap().len(), 1, "one activation email for {id}");
        assert_eq!(emails["items"][0]["kind"], "activation_link");
    }
    for id in &no_email {
        assert_eq!(state_on_main(&app.status(id).await.body), "none");
    }
    for id in &active {
        assert_eq!(state_on_main(&app.status(id).await.body), "active");
        let kinds: Vec<Value> = app.emails(id).await.body["items"].as_array().unwrap().iter().map(|e| e["kind"].clone()).collect();
        assert_eq!(kinds, [json!("claim_confirmation")], "only the claim's own confirmation, no activation email");
    }
}

#[tokio::test]
async fn a_thousand_contact_job_reaches_done_with_correct_counters() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "k", 1000, true).await;
    let job = app
        .call(Method::POST, "/v1/activations", WRITE, Some(json!({"contact_ids": ids, "method": "code", "send_email": false})))
        .await;
    let job_id = job.ok(202)["job_id"].as_str().unwrap().to_owned();
    let j = done(&app, &job_id, Duration::from_secs(180)).await;
    assert_eq!(j["total"], 1000);
    assert_eq!(j["activated"], 1000);
    assert_eq!(j["skipped_no_email"].as_u64().unwrap() + j["skipped_already_active"].as_u64().unwrap() + j["failed"].as_u64().unwrap(), 0);
    // Every contact has exactly one pending code: the listing agrees.
    let (mut pending, mut cursor) = (0, None::<String>);
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/v1/contacts?portal_status=pending&limit=200{q}")).await.ok(200).clone();
        pending += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pending, 1000);
    assert_eq!(app.status(&ids[537]).await.body["pending_codes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_upstream_system_can_submit_batches_straight_to_the_queue() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "q", 150, true).await;
    let job = unique("nightly");
    let endpoints = Endpoints::from_env().await;
    let url = local::queue_url(&endpoints, "ActivationQueue").await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let entries = ids
        .chunks(100)
        .enumerate()
        .map(|(i, chunk)| {
            let body = json!({"version": 1, "tenant_id": app.tenant, "job_id": job, "method": "code", "send_email": false,
                              "contact_ids": chunk, "job_total": 150, "actor": "crm-sync"});
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(format!("b{i}")).message_body(body.to_string()).build().unwrap()
        })
        .collect();
    sqs.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await.unwrap();
    let j = done(&app, &job, Duration::from_secs(60)).await;
    assert_eq!((j["total"].clone(), j["activated"].clone(), j["source"].clone()), (json!(150), json!(150), json!("queue")));
    let audit = app.get(&format!("/v1/contacts/{}/audit", ids[0])).await.ok(200).clone();
    assert_eq!(audit["items"][0]["actor"], "crm-sync");
    assert_eq!(audit["items"][0]["action"], "bulk_activate");
}

#[tokio::test]
async fn bad_submissions_are_refused() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let post = |body: Value| app.call(Method::POST, "/v1/activations", WRITE, Some(body));
    post(json!({"contact_ids": [], "method": "code"})).await.problem(422);
    post(json!({"contact_ids": ["a"], "method": "sms"})).await.problem(422);
    let bad = post(json!({"contact_ids": ["ok", "no#pe"], "method": "code"})).await;
    bad.problem(422);
    assert_eq!(bad.body["errors"][0]["pointer"], "/contact_ids/1");
    let too_many: Vec<String> = (0..10_001).map(|i| format!("c{i}")).collect();
    post(json!({"contact_ids": too_many, "method": "code"})).await.problem(422);
    app.call(Method::POST, "/v1/activations", READ, Some(json!({"contact_ids": ["a"], "method": "code"}))).await.problem(403);
    app.get(&format!("/v1/jobs/{}", unique("nojob"))).await.problem(404);
}

/// An activator in process whose email jobs go to a queue of the test's own.
async fn activator() -> portal::workers::activator::Activator {
    let endpoints = Endpoints::from_env().await;
    let mut a = local::activator(&endpoints, &template()).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let url = sqs.create_queue().queue_name("BulkTestMailQueue").send().await.unwrap().queue_url.unwrap();
    a.app.mail_queue = MailQueue::new(&endpoints.moto, url);
    a
}

fn sqs_event(message_id: &str, body: Value, receive_count: u32) -> SqsEvent {
    let mut e = event("activation-batch.json");
    e["Records"][0]["messageId"] = json!(message_id);
    e["Records"][0]["body"] = json!(body.to_string());
    e["Records"][0]["attributes"]["ApproximateReceiveCount"] = json!(receive_count.to_string());
    serde_json::from_value(e).unwrap()
}

#[tokio::test]
async fn the_same_message_delivered_twice_issues_one_code_and_one_email_per_contact() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "dup", 5, true).await;
    let job = unique("dupjob");
    let body = json!({"version": 1, "tenant_id": app.tenant, "job_id": job, "method": "code", "contact_ids": ids, "job_total": 5});
    let a = activator().await;
    for (message_id, receive) in [("m-1", 1), ("m-1", 2), ("m-2-resent", 1)] {
        let r = a.handle_batch(sqs_event(message_id, body.clone(), receive)).await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
    }
    let tenant = TenantId::parse(&app.tenant).unwrap();
    for id in &ids {
        let p = a.app.store.contact_partition(&tenant, &ContactId::parse(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(p.codes.len(), 1, "one code for {id}");
        assert_eq!(app.emails(id).await.body["items"].as_array().unwrap().len(), 1, "one email for {id}");
    }
    let j = app.get(&format!("/v1/jobs/{job}")).await.ok(200).clone();
    assert_eq!((j["state"].clone(), j["activated"].clone(), j["total"].clone()), (json!("done"), json!(5), json!(5)));
}

#[tokio::test]
async fn a_message_naming_another_tenants_contacts_activates_nothing() {
    let owner = TestApp::new().await;
    owner.put_portal("main", true).await.ok(200);
    let ids = contacts(&owner, "victim", 3, true).await;
    let intruder = TestApp::new().await;
    intruder.put_portal("main", true).await.ok(200);
    let job = unique("steal");
    let body = json!({"version": 1, "tenant_id": intruder.tenant, "job_id": job, "method": "link", "contact_ids": ids, "job_total": 3});
    let r = activator().await.handle_batch(sqs_event("x-1", body, 1)).await;
    assert!(r.batch_item_failures.is_empty());
    let j = intruder.get(&format!("/v1/jobs/{job}")).await.ok(200).clone();
    assert_eq!((j["activated"].clone(), j["failed"].clone(), j["state"].clone()), (json!(0), json!(3), json!("done")));
    for id in &ids {
        let status = owner.status(id).await.ok(200).clone();
        assert_eq!(state_on_main(&status), "none");
        assert_eq!(owner.emails(id).await.body["items"], json!([]));
    }
}

#[tokio::test]
async fn an_unreadable_message_is_reported_failed_and_writes_nothing() {
    let a = activator().await;
    let requests = a.app.store.requests_sent();
    let r = a.handle_batch(sqs_event("poison-1", json!({"version": 1, "tenant_id": "t", "oops": true}), 1)).await;
    assert_eq!(r.batch_item_failures.len(), 1);
    assert_eq!(r.batch_item_failures[0].item_identifier, "poison-1");
    assert_eq!(a.app.store.requests_sent(), requests, "not one DynamoDB request for a poison message");
}
