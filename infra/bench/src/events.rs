//! The events-out benchmark (issue 17): a day in the portal life of N
//! contacts, through the real handlers and workers in process, with the
//! table's change stream read as Lambda's event source mapping reads it and
//! handed to the real publisher, which puts the events on moto's EventBridge;
//! a rule of this run's own (a customer's subscription) sends the tenant's
//! events to a queue, read back at the end.
//!
//! The day: activate (a link, emailed) → the mailer sends it → SES reports it
//! delivered → the person claims it → staff deactivate → the notice is sent.
//! Each step's DynamoDB requests are counted by its store; the stream's
//! records, the state changes among them (`store::changes::events_of`) and
//! the events that reach the subscriber are counted per step.
//!
//! Printed: events published per state change (target 1: none lost, none
//! doubled; a redelivery's repeat keeps its id and is counted apart), and the
//! DynamoDB requests events add to each operation (target ≤ 1 write), beside
//! the floor an outbox would cost (one more write per state change, in the
//! operation's transaction).

use anyhow::Context as _;
use portal::app::App;
use portal::domain::{ContactId, DocumentId, MailJob, TenantId};
use portal::http::HttpFunction;
use portal::store::EmailKey;
use portal_local::events::{fixture_json, ApiEvent};
use portal_local::{local, stream_loop::StreamSource, template::Template};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STAFF_SCOPE: &str = "portal:read portal:write portal:admin";
/// How long the stream and the subscriber's queue get to settle after the day.
const SETTLE: Duration = Duration::from_secs(60);

/// The steps of the day, in order.
const STEPS: [&str; 6] = ["activate", "mail the link", "delivery event", "claim", "deactivate", "mail the notice"];

/// What the stream carried while one step ran.
#[derive(Default)]
struct Tally {
    records: u64,
    changes: u64,
    /// The event ids the publisher was handed for the step's records.
    ids: BTreeSet<String>,
}

