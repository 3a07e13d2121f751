//! `portal-bench bulk`: activates N contacts end to end on the local
//! stack (submit through the `activations` handler → the activator over the
//! queue → every code stored and every email job queued) and, in the same
//! run, the floor: the same items written with bare BatchWriteItem and the
//! same email jobs with SendMessageBatch. Prints a table.
//!
//! Runs in process against its own queues, so a running gateway does not
//! take its messages; the activators read theirs through the gateway's own
//! event-source loop (`portal_local::sqs_loop`, BatchSize 5). A benchmark, not a test: it asserts only that the work
//! was really done (every contact activated, one email job queued per
//! contact; the activator's exactly-once rules are tested in tests/api/bulk.rs).
//!
//! moto's SQS scans every message a queue holds on each send, receive and
//! delete (SQS itself does not slow down as a queue grows). A consumer
//! competing for moto's one core made the email queue grow faster than it
//! drained, and with no consumer a single queue of 10,000 jobs made each send
//! cost 10,000 scans: neither 10,000-contact run finished within 30 minutes.
//! So each activator (and each floor sender) has an email queue of its own,
//! nothing consumes them while the clock runs, and both paths pay the same
//! per-send cost; afterwards the jobs are counted and the queues purged.

use portal_local::local::{self, Endpoints};
use portal_local::template::Template;
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_sqs::types::QueueAttributeName;
use futures::stream::{self, StreamExt, TryStreamExt};
use portal::domain::job::JobState;
use portal::domain::{Contact, ContactId, ContactKind, EmailAddress, JobId, Method, Portal, PortalId, PortalState, TenantId};
use portal::http::HttpFunction;
use portal::domain::{EmailKind, MailJob};
use portal::queue::{ActivationQueue, MailQueue};
use portal::usecase::issue::{plan, Step, Target};
use portal::metrics::RequestCounter;
use portal::store::Store;
use portal_local::events::ApiEvent;
use portal_local::sqs_loop::{self, EventSource};
use serde_json::json;
use std::time::{Duration, Instant};

async fn fresh_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    let url = sqs.create_queue().queue_name(name).send().await?.queue_url.context("queue url")?;
    sqs.purge_queue().queue_url(&url).send().await?;
    Ok(url)
}

/// The email jobs on `urls` once the clock stopped: moto counts them exactly.
/// Then the queues are purged (draining them message by message took moto
/// five minutes per 2,500).
async fn count_and_purge(sqs: &aws_sdk_sqs::Client, urls: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for url in urls {
        total += sqs_loop::messages_on(sqs, url).await?;
        sqs.purge_queue().queue_url(url).send().await?;
    }
    Ok(total)
}

struct Row {
    name: String,
    seconds: f64,
    ddb: u64,
    sqs: u64,
}

