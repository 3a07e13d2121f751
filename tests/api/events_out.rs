//! Events out (issue 17): every state change of a day in a contact's
//! portal life reaches the service's EventBridge bus once, each detail valid
//! against `events/schemas/portal-access-event.schema.json`. The path is the
//! real one: the table's change stream (DynamoDB Local) polled by the local
//! gateway as Lambda's event source mapping would, the publisher, moto's
//! EventBridge, and a rule of this test's own (a customer's subscription)
//! that sends the tenant's events to a queue of its own.

use crate::deliveries::{publish, sent_email, ses_event};
use crate::helpers::*;
use portal_local::local;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);

/// A customer's subscription: a rule on the bus matching `tenant`'s events, to a new queue.
async fn subscribe(tenant: &str) -> (aws_sdk_sqs::Client, String) {
    let endpoints = local::Endpoints::from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let name = unique("events");
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = format!("arn:aws:sqs:{}:{}:{name}", local::REGION, local::ACCOUNT_ID);
    let bus = local::function_env(&endpoints, &template(), "publisher").await.unwrap()["EVENT_BUS_NAME"].clone();
    let events = aws_sdk_eventbridge::Client::new(&endpoints.moto);
    let pattern = json!({"source": ["portal-access"], "detail": {"tenant_id": [tenant]}});
    events.put_rule().name(&name).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule(&name).event_bus_name(&bus).targets(target).send().await.unwrap();
    (sqs, url)
}

