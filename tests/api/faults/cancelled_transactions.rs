//! A cancelled transaction (ConditionalCheckFailed, TransactionConflict) on
//! every transaction path reachable from HTTP, in the activator and the
//! scheduler: a clean 4xx problem+json (or a clean retry/skip), nothing
//! partial written, nothing queued, counters unchanged.

use super::fault_proxy::{Fault, FaultProxy, Rule};
use super::harness::*;
use crate::helpers::*;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Utc;
use portal::app::App;
use portal::workers::activator::Activator;
use portal::domain::{JobId, TenantId};
use portal::http::HttpFunction;
use portal::queue::{ActivationQueue, MailQueue};
use portal::workers::scheduler::Scheduler;
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A tenant whose handlers' DynamoDB goes through a fault proxy; email jobs
/// and activation batches go to queues of the test's own.
struct TxWorld {
    proxy: FaultProxy,
    tenant: String,
    table: String,
    direct: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    mail_url: String,
    activation_url: String,
    apps: HashMap<&'static str, App>,
}

impl TxWorld {
    async fn new() -> Self {
        let endpoints = Endpoints::from_env().await;
        let proxy = FaultProxy::start(&local::dynamodb_endpoint()).await;
        let proxied = Endpoints { dynamodb: quick_sdk(&proxy.endpoint()).await, moto: endpoints.moto.clone() };
        let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
        let mail_url = sqs.create_queue().queue_name(unique("txmail")).send().await.unwrap().queue_url.unwrap();
        let activation_url = sqs.create_queue().queue_name(unique("txact")).send().await.unwrap().queue_url.unwrap();
        let t = template();
        let mut apps = HashMap::new();
        for binary in ["admin", "contacts", "templates", "generate", "lifecycle", "claim", "activations", "activator", "scheduler"] {
            let mut a = local::http_app(&proxied, &t, binary).await.unwrap();
            a.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
            a.activation_queue = ActivationQueue::new(&endpoints.moto, &activation_url).signed_with(a.keys.clone());
            apps.insert(binary, a);
        }
        let table = local::table_name(&t).unwrap();
        let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
        Self { proxy, tenant: unique("tx"), table, direct, sqs, mail_url, activation_url, apps }
    }

    fn app(&self, binary: &str) -> &App {
        &self.apps[binary]
    }

    async fn call(&self, binary: &str, f: HttpFunction, e: ApiEvent) -> (u16, String, Value) {
        call_full(self.app(binary), f, &self.tenant, e).await
    }

    /// Confirms the newest claim confirmation of `contact` (read from its sealed copy).
    async fn confirm(&self, contact: &str) -> (u16, String, Value) {
        let resp = crate::helpers::confirm_in_process(self.app("claim"), &self.tenant, contact).await;
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (status, ct, crate::helpers::body(&resp))
    }

    fn contact_pk(&self, contact: &str) -> String {
        format!("T#{}#C#{contact}", self.tenant)
    }

    /// Every item of these partitions, read straight from DynamoDB Local.
    async fn snapshot(&self, pks: &[String]) -> Vec<Item> {
        partition_items(&self.direct, &self.table, pks).await
    }

    /// Calls `e` while every TransactWriteItems is cancelled with `fault`:
    /// asserts a clean `want` problem+json, that the injection fired, and
    /// that nothing in `pks` changed and nothing was queued.
    async fn refused(&self, what: &str, binary: &str, f: HttpFunction, e: ApiEvent, fault: Fault, want: u16, pks: &[String]) -> Value {
        let before = self.snapshot(pks).await;
        let queued_before = (messages_on(&self.sqs, &self.mail_url).await, messages_on(&self.sqs, &self.activation_url).await);
        let hits = self.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(fault));
        let (status, content_type, body) = self.call(binary, f, e).await;
        self.proxy.clear();
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(body["status"], want, "{what}: {body}");
        for field in ["type", "title", "detail"] {
            assert!(body[field].is_string(), "{what}: problem lacks {field}: {body}");
        }
        assert!(hits.get() >= 1, "{what}: no transaction was attempted, so nothing was injected");
        assert_eq!(self.snapshot(pks).await, before, "{what}: a refused transaction left something behind");
        let queued_after = (messages_on(&self.sqs, &self.mail_url).await, messages_on(&self.sqs, &self.activation_url).await);
        assert_eq!(queued_after, queued_before, "{what}: something was queued");
        body
    }

    async fn job(&self, job: &str) -> portal::store::items::JobItem {
        let store = &self.app("admin").store;
        store.get_job(&TenantId::parse(&self.tenant).unwrap(), &JobId::parse(job).unwrap()).await.unwrap().expect("the job")
    }
}