pub async fn run(endpoints: &local::Endpoints, t: &Template, contacts: usize) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let tenant = format!("events-{run}");
    let tenant_id = TenantId::parse(&tenant)?;
    let lifecycle = local::http_app(endpoints, t, "lifecycle").await?;
    let claim = local::http_app(endpoints, t, "claim").await?;
    let admin = local::http_app(endpoints, t, "admin").await?;
    let mailer = local::mailer(endpoints, t).await?;
    let deliveries = local::deliveries(endpoints, t).await?;
    let publisher = Arc::new(local::publisher(endpoints, t).await?);
    let (sqs, queue) = subscribe(endpoints, t, &tenant).await?;

    // The stream, read from now on: each batch's records and state changes are tallied to the step running.
    let step = Arc::new(Mutex::new(STEPS[0]));
    let tallies: Arc<Mutex<BTreeMap<&'static str, Tally>>> = Arc::default();
    let reads = Arc::new(AtomicU64::new(0));
    let source = StreamSource::of_table(endpoints, &local::table_name(t)?, 100).await?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stream = {
        let (step, tallies, reads, publisher) = (step.clone(), tallies.clone(), reads.clone(), publisher.clone());
        let ours = tenant_id.clone();
        tokio::spawn(async move {
            source
                .run(
                    move |event| {
                        let (step, tallies, reads, publisher, ours) = (step.clone(), tallies.clone(), reads.clone(), publisher.clone(), ours.clone());
                        async move {
                            reads.fetch_add(1, Ordering::Relaxed);
                            let per_record = portal::workers::publisher::Publisher::events(&event);
                            {
                                let now = *step.lock().unwrap();
                                let mut tallies = tallies.lock().unwrap();
                                let tally = tallies.entry(now).or_default();
                                for (_, events) in &per_record {
                                    let events: Vec<_> = events.iter().filter(|e| e.tenant_id == ours).collect();
                                    tally.records += 1;
                                    tally.changes += events.len() as u64;
                                    tally.ids.extend(events.iter().map(|e| e.event_id.clone()));
                                }
                            }
                            publisher.handle_batch(event).await
                        }
                    },
                    shutdown,
                )
                .await
        })
    };
    // The stream loop starts at the end of the shards open now; give it a moment to be there.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Seed (a step of its own, not counted as the day): the portal and the contacts.
    set_step(&step, "seed");
    put_portal_with_param(&admin, &tenant).await?;
    let ids: Vec<String> = (0..contacts).map(|i| format!("e{i:05}")).collect();
    for id in &ids {
        let body = json!({"name": format!("Events {id}"), "email": format!("{id}-{run}@example.com"), "kind": "individual"});
        let req = ApiEvent::new("PUT", "/v1/contacts/{contact_id}").param("contact_id", id).json(&body).staff(&tenant, STAFF_SCOPE).try_request()?;
        let resp = HttpFunction::Contacts.handle(&admin, req).await;
        anyhow::ensure!(resp.status() == 200, "contact {id}: {}", resp.status());
    }
    settle(&tallies, "seed").await;

    let mut requests: BTreeMap<&'static str, u64> = BTreeMap::new();
    let started = Instant::now();
    // activate
    set_step(&step, "activate");
    let before = lifecycle.store.requests_sent();
    for id in &ids {
        lifecycle_call(&lifecycle, &tenant, id, "activate", 202).await?;
    }
    requests.insert("activate", lifecycle.store.requests_sent() - before);
    settle(&tallies, "activate").await;

    // mail the link: the mailer sends each queued entry (the job the mail queue holds, handed over directly).
    set_step(&step, "mail the link");
    let docs = queued(&lifecycle, &tenant_id, &ids).await?;
    let links = links_of(&lifecycle, &tenant_id, &docs).await?;
    let before = mailer.sender.store.requests_sent();
    for (id, doc) in &docs {
        send(&mailer, &tenant_id, id, doc).await?;
    }
    requests.insert("mail the link", mailer.sender.store.requests_sent() - before);
    settle(&tallies, "mail the link").await;

    // delivery event: SES's documented Delivery example, aimed at each email just sent.
    set_step(&step, "delivery event");
    let before = deliveries.recorder.store.requests_sent();
    for (id, doc) in &docs {
        let entry = lifecycle.store.get_email(&key(&tenant_id, id, doc)?).await?.context("the entry")?;
        let event = delivery_event(&tenant, id, doc, entry.ses_message_id.as_deref().unwrap_or_default(), entry.to.as_str())?;
        let answer = deliveries.handle_batch(event).await;
        anyhow::ensure!(answer.batch_item_failures.is_empty(), "the delivery event of {id} was not taken");
    }
    requests.insert("delivery event", deliveries.recorder.store.requests_sent() - before);
    settle(&tallies, "delivery event").await;

    // claim: each person with the emailed link and the address it went to (bound at once).
    set_step(&step, "claim");
    let before = claim.store.requests_sent();
    for (i, (id, link)) in links.iter().enumerate() {
        let token = link.split("token=").nth(1).context("a link's token")?;
        let body = json!({"token": token, "email": format!("{id}-{run}@example.com")});
        let req = ApiEvent::new("POST", "/v1/claim").json(&body).source_ip(&format!("10.9.{}.{}", i / 250, i % 250 + 1)).try_request()?;
        let resp = HttpFunction::Claim.handle(&claim, req).await;
        anyhow::ensure!(resp.status() == 201, "claim of {id} answered {}", resp.status());
    }
    requests.insert("claim", claim.store.requests_sent() - before);
    settle(&tallies, "claim").await;

    // deactivate (the notice is queued), then the notice sent.
    set_step(&step, "deactivate");
    let before = lifecycle.store.requests_sent();
    for id in &ids {
        lifecycle_call(&lifecycle, &tenant, id, "deactivate", 200).await?;
    }
    requests.insert("deactivate", lifecycle.store.requests_sent() - before);
    settle(&tallies, "deactivate").await;
    set_step(&step, "mail the notice");
    let notices = queued(&lifecycle, &tenant_id, &ids).await?;
    let before = mailer.sender.store.requests_sent();
    for (id, doc) in &notices {
        send(&mailer, &tenant_id, id, doc).await?;
    }
    requests.insert("mail the notice", mailer.sender.store.requests_sent() - before);
    settle(&tallies, "mail the notice").await;
    let day = started.elapsed();

    // What the subscriber received: each event by its id (a repeat counted apart).
    let received = drain_until(&sqs, &queue, &tallies, SETTLE).await?;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), stream).await;

    let tallies = tallies.lock().unwrap();
    let n = contacts as f64;
    println!("\nEvents out: a day of {contacts} contacts ({:.1} s), the stream read {} times\n", day.as_secs_f64(), reads.load(Ordering::Relaxed));
    println!("| step | DynamoDB requests/op | stream records/op | state changes/op | events received/op | events per state change | repeats | added DynamoDB requests/op (outbox floor) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let (mut all_changes, mut all_received, mut all_repeats) = (0u64, 0u64, 0u64);
    for s in STEPS {
        let tally = tallies.get(s).map_or((0, 0, BTreeSet::new()), |t| (t.records, t.changes, t.ids.clone()));
        let got: u64 = tally.2.iter().map(|id| received.get(id).copied().unwrap_or(0).min(1)).sum();
        let repeats: u64 = tally.2.iter().map(|id| received.get(id).copied().unwrap_or(0).saturating_sub(1)).sum();
        all_changes += tally.1;
        all_received += got;
        all_repeats += repeats;
        let per_change = if tally.1 == 0 { "–".to_owned() } else { format!("{:.2}", got as f64 / tally.1 as f64) };
        println!(
            "| {s} | {:.2} | {:.2} | {:.2} | {:.2} | {per_change} | {repeats} | 0 ({:.2} writes) |",
            requests.get(s).copied().unwrap_or(0) as f64 / n,
            tally.0 as f64 / n,
            tally.1 as f64 / n,
            got as f64 / n,
            tally.1 as f64 / n,
        );
    }
    let unexpected = received.keys().filter(|id| !tallies.values().any(|t| t.ids.contains(*id))).count();
    println!(
        "\nAll steps: {all_changes} state changes, {all_received} distinct events received ({:.3} per change; target 1), {all_repeats} repeats, {unexpected} events of no change of this run.",
        if all_changes == 0 { 0.0 } else { all_received as f64 / all_changes as f64 }
    );
    println!(
        "Added DynamoDB requests: 0 per operation — the operations' own requests (counted above) are what they were before \
         events; the publisher holds no DynamoDB client and reads the change stream (DynamoDB Streams' GetRecords, {} reads here, \
         not the table's capacity). The floor beside it is an outbox's: one more write per state change, in the operation's \
         transaction (target ≤ 1).",
        reads.load(Ordering::Relaxed)
    );
    anyhow::ensure!(all_changes > 0 && all_received == all_changes && unexpected == 0, "events lost or foreign: see the table");
    Ok(())
}