pub async fn run(endpoints: &Endpoints, t: &Template, contacts: usize, workers: usize) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))?;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let activation_url = fresh_queue(&sqs, "BenchActivationQueue").await?;
    // The template's visibility timeout, so a slow batch is not handed out twice.
    let visibility = t.queue("ActivationQueue").and_then(|q| q.visibility_timeout).unwrap_or(720);
    sqs.set_queue_attributes()
        .queue_url(&activation_url)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .send()
        .await?;
    // One email queue per activator (and per floor sender), as explained above.
    let mut mail_urls = Vec::new();
    let mut floor_mail_urls = Vec::new();
    for k in 0..workers {
        mail_urls.push(fresh_queue(&sqs, &format!("BenchMailQueue{k}")).await?);
        floor_mail_urls.push(fresh_queue(&sqs, &format!("BenchFloorMailQueue{k}")).await?);
    }

    let mut submit_app = local::http_app(endpoints, t, "activations").await?;
    submit_app.activation_queue = ActivationQueue::new(&endpoints.moto, &activation_url).signed_with(submit_app.keys.clone());
    let mut activators = Vec::new();
    for url in &mail_urls {
        let mut activator = local::activator(endpoints, t).await?;
        activator.app.mail_queue = MailQueue::new(&endpoints.moto, url);
        activators.push(activator);
    }
    let activator_requests = |activators: &[portal::workers::activator::Activator]| {
        activators.iter().fold((0, 0), |(d, q), a| (d + a.app.store.requests_sent(), q + a.app.mail_queue.requests_sent()))
    };

    // Seed (not measured): a default portal and N contacts with email addresses.
    let now = (submit_app.clock)();
    let portal = Portal::new(PortalId::parse("main")?, "Bench Portal", true, Some("https://portal.example.com/claim"), None, None, portal::domain::web_url::Deployment::Aws)?;
    submit_app.store.put_portal(&tenant, &portal, "bench", now).await?;
    let ids: Vec<ContactId> = (0..contacts).map(|i| ContactId::parse(&format!("c{i:06}")).expect("id")).collect();
    let seeding = Instant::now();
    let contact_of = |id: &ContactId| Contact {
        contact_id: id.clone(),
        name: format!("Contact {id}"),
        email: Some(EmailAddress::parse(&format!("{id}@example.com")).expect("email")),
        kind: ContactKind::Individual,
        portal_ids: vec![],
        facts: Default::default(),
        fact_key_versions: Default::default(),
        email_problem: None,
        phone: None,
        locale: None,
    };
    stream::iter(&ids)
        .map(|id| {
            let (store, tenant, contact) = (&submit_app.store, &tenant, contact_of(id));
            async move { store.put_contact(tenant, &contact, "bench", now).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!("seeded {contacts} contacts in {:.1} s", seeding.elapsed().as_secs_f64());

    // The service: submit through the handler, then drain the queue with `workers` activators.
    let (a_ddb0, a_sqs0) = activator_requests(&activators);
    let (ddb0, sqs0) = (submit_app.store.requests_sent() + a_ddb0, submit_app.activation_queue.requests_sent() + a_sqs0);
    let started = Instant::now();
    let submit = ApiEvent::new("POST", "/v1/activations")
        .json(&json!({"contact_ids": ids, "method": "code", "send_email": true}))
        .staff(tenant.as_str(), "portal:write")
        .claim("sub", "bench");
    let response = HttpFunction::Activations.handle(&submit_app, submit.try_request()?).await;
    let submit_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(response.status() == 202, "submit answered {}", response.status());
    let job: serde_json::Value = serde_json::from_slice(response.body().as_ref())?;
    let job_id = JobId::parse(job["job_id"].as_str().context("job id")?)?;

    let esm_counter = RequestCounter::default();
    let esm = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&endpoints.moto).interceptor(esm_counter.clone()).build());
    // The activation queue as its event source mapping reads it (BatchSize 5), through the counted client.
    let source = EventSource::new(&esm, &activation_url).await?.batch_size(5);
    let esm_requests0 = esm_counter.get();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let worker = |k: usize| {
        let (source, activator, store, tenant, job_id) = (&source, &activators[k], &submit_app.store, &tenant, &job_id);
        async move {
            loop {
                anyhow::ensure!(Instant::now() < deadline, "the job did not finish within an hour");
                if source.poll_once(|e| activator.handle_batch(e)).await?.is_none() {
                    if let Some(JobState::Done) = store.get_job(tenant, job_id).await?.map(|j| j.state) {
                        return Ok::<_, anyhow::Error>(());
                    }
                }
            }
        }
    };
    futures::future::try_join_all((0..workers).map(worker)).await?;
    let service_secs = started.elapsed().as_secs_f64();
    let service = Row {
        name: format!("service: submit → activator ({workers} concurrent batches, 16 contacts in flight each)"),
        seconds: service_secs,
        ddb: submit_app.store.requests_sent() + activator_requests(&activators).0 - ddb0,
        sqs: submit_app.activation_queue.requests_sent() + activator_requests(&activators).1 - sqs0,
    };
    let j = submit_app.store.get_job(&tenant, &job_id).await?.context("job")?;
    anyhow::ensure!(j.activated as usize == contacts, "only {} of {contacts} activated", j.activated);
    let emails = count_and_purge(&sqs, &mail_urls).await?;
    anyhow::ensure!(emails as usize == contacts, "{emails} email jobs queued for {contacts} contacts");

    // The floor: the same items and email jobs, written with bare batch calls.
    let floor_tenant = TenantId::parse(&format!("{tenant}-floor"))?;
    let floor_store = Store::new(&endpoints.dynamodb, submit_app.store.table_name());
    let floor_queues: Vec<MailQueue> = floor_mail_urls.iter().map(|url| MailQueue::new(&endpoints.moto, url)).collect();
    let floor_sqs = |qs: &[MailQueue]| qs.iter().map(|q| q.requests_sent()).sum::<u64>();
    let mut items = Vec::with_capacity(contacts * 6);
    let mut jobs = Vec::with_capacity(contacts);
    let keys = submit_app.keys.get().await?;
    for id in &ids {
        let contact = contact_of(id);
        let target = Target { actor: "bench", tenant: &floor_tenant, contact: &contact, portal: &portal, method: Method::Code, previous: PortalState::None, now, key: &keys.current, tenant_name: "Bench Clinic" };
        let (mut inv, issued) = plan(&submit_app, &target, Step { email: Some(EmailKind::PickupCode), action: "bulk_activate" }, vec![])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        inv.job_marker = Some(Store::marker(&floor_tenant, &job_id, id, portal::domain::job::Outcome::Activated, now));
        let (lookup, row) = inv.code_items();
        items.push(serde_dynamo::to_item(&lookup)?);
        items.push(serde_dynamo::to_item(&row)?);
        items.push(serde_dynamo::to_item(&inv.audit)?);
        items.push(serde_dynamo::to_item(inv.messages.first().context("email")?)?);
        items.push(serde_dynamo::to_item(inv.job_marker.as_ref().context("marker")?)?);
        let mut c: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&contact)?;
        c.insert("pk".into(), aws_sdk_dynamodb::types::AttributeValue::S(format!("T#{floor_tenant}#C#{id}")));
        c.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S("CONTACT".into()));
        items.push(c);
        jobs.push(MailJob { tenant_id: floor_tenant.clone(), contact_id: id.clone(), document_id: issued.email_document_id.context("doc")? });
    }
    let (fddb0, fsqs0) = (floor_store.requests_sent(), floor_sqs(&floor_queues));
    let floor_started = Instant::now();
    let writes = stream::iter(items.chunks(25))
        .map(|chunk| {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(i.clone())).build().expect("item")).build())
                .collect();
            let store = &floor_store;
            async move {
                let mut pending = Some(requests);
                while let Some(batch) = pending.take() {
                    let out = store.client().batch_write_item().request_items(store.table_name(), batch).send().await?;
                    pending = out.unprocessed_items.and_then(|mut u| u.remove(store.table_name())).filter(|u| !u.is_empty());
                }
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(workers * 16)
        .try_collect::<Vec<_>>();
    // As many SendMessageBatch in flight as the service has activators.
    let sends = stream::iter(jobs.chunks(10).enumerate())
        .map(|(i, c)| floor_queues[i % workers].send_all(c))
        .buffer_unordered(workers)
        .try_collect::<Vec<_>>();
    tokio::try_join!(writes, sends)?;
    let floor = Row {
        name: "floor: the same items by bare BatchWriteItem + jobs by SendMessageBatch".into(),
        seconds: floor_started.elapsed().as_secs_f64(),
        ddb: floor_store.requests_sent() - fddb0,
        sqs: floor_sqs(&floor_queues) - fsqs0,
    };
    let floor_emails = count_and_purge(&sqs, &floor_mail_urls).await?;
    anyhow::ensure!(floor_emails as usize == contacts, "the floor queued {floor_emails} email jobs for {contacts} contacts");

    println!("\nBulk activation of {contacts} contacts (method code, with email), local stack, one run:\n");
    println!("| path | wall s | contacts/s | DynamoDB req/contact | SQS req/contact |");
    println!("|---|---:|---:|---:|---:|");
    for r in [&service, &floor] {
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.3} |",
            r.name,
            r.seconds,
            contacts as f64 / r.seconds,
            r.ddb as f64 / contacts as f64,
            r.sqs as f64 / contacts as f64
        );
    }
    println!(
        "\nsubmit (POST /v1/activations handler, {contacts} ids): {submit_ms:.0} ms; service/floor time: {:.2}×; \
         event-source polling (receive + delete, not the function's): {:.3} SQS req/contact; email jobs queued: {emails} (the floor: {floor_emails})",
        service.seconds / floor.seconds,
        (esm_counter.get() - esm_requests0) as f64 / contacts as f64
    );
    Ok(())
}