/// Generate (with and without email), activate, resend, deactivate, claim,
/// template PUT and group PUT, each under a cancelled transaction.
#[tokio::test]
async fn a_cancelled_transaction_on_each_http_path_is_a_clean_4xx_and_writes_nothing() {
    let w = TxWorld::new().await;
    let ccf = Fault::conditional_check_failed(0);
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for id in &ids {
        ok("contact", &w.call("contacts", HttpFunction::Contacts, put_contact_event(id, Some(&format!("{id}-{}@example.com", w.tenant)))).await, 200);
    }
    let (fresh, pending_link, active, pending_code) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    // Set-up before any fault: a pending link, an active contact, a pending code.
    ok("activate", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "activate")).await, 202);
    let code = ok("generate", &w.call("generate", HttpFunction::Generate, generate_event(active, json!({}))).await, 201)["code"].clone();
    let ip = random_loopback();
    ok("claim", &w.call("claim", HttpFunction::Claim, claim_event(json!({"code": code, "email": format!("{active}@example.com")}), &ip)).await, 202);
    ok("confirm", &w.confirm(active).await, 201);
    let pending = ok("generate", &w.call("generate", HttpFunction::Generate, generate_event(pending_code, json!({}))).await, 201);
    drain_bodies(&w.sqs, &w.mail_url).await;

    let pk = |c: &str| vec![w.contact_pk(c)];
    let gen = |c: &str, b: Value| generate_event(c, b);
    let body = w.refused("generate", "generate", HttpFunction::Generate, gen(fresh, json!({})), ccf.clone(), 409, &pk(fresh)).await;
    assert_eq!(body["type"], "/problems/conflict");
    w.refused("generate & email", "generate", HttpFunction::Generate, gen(fresh, json!({"send_email": true})), ccf.clone(), 409, &pk(fresh)).await;
    w.refused("generate for a pending contact", "generate", HttpFunction::Generate, gen(pending_code, json!({"send_email": true})), ccf.clone(), 409, &pk(pending_code)).await;
    w.refused("activate", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(fresh, "activate"), ccf.clone(), 409, &pk(fresh)).await;
    w.refused("resend", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "resend"), ccf.clone(), 409, &pk(pending_link)).await;
    w.refused("deactivate", "lifecycle", HttpFunction::Lifecycle, lifecycle_event(active, "deactivate"), ccf.clone(), 409, &pk(active)).await;
    let claim_body = json!({"code": pending["code"], "email": format!("{pending_code}@example.com")});
    let ip = random_loopback();
    let body = w
        .refused("claim", "claim", HttpFunction::Claim, claim_event(claim_body.clone(), &ip), ccf.clone(), 400, &pk(pending_code))
        .await;
    assert_eq!(body["type"], "/problems/claim-rejected");

    let template_event = staff("PUT", "/v1/portals/{portal_id}/templates/{kind}")
        .param("portal_id", "main")
        .param("kind", "pickup_code")
        .json(&json!({"subject": "Your code", "text": "Code {{ code }}", "html": "<p>Code {{ code }}</p>"}));
    let tenant_pk = vec![format!("T#{}", w.tenant)];
    // The audit record's put (item 1) is the template save's only real condition; a concurrent save conflicts.
    w.refused("template PUT", "templates", HttpFunction::Templates, template_event.clone(), Fault::conditional_check_failed(1), 409, &tenant_pk).await;
    w.refused("template PUT (conflict)", "templates", HttpFunction::Templates, template_event.clone(), Fault::transaction_conflict(0), 409, &tenant_pk).await;
    let group_event = staff("PUT", "/v1/groups/{group_id}")
        .param("group_id", "vip")
        .json(&json!({"name": "VIP", "contact_ids": [fresh, pending_link]}));
    let group_pk = vec![format!("T#{}#G#vip", w.tenant)];
    w.refused("group PUT", "activations", HttpFunction::Activations, group_event.clone(), ccf.clone(), 409, &group_pk).await;
    w.refused("group PUT (conflict)", "activations", HttpFunction::Activations, group_event.clone(), Fault::transaction_conflict(0), 409, &group_pk).await;

    // Portal PUT, contact PUT, job submission (selection or group) issue no
    // transaction: under the same injection they answer as usual (their
    // transactions, the activator's, are tested below).
    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(ccf.clone()));
    ok("portal PUT", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    ok("contact PUT", &w.call("contacts", HttpFunction::Contacts, put_contact_event(fresh, Some("fresh@example.com"))).await, 200);
    let submit = staff("POST", "/v1/activations").json(&json!({"contact_ids": [fresh], "method": "code"}));
    ok("activations submit", &w.call("activations", HttpFunction::Activations, submit).await, 202);
    assert_eq!(hits.get(), 0, "these paths issue no TransactWriteItems");
    w.proxy.clear();

    // Nothing was used up: once DynamoDB lets them through, the same requests work.
    ok("claim after", &w.call("claim", HttpFunction::Claim, claim_event(claim_body, &random_loopback())).await, 202);
    ok("confirm after", &w.confirm(pending_code).await, 201);
    ok("template after", &w.call("templates", HttpFunction::Templates, template_event).await, 200);
    ok("group after", &w.call("activations", HttpFunction::Activations, group_event).await, 200);
    ok("resend after", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(pending_link, "resend")).await, 202);
    ok("deactivate after", &w.call("lifecycle", HttpFunction::Lifecycle, lifecycle_event(active, "deactivate")).await, 200);
}