fn set_step(step: &Mutex<&'static str>, to: &'static str) {
    *step.lock().unwrap() = to;
}

/// Waits until the stream has been quiet for a moment (the step's records tallied to it).
async fn settle(tallies: &Mutex<BTreeMap<&'static str, Tally>>, _step: &'static str) {
    let mut last = u64::MAX;
    let mut quiet = 0;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline && quiet < 4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now: u64 = tallies.lock().unwrap().values().map(|t| t.records).sum();
        if now == last { quiet += 1 } else { quiet = 0 }
        last = now;
    }
}

async fn put_portal_with_param(admin: &App, tenant: &str) -> anyhow::Result<()> {
    let body = json!({"name": "Events", "default": true, "claim_url": "https://portal.example.com/claim"});
    let req = ApiEvent::new("PUT", "/v1/portals/{portal_id}").param("portal_id", "main").json(&body).staff(tenant, STAFF_SCOPE).try_request()?;
    let resp = HttpFunction::Admin.handle(admin, req).await;
    anyhow::ensure!(resp.status() == 200, "the portal answered {}", resp.status());
    Ok(())
}

async fn lifecycle_call(app: &App, tenant: &str, id: &str, action: &str, want: u16) -> anyhow::Result<()> {
    let req = ApiEvent::new("POST", &format!("/v1/contacts/{{contact_id}}/portal/{action}"))
        .param("contact_id", id)
        .json(&json!({}))
        .staff(tenant, STAFF_SCOPE)
        .try_request()?;
    let resp = HttpFunction::Lifecycle.handle(app, req).await;
    anyhow::ensure!(resp.status().as_u16() == want, "{action} of {id} answered {}", resp.status());
    Ok(())
}

fn key(tenant: &TenantId, contact: &str, doc: &DocumentId) -> anyhow::Result<EmailKey> {
    Ok(EmailKey { tenant_id: tenant.clone(), contact_id: ContactId::parse(contact)?, document_id: doc.clone() })
}

/// Each contact's entries still queued.
async fn queued(app: &App, tenant: &TenantId, ids: &[String]) -> anyhow::Result<Vec<(String, DocumentId)>> {
    let mut out = Vec::new();
    for id in ids {
        for e in app.store.list_emails(tenant, &ContactId::parse(id)?).await? {
            if e.status == portal::domain::EmailStatus::Queued {
                out.push((id.clone(), e.document_id));
            }
        }
    }
    Ok(out)
}

