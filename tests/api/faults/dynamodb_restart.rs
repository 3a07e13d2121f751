//! DynamoDB Local restarted during a 1,000-contact bulk job: the job ends
//! `done`, every contact accounted for once, no duplicate code or email.

use super::harness::*;
use crate::helpers::*;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use portal::domain::{Contact, ContactId, ContactKind, EmailAddress, JobId, TenantId};
use portal::http::HttpFunction;
use portal::queue::{ActivationQueue, MailQueue};
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

const BULK_CONTACTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_restarted_in_the_middle_of_a_bulk_job_still_finishes_it_exactly_once() {
    let mut ddb = OwnDynamo::start(OwnDynamo::scratch_dir("portal-faults-ddb"), RESTART_PORT_OFFSET).await;
    let t = template();
    let table = local::table_name(&t).unwrap();
    let endpoints = Endpoints { dynamodb: local::sdk_config(&ddb.endpoint()).await, moto: Endpoints::from_env().await.moto };
    let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
    ddb.create_table(&t).await;

    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    // A batch that fails while DynamoDB is away is back after 10 s.
    let activation = queue_with_dlq(&sqs, "restartact", 10, 50).await;
    let mail_url = sqs.create_queue().queue_name(unique("restartmail")).send().await.unwrap().queue_url.unwrap();
    let mut submit_app = local::http_app(&endpoints, &t, "activations").await.unwrap();
    submit_app.activation_queue = ActivationQueue::new(&endpoints.moto, &activation.url).signed_with(submit_app.keys.clone());
    let admin_app = local::http_app(&endpoints, &t, "admin").await.unwrap();
    let mut activator = local::activator(&endpoints, &t).await.unwrap();
    activator.app.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
    activator.max_receive_count = 50;
    let activator = std::sync::Arc::new(activator);

    // 1,000 contacts with email addresses.
    let tenant_s = unique("restart");
    let tenant = TenantId::parse(&tenant_s).unwrap();
    ok("portal", &call_full(&admin_app, HttpFunction::Admin, &tenant_s, put_portal_event("main", json!({}))).await, 200);
    let ids: Vec<ContactId> = (0..BULK_CONTACTS).map(|i| ContactId::parse(&format!("r{i:04}")).unwrap()).collect();
    let now = Utc::now();
    stream::iter(&ids)
        .map(|id| {
            let contact = Contact {
                contact_id: id.clone(),
                name: format!("Contact {id}"),
                email: Some(EmailAddress::parse(&format!("{id}@example.com")).unwrap()),
                kind: ContactKind::Individual,
                portal_ids: vec![],
                facts: Default::default(),
                fact_key_versions: Default::default(),
                email_problem: None,
                phone: None,
                locale: None,
            };
            let (store, tenant) = (&admin_app.store, &tenant);
            async move { store.put_contact(tenant, &contact, "faults", now).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    let mail = sqs_loop::Drain::start(&sqs, &mail_url, 4).await.unwrap();
    let submit = staff("POST", "/v1/activations").json(&json!({"contact_ids": ids, "method": "code", "send_email": true}));
    let job_id = ok("submit", &call_full(&submit_app, HttpFunction::Activations, &tenant_s, submit).await, 202)["job_id"].as_str().unwrap().to_owned();
    let job = JobId::parse(&job_id).unwrap();

    // Four activators polling like the gateway (its event-source loop), two
    // messages per receive (the job has ten); errors while DynamoDB is away
    // are expected.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let failed_batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = activation.source.clone().batch_size(2);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (activator, source, shutdown, failed) = (activator.clone(), source.clone(), shutdown.clone(), failed_batches.clone());
            tokio::spawn(async move {
                let handler = |e| {
                    let (activator, failed) = (&activator, &failed);
                    async move {
                        let response = activator.handle_batch(e).await;
                        failed.fetch_add(response.batch_item_failures.len(), std::sync::atomic::Ordering::SeqCst);
                        response
                    }
                };
                source.run(handler, shutdown).await;
            })
        })
        .collect();

    let store = &admin_app.store;
    let progress = || async { store.get_job(&tenant, &job).await.ok().flatten() };
    // Part-way: some hundreds counted, more in flight.
    let started = Instant::now();
    let at_kill = eventually(Duration::from_secs(150), || async {
        let j = progress().await?;
        assert_ne!(j.state, portal::domain::job::JobState::Done, "the job finished before DynamoDB could be restarted");
        (j.activated >= 200).then_some(j.activated)
    })
    .await
    .expect("200 contacts activated within 150 s");
    eprintln!("restarting DynamoDB Local after {:.1} s with {at_kill} contacts counted", started.elapsed().as_secs_f64());
    ddb.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ddb.spawn().await;
    eprintln!("DynamoDB Local is back after {:.1} s", started.elapsed().as_secs_f64());
    let mut shown = Instant::now();
    let finished = eventually(Duration::from_secs(180), || {
        let show = shown.elapsed() > Duration::from_secs(15);
        if show {
            shown = Instant::now();
        }
        async move {
            let j = progress().await;
            if show {
                eprintln!("{:.1} s: {:?}", started.elapsed().as_secs_f64(), j.as_ref().map(|j| (j.activated, j.state)));
            }
            j.filter(|j| j.state == portal::domain::job::JobState::Done)
        }
    })
    .await;
    let _ = stop.send(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    let j = finished.expect("the job reached `done` within 180 s of the restart");
    eprintln!("job done after {:.1} s; {} batch failures were redelivered", started.elapsed().as_secs_f64(), failed_batches.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        (j.total, j.activated, j.failed, j.skipped_no_email, j.skipped_already_active),
        (BULK_CONTACTS as u32, BULK_CONTACTS as u32, 0, 0, 0),
        "every contact accounted for, once"
    );
    assert!(failed_batches.load(std::sync::atomic::Ordering::SeqCst) > 0, "the restart hit batches in flight (else this tested nothing)");
    assert_eq!(messages_on(&sqs, &activation.dlq_url).await, 0, "no batch was dead-lettered");

    // The table: per contact exactly one pending code, one email entry, one audit record, one marker naming that email.
    let items = scan_all(&direct, &table).await;
    let contact_prefix = format!("T#{tenant}#C#");
    let mut codes: HashMap<String, Vec<&Item>> = HashMap::new();
    let mut emails: HashMap<String, Vec<String>> = HashMap::new();
    let mut audits: HashMap<String, usize> = HashMap::new();
    let mut markers: HashMap<String, (String, String)> = HashMap::new();
    let mut lookups = 0;
    for item in &items {
        let (pk, sk) = (attr(item, "pk"), attr(item, "sk"));
        if let Some(contact) = pk.strip_prefix(&contact_prefix) {
            if sk.starts_with("CONTACT#CODE#") {
                codes.entry(contact.to_owned()).or_default().push(item);
            } else if sk.starts_with("EMAIL#") {
                emails.entry(contact.to_owned()).or_default().push(attr(item, "document_id").to_owned());
            } else if sk.starts_with("AUDIT#") {
                *audits.entry(contact.to_owned()).or_default() += 1;
            }
        } else if pk.starts_with("CODE#") {
            lookups += 1;
            assert_eq!(attr(item, "state"), "pending");
        } else if pk == format!("T#{tenant}#J#{job}") && sk.starts_with("C#") {
            let previous = markers.insert(attr(item, "contact_id").to_owned(), (attr(item, "outcome").to_owned(), attr(item, "email_document_id").to_owned()));
            assert!(previous.is_none());
        }
    }
    assert_eq!(lookups, BULK_CONTACTS, "one code lookup per contact, no orphan");
    for id in &ids {
        let id = id.as_str();
        let c = codes.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(c.len(), 1, "{id}: exactly one code");
        assert_eq!(attr(c[0], "state"), "pending", "{id}");
        let e = emails.get(id).cloned().unwrap_or_default();
        assert_eq!(e.len(), 1, "{id}: exactly one email log entry");
        assert_eq!(audits.get(id), Some(&1), "{id}: one audit record");
        assert_eq!(markers.get(id), Some(&("activated".to_owned(), e[0].clone())), "{id}: the marker names the email");
    }

    // The listing shows all of them pending.
    let mut listed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut e = staff("GET", "/v1/contacts").query("portal_status", "pending").query("limit", "200");
        if let Some(c) = &cursor {
            e = e.query("cursor", c);
        }
        let page = ok("listing", &call_full(&admin_app, HttpFunction::Contacts, &tenant_s, e).await, 200);
        listed.extend(page["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed.len(), BULK_CONTACTS, "the listing shows every contact pending");

    // The mail queue: a job for every contact, all naming its one email (a
    // redelivered batch queues its jobs again; the mailer sends each once).
    let bodies = mail.finish(Duration::from_secs(120)).await.expect("the mail queue was drained within 120 s");
    let mut queued: HashMap<String, BTreeSet<String>> = HashMap::new();
    for b in &bodies {
        let job: Value = serde_json::from_str(b).unwrap();
        queued.entry(job["contact_id"].as_str().unwrap().to_owned()).or_default().insert(job["document_id"].as_str().unwrap().to_owned());
    }
    eprintln!("{} email jobs queued for {} contacts", bodies.len(), queued.len());
    for id in &ids {
        let want: BTreeSet<String> = emails[id.as_str()].iter().cloned().collect();
        assert_eq!(queued.get(id.as_str()), Some(&want), "{id}: email jobs name exactly its one email");
    }
    ddb.stop().await;
}