/// Marks of the transactions the activator writes: a contact's invitation
/// (it puts a code lookup, `CODE#…`) and a batch's counters (`B#…`).
const INVITATION_TX: &str = r#"{"S":"CODE#"#;
const COUNTING_TX: &str = r#"{"S":"B#"#;

/// The activator: every contact's transaction cancelled → the message is
/// retried and nothing is written; on its last receive the contacts count as
/// failed and the job is done. A cancellation that passes (a contact's first
/// try; the counter update meeting a concurrent batch) is retried inside.
#[tokio::test]
async fn the_activator_under_cancelled_transactions_writes_nothing_and_still_finishes() {
    let mut w = TxWorld::new().await;
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<String> = (0..3).map(|i| format!("b{i}")).collect();
    for id in &ids {
        ok("contact", &w.call("contacts", HttpFunction::Contacts, put_contact_event(id, Some(&format!("{id}@example.com")))).await, 200);
    }
    let pks: Vec<String> = ids.iter().map(|c| w.contact_pk(c)).collect();
    let activator = Activator { app: w.apps.remove("activator").unwrap(), max_receive_count: 3 };
    let source = EventSource::new(&w.sqs, &w.activation_url).await.unwrap().batch_size(1);
    let submit = |ids: &[String]| staff("POST", "/v1/activations").json(&json!({"contact_ids": ids, "method": "code", "send_email": true}));
    let take_message = || async {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(source.receive().await.unwrap());
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1, "one batch for three contacts");
        got.remove(0)
    };
    // The message as the n-th receive hands it over.
    let delivery = |m: &aws_sdk_sqs::types::Message, n: u32| {
        let mut m = m.clone();
        let mut attrs = m.attributes.clone().unwrap_or_default();
        attrs.insert(MessageSystemAttributeName::ApproximateReceiveCount, n.to_string());
        m.attributes = Some(attrs);
        source.event(&[m])
    };

    let job = ok("submit", &w.call("activations", HttpFunction::Activations, submit(&ids[..])).await, 202)["job_id"].as_str().unwrap().to_owned();
    let message = take_message().await;
    let before = w.snapshot(&pks).await;
    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(INVITATION_TX).answer(Fault::conditional_check_failed(0)));
    for n in 1..3 {
        let r = activator.handle_batch(delivery(&message, n)).await;
        assert_eq!(r.batch_item_failures.len(), 1, "receive {n}: the message is left for redelivery");
        assert_eq!(w.snapshot(&pks).await, before, "receive {n}: nothing written for any contact");
        assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0, "receive {n}: no email queued");
        let j = w.job(&job).await;
        assert_eq!((j.activated, j.failed, j.skipped_no_email, j.skipped_already_active), (0, 0, 0, 0), "receive {n}: counters unchanged");
        assert_eq!(j.state, portal::domain::job::JobState::Queued);
    }
    assert!(hits.get() >= 2 * ids.len(), "every contact's transaction was refused: {}", hits.get());
    let r = activator.handle_batch(delivery(&message, 3)).await;
    assert!(r.batch_item_failures.is_empty(), "the last receive finishes the batch: {r:?}");
    w.proxy.clear();
    assert_eq!(w.snapshot(&pks).await, before, "still nothing written for any contact");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0);
    let j = w.job(&job).await;
    assert_eq!((j.state, j.activated, j.failed, j.total), (portal::domain::job::JobState::Done, 0, 3, 3), "every contact accounted for, as failed");

    // Transient cancellations: a contact's first try, and the job counters
    // meeting another batch's update. Both are retried inside the batch.
    let job = ok("submit", &w.call("activations", HttpFunction::Activations, submit(&ids[..])).await, 202)["job_id"].as_str().unwrap().to_owned();
    let message = take_message().await;
    let first_try = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(INVITATION_TX).times(1).answer(Fault::conditional_check_failed(0)));
    let counting = w.proxy.inject(Rule::dynamodb("TransactWriteItems").body_contains(COUNTING_TX).times(1).answer(Fault::transaction_conflict(1)));
    let r = activator.handle_batch(delivery(&message, 1)).await;
    w.proxy.clear();
    assert!(r.batch_item_failures.is_empty(), "retried inside the batch, not redelivered: {r:?}");
    assert_eq!((first_try.get(), counting.get()), (1, 1), "both injections fired");
    let j = w.job(&job).await;
    assert_eq!((j.state, j.activated, j.failed), (portal::domain::job::JobState::Done, 3, 0));
    for pk in &pks {
        let items = w.snapshot(std::slice::from_ref(pk)).await;
        let sks: Vec<&str> = items.iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str)).collect();
        assert_eq!(sks.iter().filter(|s| s.starts_with("CONTACT#CODE#")).count(), 1, "{pk}: one code");
        assert_eq!(sks.iter().filter(|s| s.starts_with("EMAIL#")).count(), 1, "{pk}: one email");
    }
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 3, "one email job per contact");
}

