//! Delivery events (issue 17): SES's events for an email, as AWS delivers
//! them — published to the template's `DeliveryEventTopic` in moto's SNS,
//! which wraps each in an SNS notification on the real `DeliveryEventQueue`,
//! which the local gateway's poller hands to the `deliveries` worker. The
//! events are AWS's documented examples (`events/deliveries-*.json`), aimed
//! at an email this test really sent.
//!
//! moto's SES accepts the configuration set and publishes no events itself,
//! so the set and the tags on every send are checked by capturing the
//! mailer's request (the fault proxy), and the events are fed in here.

use crate::faults::fault_proxy::FaultProxy;
use crate::faults::harness::{MailWorld, MAIL_VISIBILITY};
use crate::helpers::*;
use portal_local::local;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The SES event of `events/deliveries-{name}.json`, about the email sent as `message_id`.
pub(crate) fn ses_event(name: &str, t: &TestApp, contact: &str, document: &str, message_id: &str, to: &str) -> String {
    let sqs = event(&format!("deliveries-{name}.json"));
    let note: Value = serde_json::from_str(sqs["Records"][0]["body"].as_str().unwrap()).unwrap();
    let mut e: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
    e["mail"]["messageId"] = json!(message_id);
    e["mail"]["destination"] = json!([to]);
    e["mail"]["tags"]["tenant_id"] = json!([t.tenant]);
    e["mail"]["tags"]["contact_id"] = json!([contact]);
    e["mail"]["tags"]["document_id"] = json!([document]);
    for (object, list) in [("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients"), ("deliveryDelay", "delayedRecipients")] {
        if let Some(r) = e.get_mut(object).and_then(|o| o.get_mut(list)).and_then(|l| l.get_mut(0)) {
            r["emailAddress"] = json!(to);
        }
    }
    if let Some(d) = e.get_mut("delivery") {
        d["recipients"] = json!([to]);
    }
    e.to_string()
}

/// Publishes an SES event to the delivery event topic, as SES does.
pub(crate) async fn publish(message: &str) {
    let endpoints = local::Endpoints::from_env().await;
    let sns = aws_sdk_sns::Client::new(&endpoints.moto);
    let arn = format!("arn:aws:sns:{}:{}:DeliveryEventTopic", local::REGION, local::ACCOUNT_ID);
    sns.publish().topic_arn(arn).message(message).send().await.expect("moto's SNS takes the event");
}

/// The contact's newest email log entry, once it is sent: (document id, SES message id, entry).
pub(crate) async fn sent_email(t: &TestApp, contact: &str) -> (String, String, Value) {
    let entry = eventually(WAIT, || async {
        let log = t.emails(contact).await;
        let first = log.body["items"][0].clone();
        (first["status"] == "sent").then_some(first)
    })
    .await;
    let Some(entry) = entry else { panic!("no email sent to {contact}: {:?}", t.emails(contact).await) };
    (entry["document_id"].as_str().unwrap().to_owned(), entry["ses_message_id"].as_str().unwrap().to_owned(), entry)
}

/// The log entry `document`, once `check` holds for it.
async fn entry_when(t: &TestApp, contact: &str, document: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let found = eventually(WAIT, || async {
        let log = t.emails(contact).await;
        log.body["items"].as_array().into_iter().flatten().find(|e| e["document_id"] == document && check(e)).cloned()
    })
    .await;
    match found {
        Some(e) => e,
        None => panic!("{what}: never so; the log is {:?}", t.emails(contact).await),
    }
}

/// Until the delivery event queue is empty (nothing visible or in flight): what was published is handled.
async fn queue_settled() {
    let endpoints = local::Endpoints::from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let url = local::queue_url(&endpoints, "DeliveryEventQueue").await.unwrap();
    let settled = eventually(WAIT, || async {
        let a = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?
            .attributes?;
        let n = |k| a.get(&k).and_then(|v: &String| v.parse::<u64>().ok()).unwrap_or(1);
        (n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages) == 0
            && n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0)
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "the delivery event queue never emptied");
}

