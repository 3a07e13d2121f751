//! Bulk activation (seed 002): selections, groups and lists, direct queue
//! submission, job progress, and the activator's redelivery and tenancy rules.

use crate::helpers::*;
use aws_lambda_events::sqs::SqsEvent;
use futures::future::join_all;
use crate::faults::harness::{messages_on, queue_with_dlq, TestQueue};
use portal::domain::queue_proof::{self, Signer};
use portal::domain::{ContactId, IntegrationId, TenantId};
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

/// Registers integration `id` of `app`'s tenant; its secret.
async fn register(app: &TestApp, id: &str, name: &str) -> String {
    let r = app.call(Method::PUT, &format!("/v1/integrations/{id}"), ADMIN, Some(json!({"name": name}))).await;
    r.ok(201)["secret"].as_str().expect("the secret, shown once").to_owned()
}

fn integration(id: &str) -> Signer {
    Signer::Integration(IntegrationId::parse(id).unwrap())
}

#[tokio::test]
async fn a_registered_integration_can_submit_signed_batches_straight_to_the_queue() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "q", 150, true).await;
    let secret = register(&app, "crm", "CRM nightly sync").await;
    let job = unique("nightly");
    let endpoints = Endpoints::from_env().await;
    let url = local::queue_url(&endpoints, "ActivationQueue").await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let entries = ids
        .chunks(100)
        .enumerate()
        .map(|(i, chunk)| {
            // No tenant and no actor: the proof says whose it is, the registration who did it.
            let body = json!({"version": 1, "job_id": job, "method": "code", "send_email": false, "contact_ids": chunk, "job_total": 150}).to_string();
            queue_entry(&format!("b{i}"), &body, &proof(secret.as_bytes(), &app.tenant, &integration("crm"), &body))
        })
        .collect();
    sqs.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await.unwrap();
    let j = done(&app, &job, Duration::from_secs(60)).await;
    assert_eq!((j["total"].clone(), j["activated"].clone(), j["source"].clone()), (json!(150), json!(150), json!("queue")));
    let audit = app.get(&format!("/v1/contacts/{}/audit", ids[0])).await.ok(200).clone();
    assert_eq!(audit["items"][0]["actor"], "CRM nightly sync", "the registered name, not anything the message says");
    assert_eq!(audit["items"][0]["action"], "bulk_activate");
}

#[tokio::test]
async fn integrations_are_registered_shown_without_their_secret_rotated_and_deleted_by_admins_only() {
    let app = TestApp::new().await;
    let path = "/v1/integrations/erp";
    app.call(Method::PUT, path, WRITE, Some(json!({"name": "ERP"}))).await.problem(403);
    app.call(Method::GET, path, WRITE, None).await.problem(403);
    app.call(Method::GET, path, ADMIN, None).await.problem(404);
    app.call(Method::PUT, path, ADMIN, Some(json!({"name": ""}))).await.problem(422);
    app.call(Method::PUT, "/v1/integrations/no%23pe", ADMIN, Some(json!({"name": "x"}))).await.problem(400);
    let first = register(&app, "erp", "ERP").await;
    assert!(first.len() >= 43, "256 bits");
    let shown = app.call(Method::GET, path, ADMIN, None).await.ok(200).clone();
    assert_eq!(shown["name"], "ERP");
    assert!(shown.get("secret").is_none() && !shown.to_string().contains(&first), "the secret is never shown again");
    let renamed = app.call(Method::PUT, path, ADMIN, Some(json!({"name": "ERP (prod)"}))).await.ok(200).clone();
    assert!(renamed.get("secret").is_none(), "a rename keeps the secret");
    let rotated = app.call(Method::PUT, path, ADMIN, Some(json!({"name": "ERP (prod)", "rotate_secret": true}))).await.ok(200).clone();
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    // Another tenant does not see it.
    let other = TestApp::new().await;
    other.call(Method::GET, path, ADMIN, None).await.problem(404);
    other.call(Method::DELETE, path, ADMIN, None).await.problem(404);
    assert_eq!(app.call(Method::DELETE, path, ADMIN, None).await.status, 204);
    app.call(Method::GET, path, ADMIN, None).await.problem(404);
}

/// The activator in process over a queue of the test's own (visibility 1 s, DLQ after 2 receives),
/// polled until the DLQ holds `want` messages or 40 s pass; the DLQ's count.
async fn poll_into_dlq(a: &portal::workers::activator::Activator, q: &TestQueue, sqs: &aws_sdk_sqs::Client, want: u64) -> u64 {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        q.source.poll_once(|e| a.handle_batch(e)).await.unwrap();
        if messages_on(sqs, &q.dlq_url).await >= want {
            break;
        }
    }
    messages_on(sqs, &q.dlq_url).await
}