/// The scheduler's steps (expiry, auto-generation, auto-email) under
/// cancelled transactions: the run completes and changes nothing; the next
/// run does everything.
#[tokio::test]
async fn the_scheduler_under_cancelled_transactions_changes_nothing_and_the_next_run_does_it() {
    let mut w = TxWorld::new().await;
    let automated = json!({"auto_generate": true, "auto_email": true, "code_ttl_hours": 24});
    ok("portal", &w.call("admin", HttpFunction::Admin, put_portal_event("main", automated)).await, 200);
    for id in ["s0", "s1"] {
        ok("contact", &w.call("contacts", HttpFunction::Contacts, put_contact_event(id, Some(&format!("{id}@example.com")))).await, 200);
    }
    ok("generate", &w.call("generate", HttpFunction::Generate, generate_event("s1", json!({}))).await, 201);
    let mut app = w.apps.remove("scheduler").unwrap();
    // A day and an hour on: s1's code has expired, s0 has never had one.
    let _clock = Clock::install(&mut app, Utc::now() + chrono::Duration::hours(25));
    let scheduler = Scheduler { app };
    let tenant = TenantId::parse(&w.tenant).unwrap();
    let run = || scheduler.run_for(std::slice::from_ref(&tenant), Instant::now() + Duration::from_secs(120));
    let pks = vec![w.contact_pk("s0"), w.contact_pk("s1")];
    let before = w.snapshot(&pks).await;

    let hits = w.proxy.inject(Rule::dynamodb("TransactWriteItems").answer(Fault::conditional_check_failed(0)));
    let s = run().await.expect("a run under cancelled transactions still completes");
    w.proxy.clear();
    assert!(hits.get() >= 3, "expiry and generation were attempted: {}", hits.get());
    assert_eq!((s.expired, s.generated, s.emailed, s.reminded, s.complete), (0, 0, 0, 0, true), "{s:?}");
    assert_eq!(w.snapshot(&pks).await, before, "nothing changed");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 0, "nothing queued");

    let s = run().await.unwrap();
    assert_eq!((s.expired, s.generated, s.emailed, s.complete), (1, 2, 2, true), "{s:?}");
    assert_eq!(messages_on(&w.sqs, &w.mail_url).await, 2);
}