/// The activation link of each entry, opened from its sealed copy as the mailer would.
async fn links_of(app: &App, tenant: &TenantId, docs: &[(String, DocumentId)]) -> anyhow::Result<Vec<(String, String)>> {
    let keys = app.keys.get().await?;
    let mut out = Vec::new();
    for (id, doc) in docs {
        let entry = app.store.get_email(&key(tenant, id, doc)?).await?.context("the entry")?;
        let secrets: Value = serde_json::from_str(&keys.open_sealed(doc, entry.sealed.as_deref().context("sealed")?)?)?;
        out.push((id.clone(), secrets["link"].as_str().context("a link")?.to_owned()));
    }
    Ok(out)
}

async fn send(mailer: &portal::workers::mailer::Mailer, tenant: &TenantId, id: &str, doc: &DocumentId) -> anyhow::Result<()> {
    let job = MailJob { tenant_id: tenant.clone(), contact_id: ContactId::parse(id)?, document_id: doc.clone() };
    let outcome = mailer.sender.send(&job, 1).await?;
    anyhow::ensure!(
        matches!(outcome, portal::usecase::send_email::Outcome::Sent | portal::usecase::send_email::Outcome::AlreadySent),
        "{id}: {outcome:?}"
    );
    Ok(())
}

/// `events/deliveries-delivery.json`, about the email sent as `message_id`.
fn delivery_event(tenant: &str, contact: &str, doc: &DocumentId, message_id: &str, to: &str) -> anyhow::Result<aws_lambda_events::sqs::SqsEvent> {
    let mut sqs = fixture_json("deliveries-delivery.json")?;
    let mut note: Value = serde_json::from_str(sqs["Records"][0]["body"].as_str().context("a body")?)?;
    let mut e: Value = serde_json::from_str(note["Message"].as_str().context("a message")?)?;
    e["mail"]["messageId"] = json!(message_id);
    e["mail"]["destination"] = json!([to]);
    e["mail"]["tags"]["tenant_id"] = json!([tenant]);
    e["mail"]["tags"]["contact_id"] = json!([contact]);
    e["mail"]["tags"]["document_id"] = json!([doc.as_str()]);
    e["delivery"]["recipients"] = json!([to]);
    note["Message"] = json!(e.to_string());
    note["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    sqs["Records"][0]["body"] = json!(note.to_string());
    sqs["Records"][0]["messageId"] = json!(uuid::Uuid::new_v4().to_string());
    Ok(serde_json::from_value(sqs)?)
}

/// A customer's subscription: a rule on the bus for this run's tenant, to a new queue.
async fn subscribe(endpoints: &local::Endpoints, t: &Template, tenant: &str) -> anyhow::Result<(aws_sdk_sqs::Client, String)> {
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let name = format!("bench-{tenant}");
    let url = sqs.create_queue().queue_name(&name).send().await?.queue_url.context("a queue url")?;
    let arn = format!("arn:aws:sqs:{}:{}:{name}", local::REGION, local::ACCOUNT_ID);
    let bus = local::function_env(endpoints, t, "publisher").await?.get("EVENT_BUS_NAME").cloned().context("EVENT_BUS_NAME")?;
    let events = aws_sdk_eventbridge::Client::new(&endpoints.moto);
    let pattern = json!({"source": ["portal-access"], "detail": {"tenant_id": [tenant]}});
    events.put_rule().name(&name).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await?;
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build()?;
    events.put_targets().rule(&name).event_bus_name(&bus).targets(target).send().await?;
    Ok((sqs, url))
}

/// Reads the subscriber's queue until every id the publisher was handed has arrived (or `limit` passes): id → times received.
async fn drain_until(sqs: &aws_sdk_sqs::Client, url: &str, tallies: &Mutex<BTreeMap<&'static str, Tally>>, limit: Duration) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut received: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + limit;
    let mut quiet = 0;
    while Instant::now() < deadline {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(1).send().await?;
        let messages = out.messages.unwrap_or_default();
        for m in &messages {
            let e: Value = serde_json::from_str(m.body().unwrap_or_default())?;
            let id = e["detail"]["event_id"].as_str().unwrap_or_default().to_owned();
            *received.entry(id).or_default() += 1;
            sqs.delete_message().queue_url(url).set_receipt_handle(m.receipt_handle.clone()).send().await?;
        }
        let expected: BTreeSet<String> = tallies.lock().unwrap().values().flat_map(|t| t.ids.iter().cloned()).collect();
        let all_in = expected.iter().all(|id| received.contains_key(id));
        quiet = if messages.is_empty() { quiet + 1 } else { 0 };
        // Everything in, and two quiet reads more for any repeat.
        if all_in && quiet >= 2 {
            break;
        }
    }
    Ok(received)
}