#[tokio::test]
async fn forged_replayed_and_foreign_messages_change_nothing_and_land_in_the_dlq() {
    let victim = TestApp::new().await;
    victim.put_portal("main", true).await.ok(200);
    let ids = contacts(&victim, "v", 3, true).await;
    let attacker = TestApp::new().await;
    attacker.put_portal("main", true).await.ok(200);
    let secret = register(&attacker, "crm", "attacker's CRM").await;
    let victims_own = register(&victim, "erp", "victim's ERP").await;
    let job = unique("steal");
    let body_for = |tenant: Option<&str>| {
        let mut b = json!({"version": 1, "job_id": job, "method": "link", "contact_ids": ids});
        if let Some(t) = tenant {
            b["tenant_id"] = json!(t);
        }
        b.to_string()
    };
    let named = body_for(Some(&victim.tenant));
    let plain = body_for(None);
    let crm = integration("crm");
    let mut stale = proof(secret.as_bytes(), &victim.tenant, &crm, &plain);
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let tenant_v = TenantId::parse(&victim.tenant).unwrap();
    for (name, value) in stale.iter_mut() {
        if *name == queue_proof::TIMESTAMP_ATTRIBUTE {
            *value = old.clone();
        }
        if *name == queue_proof::SIGNATURE_ATTRIBUTE {
            // A genuine signature by the victim's own integration, an hour old: a replay.
            *value = queue_proof::signature(victims_own.as_bytes(), old.parse().unwrap(), &tenant_v, &integration("erp"), &plain);
        }
    }
    stale.retain(|(n, _)| *n != queue_proof::INTEGRATION_ATTRIBUTE);
    stale.push((queue_proof::INTEGRATION_ATTRIBUTE, "erp".into()));
    let attacks: Vec<(&str, String, Vec<(&'static str, String)>)> = vec![
        // The old way: a body that names the victim, no proof at all.
        ("unsigned", named.clone(), vec![]),
        // Signed by the attacker's integration for the attacker, naming the victim in the body.
        ("body-names-victim", named.clone(), proof(secret.as_bytes(), &attacker.tenant, &crm, &named)),
        // The attacker's key, claiming the victim's tenant (the victim has no integration "crm").
        ("claims-victim", plain.clone(), proof(secret.as_bytes(), &victim.tenant, &crm, &plain)),
        // The victim's integration, with the attacker's key.
        ("wrong-key", plain.clone(), proof(secret.as_bytes(), &victim.tenant, &integration("erp"), &plain)),
        // Posing as the service itself with a key that is not the service's.
        ("as-service", plain.clone(), proof(secret.as_bytes(), &victim.tenant, &Signer::Service, &plain)),
        ("replayed", plain.clone(), stale),
    ];
    let endpoints = Endpoints::from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let q = queue_with_dlq(&sqs, "forged", 1, 2).await;
    let entries = attacks.iter().map(|(id, body, attrs)| queue_entry(id, body, attrs)).collect();
    sqs.send_message_batch().queue_url(&q.url).set_entries(Some(entries)).send().await.unwrap();
    let a = activator().await;
    let requests = a.app.mail_queue.requests_sent();
    assert_eq!(poll_into_dlq(&a, &q, &sqs, attacks.len() as u64).await, attacks.len() as u64, "every forged message reaches the DLQ");
    assert_eq!(messages_on(&sqs, &q.url).await, 0);
    assert_eq!(a.app.mail_queue.requests_sent(), requests, "no email job was queued");
    for id in &ids {
        assert_eq!(state_on_main(&victim.status(id).await.ok(200).clone()), "none", "{id} untouched");
        assert_eq!(victim.emails(id).await.body["items"], json!([]));
    }
    victim.get(&format!("/v1/jobs/{job}")).await.problem(404);
    attacker.get(&format!("/v1/jobs/{job}")).await.problem(404);
    // The victim's own integration, signing now, is believed.
    let good = proof(victims_own.as_bytes(), &victim.tenant, &integration("erp"), &plain);
    let r = a.handle_batch(activation_event("good-1", &plain, 1, &good)).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
    assert_eq!(state_on_main(&victim.status(&ids[0]).await.ok(200).clone()), "pending");
    // Deleted, its messages are refused from then on.
    assert_eq!(victim.call(Method::DELETE, "/v1/integrations/erp", ADMIN, None).await.status, 204);
    let again = proof(victims_own.as_bytes(), &victim.tenant, &integration("erp"), &plain);
    assert_eq!(a.handle_batch(activation_event("after-delete", &plain, 1, &again)).await.batch_item_failures.len(), 1);
}

/// One contact's activation, as integration `crm` of `app`'s tenant sends it, signed with `key`.
fn crm_message(app: &TestApp, key: &str, contact: &str) -> SqsEvent {
    let body = json!({"version": 1, "job_id": unique("crm"), "method": "code", "send_email": false, "contact_ids": [contact]}).to_string();
    activation_event(&unique("m"), &body, 1, &proof(key.as_bytes(), &app.tenant, &integration("crm"), &body))
}

#[tokio::test]
async fn a_rotated_secret_keeps_verifying_until_the_next_rotation() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "rot", 3, true).await;
    let first = register(&app, "crm", "CRM").await;
    let rotate = || app.call(Method::PUT, "/v1/integrations/crm", ADMIN, Some(json!({"name": "CRM", "rotate_secret": true})));
    let second = rotate().await.ok(200)["secret"].as_str().unwrap().to_owned();
    let a = activator().await;
    let send = |key: &str, contact: &str| crm_message(&app, key, contact);
    assert!(a.handle_batch(send(&first, &ids[0])).await.batch_item_failures.is_empty(), "the previous secret, in flight");
    assert!(a.handle_batch(send(&second, &ids[1])).await.batch_item_failures.is_empty(), "the current secret");
    rotate().await.ok(200);
    a.app.secrets.forget(&a.app.integration_secret_name(&TenantId::parse(&app.tenant).unwrap(), &IntegrationId::parse("crm").unwrap()));
    assert_eq!(a.handle_batch(send(&first, &ids[2])).await.batch_item_failures.len(), 1, "two rotations ago");
    assert_eq!(state_on_main(&app.status(&ids[2]).await.ok(200).clone()), "none");
}