/// Every event on the queue so far (read and deleted).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, into: &mut Vec<Value>) {
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        for m in messages {
            into.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

/// Waits until the events seen include each of `types` (as many times as named), then a moment
/// more for any repeat, and answers everything seen.
async fn events_until(sqs: &aws_sdk_sqs::Client, url: &str, seen: &mut Vec<Value>, types: &[&str]) {
    let want = counts(types.iter().copied());
    let deadline = std::time::Instant::now() + WAIT;
    let mut found = false;
    while std::time::Instant::now() < deadline {
        drain(sqs, url, seen).await;
        let have = counts(seen.iter().map(|e| e["detail-type"].as_str().unwrap_or_default()));
        if want.iter().all(|(t, n)| have.get(t).copied().unwrap_or(0) >= *n) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let have: Vec<&str> = seen.iter().map(|e| e["detail-type"].as_str().unwrap_or_default()).collect();
    assert!(found, "waited for {types:?}; the bus delivered {have:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    drain(sqs, url, seen).await;
}

fn counts<'a>(types: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in types {
        *out.entry(t.to_owned()).or_insert(0) += 1;
    }
    out
}

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/schemas/portal-access-event.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

#[tokio::test]
async fn every_state_change_of_a_claims_day_is_published_once_with_a_schema_valid_detail() {
    let t = TestApp::new().await;
    let (sqs, queue) = subscribe(&t.tenant).await;
    let mut seen = Vec::new();

    // Issued and emailed: an activation link.
    let (contact, email, link) = t.activated_link("Riverside Clinic").await;
    events_until(&sqs, &queue, &mut seen, &["invitation.issued", "invitation.emailed"]).await;
    // Delivered, as SES reports it.
    let (document, message_id, _) = sent_email(&t, &contact).await;
    publish(&ses_event("delivery", &t, &contact, &document, &message_id, &email)).await;
    events_until(&sqs, &queue, &mut seen, &["email.delivered"]).await;
    // Claimed, for its own address: binds at once.
    let token: String = link.split("token=").nth(1).unwrap().chars().take(43).collect();
    t.claim(json!({"token": token, "email": email})).await.ok(201);
    events_until(&sqs, &queue, &mut seen, &["invitation.claimed"]).await;
    // Deactivated, with its notice emailed.
    t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/deactivate"), WRITE, Some(json!({}))).await.ok(200);
    events_until(&sqs, &queue, &mut seen, &["contact.deactivated", "email.sent"]).await;
    // A bulk job of one: a code issued (not emailed) and the job done.
    let other = unique("bulk");
    t.put_contact(&other, Some(&format!("{other}@example.org"))).await.ok(200);
    let job = t.call(Method::POST, "/v1/activations", WRITE, Some(json!({"contact_ids": [other], "method": "code", "send_email": false}))).await;
    let job_id = job.ok(202)["job_id"].as_str().unwrap().to_owned();
    events_until(&sqs, &queue, &mut seen, &["invitation.issued", "invitation.issued", "bulk_job.done"]).await;

    // Each change once: exactly these, each event id once.
    let types = counts(seen.iter().map(|e| e["detail-type"].as_str().unwrap()));
    let expected = counts(
        ["invitation.issued", "invitation.emailed", "email.delivered", "invitation.claimed", "contact.deactivated", "email.sent", "invitation.issued", "bulk_job.done"]
            .into_iter(),
    );
    assert_eq!(types, expected, "{seen:#?}");
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|e| e["detail"]["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "every event id once");

    // Every detail as documented, and as EventBridge carries it.
    let validator = schema();
    for e in &seen {
        assert_eq!(e["source"], "portal-access");
        assert_eq!(e["detail-type"], e["detail"]["type"]);
        let errors: Vec<String> = validator.iter_errors(&e["detail"]).map(|x| format!("{}: {x}", x.instance_path().as_str())).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", e["detail"]);
        let text = e["detail"].to_string();
        assert!(!text.contains(&email) && !text.contains(&token), "no address or token in an event: {text}");
    }
    let by_type = |kind: &str| seen.iter().find(|e| e["detail-type"] == kind).map(|e| e["detail"].clone()).unwrap();
    assert_eq!(by_type("invitation.claimed")["contact_id"], contact.as_str());
    assert_eq!(by_type("invitation.claimed")["method"], "link");
    assert_eq!(by_type("email.delivered")["document_id"], document.as_str());
    assert_eq!(by_type("email.sent")["email_kind"], "deactivation");
    assert_eq!(by_type("bulk_job.done")["job_id"], job_id.as_str());
    assert_eq!(by_type("bulk_job.done")["counts"]["activated"], 1);
}

/// The schema refuses what it should: a test of the test's yardstick.
#[test]
fn the_schema_refuses_an_event_without_its_fields_or_with_a_secret() {
    let v = schema();
    let ok = json!({"event_id": "e1", "type": "invitation.claimed", "tenant_id": "t1", "occurred_at": "2026-12-03T10:00:00.000Z",
        "contact_id": "c1", "portal_id": "main", "method": "link", "expires_at": "2026-12-10T10:00:00.000Z"});
    assert!(v.is_valid(&ok));
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("contact_id");
    assert!(!v.is_valid(&missing));
    let mut secret = ok.clone();
    secret["code"] = json!("ABCD-1234");
    assert!(!v.is_valid(&secret), "no field beyond the documented ones");
    let mut unknown = ok;
    unknown["type"] = json!("invitation.teleported");
    assert!(!v.is_valid(&unknown));
}

/// The bus down: the batch reports its first record as failed (so the stream keeps it and Lambda
/// retries from there) and nothing is lost; once the bus is back, the same change is published,
/// once, under the same event id. In process, on `events/publisher.json`, the bus behind a proxy.
#[tokio::test]
async fn a_change_the_bus_did_not_take_is_retried_and_published_once() {
    use crate::faults::fault_proxy::{Fault, FaultProxy, Rule};
    let tenant = unique("busdown");
    let (sqs, queue) = subscribe(&tenant).await;
    let mut batch = event("publisher.json");
    let image = &mut batch["Records"][0]["dynamodb"];
    let pk = format!("T#{tenant}#C#chart-1001");
    image["Keys"]["pk"]["S"] = json!(pk);
    image["NewImage"]["pk"]["S"] = json!(pk);
    let batch: aws_lambda_events::dynamodb::Event = serde_json::from_value(batch).unwrap();
    let sequence = batch.records[0].change.sequence_number.clone();

    let endpoints = local::Endpoints::from_env().await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let hits = proxy.inject(Rule::target("AWSEvents.PutEvents").answer(Fault::ses_unavailable(500)));
    let mut publisher = local::publisher(&endpoints, &template()).await.unwrap();
    let bus = local::function_env(&endpoints, &template(), "publisher").await.unwrap()["EVENT_BUS_NAME"].clone();
    publisher.bus = portal::bus::Bus::new(&crate::faults::harness::quick_sdk(&proxy.endpoint()).await, bus);

    let refused = publisher.handle_batch(batch.clone()).await;
    assert!(hits.get() > 0, "the bus was asked");
    let failed: Vec<Option<String>> = refused.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, [sequence], "the record the bus did not take is reported, so the stream keeps it");
    let mut seen = Vec::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drain(&sqs, &queue, &mut seen).await;
    assert!(seen.is_empty(), "nothing published: {seen:?}");

    proxy.clear();
    let taken = publisher.handle_batch(batch).await;
    assert!(taken.batch_item_failures.is_empty());
    events_until(&sqs, &queue, &mut seen, &["invitation.issued"]).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["detail"]["event_id"], "c4ca4238a0b923820dcc509a6f75849b", "the stream record's id, stable across retries");
}