#[tokio::test]
async fn a_hard_bounce_marks_the_email_suppresses_the_address_and_refuses_the_next_send_until_the_email_changes() {
    let t = TestApp::new().await;
    let email = format!("{}@example.org", unique("bounce"));
    let contact = t.with_contact(Some(&email)).await;
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let (document, message_id, entry) = sent_email(&t, &contact).await;
    assert_eq!(entry["delivery_status"], Value::Null, "no event yet: {entry}");
    assert_eq!(entry["delivery_events"], json!([]));

    publish(&ses_event("bounce", &t, &contact, &document, &message_id, &email)).await;
    let bounced = entry_when(&t, &contact, &document, "bounced", |e| e["delivery_status"] == "bounced").await;
    assert_eq!(bounced["status"], "sent", "SES took it; the bounce is what came after: {bounced}");
    let events = bounced["delivery_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{bounced}");
    assert_eq!(events[0]["bounce"], "hard");
    assert_eq!(events[0]["at"], "2026-12-03T10:01:02.669Z");
    assert!(events[0]["diagnostic"].as_str().unwrap().contains("550 5.1.1 user unknown"), "{bounced}");
    // The document says so too.
    let doc = t.get(&format!("/v1/emails/{document}")).await;
    assert_eq!(doc.ok(200)["delivery_status"], "bounced");

    // The contact shows it: its record, the portlet, the listing and its filter.
    assert_eq!(t.get(&format!("/v1/contacts/{contact}")).await.ok(200)["email_problem"], "bounced");
    assert_eq!(t.status(&contact).await.ok(200)["email_problem"], "bounced");
    let other = t.with_contact(Some(&format!("{}@example.org", unique("fine")))).await;
    let problems = t.get("/v1/contacts?email_problem=any").await;
    let ids: Vec<&str> = problems.ok(200)["items"].as_array().unwrap().iter().map(|r| r["contact_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [contact.as_str()], "only the bounced contact: {problems:?}");
    let all = t.get("/v1/contacts").await;
    let row = |id: &str| all.body["items"].as_array().unwrap().iter().find(|r| r["contact_id"] == id).cloned().unwrap();
    assert_eq!((row(&contact)["email_problem"].clone(), row(&other)["email_problem"].clone()), (json!("bounced"), Value::Null));
    assert_eq!(t.get("/v1/contacts?email_problem=some").await.status.as_u16(), 422);

    // The next send is refused, clearly; a code without an email still issues.
    let refused = t.generate(&contact, json!({"send_email": true})).await;
    let detail = refused.problem(409);
    assert!(detail.contains("bounced") && detail.contains("Change the contact's email"), "{detail}");
    let resend = t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/resend"), WRITE, Some(json!({}))).await;
    assert!(resend.problem(409).contains("bounced"), "{resend:?}");
    t.generate(&contact, json!({"send_email": false})).await.ok(201);
    let before = ses_messages_to(&email).await.len();

    // A changed email sends again.
    let new_email = format!("{}@example.org", unique("newaddr"));
    t.put_contact(&contact, Some(&new_email)).await.ok(200);
    assert_eq!(t.status(&contact).await.ok(200)["email_problem"], Value::Null);
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let sent = eventually(WAIT, || async { (!ses_messages_to(&new_email).await.is_empty()).then_some(()) }).await;
    assert!(sent.is_some(), "the new address got its email");
    assert_eq!(ses_messages_to(&email).await.len(), before, "nothing more to the bounced address");

    // Back to the old address: refused again.
    t.put_contact(&contact, Some(&email)).await.ok(200);
    assert_eq!(t.status(&contact).await.ok(200)["email_problem"], "bounced");
    // Another contact of the tenant with that address: the list is the tenant's, by address, so
    // the mailer refuses to send there too.
    let twin = unique("twin");
    t.put_contact(&twin, Some(&email)).await.ok(200);
    t.generate(&twin, json!({"send_email": true})).await.ok(201);
    let failed = eventually(WAIT, || async {
        let first = t.emails(&twin).await.body["items"][0].clone();
        (first["status"] == "failed").then_some(first)
    })
    .await
    .unwrap_or(Value::Null);
    assert!(failed["failure_reason"].as_str().unwrap_or_default().contains("suppression list"), "the mailer refused it: {failed}");
    assert_eq!(ses_messages_to(&email).await.len(), before, "nothing more to the bounced address");
}

#[tokio::test]
async fn events_twice_and_out_of_order_keep_the_furthest_state_and_each_event_once() {
    let t = TestApp::new().await;
    let email = format!("{}@example.org", unique("order"));
    let contact = t.with_contact(Some(&email)).await;
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let (document, message_id, _) = sent_email(&t, &contact).await;
    let delivery = ses_event("delivery", &t, &contact, &document, &message_id, &email);
    publish(&delivery).await;
    entry_when(&t, &contact, &document, "delivered", |e| e["delivery_status"] == "delivered").await;

    // The same delivery again, and the delay that came before it, arriving after it.
    publish(&delivery).await;
    publish(&ses_event("delivery-delay", &t, &contact, &document, &message_id, &email)).await;
    let both = entry_when(&t, &contact, &document, "the delay kept", |e| e["delivery_events"].as_array().is_some_and(|a| a.len() == 2)).await;
    queue_settled().await;
    let entry = entry_when(&t, &contact, &document, "settled", |_| true).await;
    assert_eq!(entry, both, "nothing changed once every event was handled");
    assert_eq!(entry["delivery_status"], "delivered", "a late delay moves nothing back: {entry}");
    let statuses: Vec<&str> = entry["delivery_events"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["delivery_delayed", "delivered"], "each event once, in time order: {entry}");
    assert!(entry["delivery_events"][0]["diagnostic"].as_str().unwrap().contains("421 4.4.1"));
    assert_eq!(t.status(&contact).await.ok(200)["email_problem"], Value::Null, "a delay or a delivery suppresses nothing");

    // A complaint, later: the furthest state, and the address suppressed.
    publish(&ses_event("complaint", &t, &contact, &document, &message_id, &email)).await;
    entry_when(&t, &contact, &document, "complained", |e| e["delivery_status"] == "complained").await;
    assert_eq!(t.status(&contact).await.ok(200)["email_problem"], "complained");
    assert!(t.generate(&contact, json!({"send_email": true})).await.problem(409).contains("spam"));
}

/// Events that do not come from a send of ours change nothing: another message id for a real
/// email (a forgery, or another system's email on the topic), a real email named under another
/// tenant, an event without our tags.
#[tokio::test]
async fn an_event_for_an_email_we_did_not_send_changes_nothing() {
    let victim = TestApp::new().await;
    let email = format!("{}@example.org", unique("victim"));
    let contact = victim.with_contact(Some(&email)).await;
    victim.generate(&contact, json!({"send_email": true})).await.ok(201);
    let (document, message_id, before) = sent_email(&victim, &contact).await;

    publish(&ses_event("bounce", &victim, &contact, &document, "forged-message-id", &email)).await;
    let attacker = TestApp::new().await;
    publish(&ses_event("bounce", &attacker, &contact, &document, &message_id, &email)).await;
    let mut untagged: Value = serde_json::from_str(&ses_event("complaint", &victim, &contact, &document, &message_id, &email)).unwrap();
    untagged["mail"]["tags"].as_object_mut().unwrap().remove("tenant_id");
    publish(&untagged.to_string()).await;
    queue_settled().await;

    let after = entry_when(&victim, &contact, &document, "unchanged", |_| true).await;
    assert_eq!(after, before, "the entry is as sent");
    assert_eq!(victim.status(&contact).await.ok(200)["email_problem"], Value::Null);
    victim.generate(&contact, json!({"send_email": true})).await.ok(201);
}

#[tokio::test]
async fn bulk_activation_skips_suppressed_contacts_and_counts_them() {
    let t = TestApp::new().await;
    let email = format!("{}@example.org", unique("bulkb"));
    let bounced = t.with_contact(Some(&email)).await;
    t.generate(&bounced, json!({"send_email": true})).await.ok(201);
    let (document, message_id, _) = sent_email(&t, &bounced).await;
    publish(&ses_event("bounce", &t, &bounced, &document, &message_id, &email)).await;
    eventually(WAIT, || async { (t.status(&bounced).await.body["email_problem"] == "bounced").then_some(()) }).await.expect("suppressed");
    let fine = unique("bulkf");
    t.put_contact(&fine, Some(&format!("{fine}@example.org"))).await.ok(200);

    let job = t.call(Method::POST, "/v1/activations", WRITE, Some(json!({"contact_ids": [bounced, fine], "method": "link"}))).await;
    let job_id = job.ok(202)["job_id"].as_str().unwrap().to_owned();
    let done = eventually(WAIT, || async {
        let j = t.get(&format!("/v1/jobs/{job_id}")).await.body;
        (j["state"] == "done").then_some(j)
    })
    .await
    .expect("the job finishes");
    assert_eq!((done["activated"].as_u64(), done["skipped_suppressed"].as_u64()), (Some(1), Some(1)), "{done}");
}

/// Every send names the configuration set and carries the email's tags, which SES echoes in its
/// events: checked on the mailer's real request to SES (moto ignores both).
#[tokio::test]
async fn every_send_names_the_configuration_set_and_the_emails_tags() {
    let w = MailWorld::new("cfgset", MAIL_VISIBILITY).await;
    let proxy = FaultProxy::start(&local::moto_endpoint()).await;
    let mailer = w.mailer(&proxy).await;
    w.poll_until(&mailer, WAIT, || async { w.entry().await.status == portal::domain::EmailStatus::Sent }).await;
    let sends: Vec<Value> = proxy
        .seen()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v2/email/outbound-emails"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0]["ConfigurationSetName"], "MailConfigurationSet", "{}", sends[0]);
    let tags: std::collections::BTreeMap<String, String> = sends[0]["EmailTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["Name"].as_str().unwrap().to_owned(), t["Value"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(tags.get("tenant_id"), Some(&w.tenant));
    assert_eq!(tags.get("contact_id"), Some(&w.contact));
    assert_eq!(tags.get("document_id"), Some(&w.document_id));
}

/// What is not an SNS notification of an SES event is kept for the DLQ (a partial batch failure);
/// an event type the log does not track is let go. In process, on `events/` fixtures.
#[tokio::test]
async fn an_unreadable_message_is_left_for_the_dlq_and_an_untracked_event_let_go() {
    let endpoints = local::Endpoints::from_env().await;
    let deliveries = local::deliveries(&endpoints, &template()).await.unwrap();
    let mut batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event("deliveries-delivery.json")).unwrap();
    let mut garbage = batch.records[0].clone();
    garbage.message_id = Some("garbage".into());
    garbage.body = Some("{\"Type\":\"Notification\",\"Message\":\"not json\"}".into());
    let mut open = batch.records[0].clone();
    open.message_id = Some("open".into());
    let note = json!({"Type": "Notification", "Message": json!({"eventType": "Open", "mail": {"messageId": "m", "tags": {}}, "open": {}}).to_string()});
    open.body = Some(note.to_string());
    // The fixture itself names a tenant's email this stack never sent: let go, nothing written.
    batch.records.extend([garbage, open]);
    let response = deliveries.handle_batch(batch).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["garbage"]);
}