/// A leaked secret: rotating with `"revoke_previous": true` ends it at once,
/// also in an activator that read the secrets before the rotation (its cache).
#[tokio::test]
async fn a_rotation_that_revokes_the_previous_secret_ends_it_at_once_even_where_it_is_cached() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let ids = contacts(&app, "rev", 3, true).await;
    let leaked = register(&app, "crm", "CRM").await;
    let a = activator().await;
    let send = |key: &str, contact: &str| crm_message(&app, key, contact);
    // The activator reads (and caches) the secret as it is before the rotation.
    assert!(a.handle_batch(send(&leaked, &ids[0])).await.batch_item_failures.is_empty(), "the registered secret");
    let rotated = app.call(Method::PUT, "/v1/integrations/crm", ADMIN, Some(json!({"name": "CRM", "rotate_secret": true, "revoke_previous": true}))).await;
    let body = rotated.ok(200).clone();
    assert_eq!(body["previous_secret"], "revoked");
    let fresh = body["secret"].as_str().unwrap().to_owned();
    assert_eq!(a.handle_batch(send(&leaked, &ids[1])).await.batch_item_failures.len(), 1, "the leaked secret verifies nothing, cached or not");
    assert_eq!(state_on_main(&app.status(&ids[1]).await.ok(200).clone()), "none");
    assert!(a.handle_batch(send(&fresh, &ids[2])).await.batch_item_failures.is_empty(), "the new secret");
    // Without it, a rotation keeps the previous secret (the default, for messages in flight).
    let shown = app.call(Method::GET, "/v1/integrations/crm", ADMIN, None).await.ok(200).clone();
    assert_eq!(shown["previous_secret"], "revoked");
    let kept = app.call(Method::PUT, "/v1/integrations/crm", ADMIN, Some(json!({"name": "CRM", "rotate_secret": true}))).await.ok(200).clone();
    assert_eq!(kept["previous_secret"], "verifies");
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

/// The service's own message, signed now for the tenant its body names.
fn sqs_event(message_id: &str, body: Value, receive_count: u32) -> SqsEvent {
    let tenant = body["tenant_id"].as_str().unwrap_or("t").to_owned();
    service_activation_event(message_id, &tenant, &body.to_string(), receive_count)
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

#[tokio::test]
async fn the_list_of_groups_is_the_tenant_s_own_and_pages_with_its_own_cursor() {
    let (a, b) = (TestApp::new().await, TestApp::new().await);
    for (id, name) in [("g1", "Diabetes follow-up"), ("g2", "Flu clinic"), ("g3", "New patients")] {
        a.call(Method::PUT, &format!("/v1/groups/{id}"), WRITE, Some(json!({"name": name, "contact_ids": []}))).await.ok(200);
    }
    b.call(Method::PUT, "/v1/groups/g9", WRITE, Some(json!({"name": "B's only", "contact_ids": []}))).await.ok(200);
    let first = a.get("/v1/groups?limit=2").await.ok(200).clone();
    let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Diabetes follow-up", "Flu clinic"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = a.get(&format!("/v1/groups?limit=2&cursor={cursor}")).await.ok(200).clone();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["items"][0]["name"], "New patients");
    // Tenant B sees only its own, and A's cursor means nothing to it.
    let theirs = b.get("/v1/groups").await.ok(200).clone();
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(1), "{theirs}");
    assert_eq!(theirs["items"][0]["group_id"], "g9");
    b.get(&format!("/v1/groups?cursor={cursor}")).await.problem(422);
}
