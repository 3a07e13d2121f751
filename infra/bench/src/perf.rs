//! `portal-bench perf`: the performance evidence, in one process run on
//! the local stack, printed as Markdown (and written into the README between
//! `<!-- perf:begin -->` and `<!-- perf:end -->` with `--readme`).
//!
//! 1. The raw floor: bare SDK GetItem, Query and TransactWriteItems on the
//!    same DynamoDB Local, and each handler's floor, the DynamoDB requests it
//!    needs sent without the handler: generate, a Query + a 4-put
//!    transaction; claim, the very requests the claim handler sends on a
//!    code's claim, which emails a confirmation (its lookup and throttle
//!    count together, then the confirmation's 4-item transaction, then the
//!    mail job on SQS) on codes of their own; status, the bare SDK Query of the same contact
//!    partitions the handler reads; at concurrency 1, 8 and 32.
//! 2. generate, claim and status through their handlers at the same
//!    concurrencies: p50/p99 latency, requests per second, ratio to the floor,
//!    and DynamoDB requests per operation, counted.
//! 3. Cold start and peak RSS of every release binary under a minimal Lambda
//!    Runtime API served here, beside a hello-world lambda_runtime binary and
//!    the floor of a function whose first answer reads DynamoDB
//!    (`hello-dynamodb`: hello-world + the SDK client + one bare Query). Each
//!    start is split into init (process start → its first request for an
//!    event, what Lambda reports as Init Duration) and the first answer. The
//!    demo tenant the events name is seeded first, so the first answers do
//!    the real work (generate issues a code; status and the floor read
//!    chart-1003, a contact no other binary writes to).
//!
//! A benchmark, not a test: it asserts only that the work was done (every
//! operation answered its success status).

use portal_local::local::{self, Endpoints};
use portal_local::template::Template;
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use portal::app::App;
use portal::http::HttpFunction;
use portal_local::events::{fixture_json, ApiEvent};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CONCURRENCY: [usize; 3] = [1, 8, 32];

/// Operations measured at each concurrency.
fn ops_at(concurrency: usize, scale: usize) -> usize {
    scale * match concurrency {
        1 => 150,
        8 => 400,
        _ => 800,
    } / 100
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_sec: f64,
}

/// Latency percentiles and throughput of `latencies` measured over `wall`.
pub fn summarise(mut latencies: Vec<Duration>, wall: Duration) -> Sample {
    latencies.sort();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    Sample { p50_ms: pick(0.50), p99_ms: pick(0.99), per_sec: latencies.len() as f64 / wall.as_secs_f64() }
}

/// Runs `op(i)` for i in 0..n with `concurrency` in flight; every op must succeed.
async fn measure<F, Fut>(n: usize, concurrency: usize, op: F) -> anyhow::Result<Sample>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let latencies: Vec<anyhow::Result<Duration>> = stream::iter(0..n)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    Ok(summarise(latencies.into_iter().collect::<anyhow::Result<_>>()?, wall))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn floor_item(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("state".to_owned(), s("pending")),
        ("created_at".to_owned(), s("2026-01-01T00:00:00.000Z")),
        ("payload".to_owned(), s("x".repeat(120))),
    ])
}

/// The bare primitives on the same table, under a partition of their own.
struct Floor {
    client: aws_sdk_dynamodb::Client,
    table: String,
    run: String,
}

impl Floor {
    async fn get(&self, i: usize) -> anyhow::Result<()> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("PERF#{}#C#{i}", self.run)))
            .key("sk", s("CONTACT"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(())
    }

    async fn query(&self, i: usize) -> anyhow::Result<()> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(format!("PERF#{}#C#{i}", self.run)))
            .expression_attribute_values(":p", s("CONTACT"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(())
    }

    /// The bare Query the status handler's read amounts to: the contact's
    /// partition, every item whose sort key starts with `CONTACT`.
    async fn contact_view(&self, tenant: &portal::domain::TenantId, contact: &str) -> anyhow::Result<()> {
        let contact = portal::domain::ContactId::parse(contact)?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(portal::store::keys::contact_pk(tenant, &contact)))
            .expression_attribute_values(":prefix", s(portal::store::keys::CONTACT_VIEW_PREFIX))
            .consistent_read(true)
            .scan_index_forward(true)
            .send()
            .await?;
        anyhow::ensure!(out.count > 0, "the contact partition of {contact} is empty");
        Ok(())
    }

    /// `items` conditional puts of new items in one transaction.
    async fn transact(&self, tag: &str, i: usize, items: usize) -> anyhow::Result<()> {
        let writes = (0..items)
            .map(|k| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(floor_item(&format!("PERF#{}#{tag}#{i}#{k}", self.run), "ITEM")))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.client.transact_write_items().set_transact_items(Some(writes)).send().await?;
        Ok(())
    }
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

/// The scope of the staff member behind the handlers' events.
const STAFF_SCOPE: &str = "portal:read portal:write portal:admin";

struct Handlers {
    generate: App,
    claim: App,
    status: App,
    tenant: String,
}

impl Handlers {
    async fn generate(&self, contact: &str) -> anyhow::Result<String> {
        let req = ApiEvent::new("POST", "/v1/contacts/{contact_id}/codes")
            .param("contact_id", contact)
            .json(&json!({}))
            .staff(&self.tenant, STAFF_SCOPE)
            .try_request()?;
        let resp = HttpFunction::Generate.handle(&self.generate, req).await;
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
        anyhow::ensure!(resp.status() == 201, "generate answered {}: {body}", resp.status());
        Ok(body["code"].as_str().context("no code")?.to_owned())
    }

    async fn claim(&self, code: &str, i: usize) -> anyhow::Result<()> {
        // Every claim from its own address, as many people claiming at once would be.
        let req = ApiEvent::new("POST", "/v1/claim")
            .json(&json!({"code": code, "email": format!("perf{i}@example.com")}))
            .source_ip(&format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255))
            .try_request()?;
        let resp = HttpFunction::Claim.handle(&self.claim, req).await;
        // A code's claim emails a confirmation (202); see the README on the floor.
        anyhow::ensure!(resp.status() == 202, "claim answered {}", resp.status());
        Ok(())
    }

    /// The claim handler's requests without the handler, on the path a
    /// code's claim takes (an address not yet confirmed: 202): the code's
    /// lookup and the address's count together, then the confirmation's
    /// transaction (the lookup's outstanding list, the confirmation, its
    /// email, the audit entry), then the mail job on SQS, through the same
    /// store and queue calls on a pending code of its own.
    async fn claim_floor(&self, code: &str, i: usize) -> anyhow::Result<()> {
        use portal::domain::{invitation, EmailAddress, EmailKind, MailJob, PickupCode};
        use portal::store::{items::AuditItem, ConfirmationStart};
        let store = &self.claim.store;
        let key = self.claim.keys.get().await?;
        let key = &key.current;
        let hash = key.hasher.hash(&PickupCode::parse(code).map_err(|e| anyhow::anyhow!("{e}"))?);
        let address = key.hasher.hash(&PickupCode::generate());
        let email = EmailAddress::parse(&format!("floor{i}@example.com"))?;
        let now = chrono::Utc::now();
        let (owner, window) = tokio::join!(store.find_code(&hash), store.count_claim(&address, now));
        let (owner, _window) = (owner?.context("the floor's code has no lookup item")?, window?);
        let expires_at = chrono::DateTime::from_timestamp_millis(owner.expires_at_ms).context("the floor's code has no expiry")?;
        invitation::claim(owner.state, expires_at, now)?;
        let token = key.hasher.hash(&PickupCode::generate());
        let valid_until = now + chrono::Duration::hours(1);
        let item = owner.confirmation(&token, &hash, email.clone(), now, valid_until);
        let vars = portal::mail::templates::TemplateVars {
            portal_name: "Perf".into(),
            tenant_name: owner.tenant_id.to_string(),
            link: format!("https://portal.example.com/claim/confirm#{}", token.as_str()).into(),
            claim_url: "https://portal.example.com/claim".into(),
            expires_at: portal::domain::time::format(&valid_until),
            ..Default::default()
        };
        let message = portal::usecase::outbox::sealed_email(&key.sealer, &owner.tenant_id, &owner.contact_id, &owner.portal_id, EmailKind::ClaimConfirmation, email, &vars, now);
        let job = MailJob { tenant_id: owner.tenant_id.clone(), contact_id: owner.contact_id.clone(), document_id: message.document_id.clone() };
        let audit = AuditItem::contact(&owner.tenant_id, &owner.contact_id, Some(&owner.portal_id), "claimant", "claim_confirmation_sent", now, Default::default());
        let start = ConfirmationStart { item, outstanding: vec![token], voided: vec![], email: message, audit };
        store.start_confirmation(&hash, &owner, &start).await.map_err(|e| anyhow::anyhow!("the floor's confirmation failed: {e:?}"))?;
        self.claim.mail_queue.enqueue(&job).await
    }

    async fn status(&self, contact: &str) -> anyhow::Result<()> {
        let req = ApiEvent::new("GET", "/v1/contacts/{contact_id}/portal")
            .param("contact_id", contact)
            .staff(&self.tenant, STAFF_SCOPE)
            .try_request()?;
        let resp = HttpFunction::Status.handle(&self.status, req).await;
        anyhow::ensure!(resp.status() == 200, "status answered {}", resp.status());
        Ok(())
    }
}

struct Row {
    op: &'static str,
    concurrency: usize,
    handler: Sample,
    floor: Sample,
    requests_per_op: f64,
}

/// A new, empty queue named `name`, as the claim's mail queue.
async fn fresh_mail_queue(sqs: &aws_sdk_sqs::Client, endpoints: &Endpoints, name: &str) -> anyhow::Result<portal::queue::MailQueue> {
    let url = sqs.create_queue().queue_name(name).send().await?.queue_url.context("no queue URL")?;
    Ok(portal::queue::MailQueue::new(&endpoints.moto, url))
}

/// Part 1 and 2: the floors and the handlers, at every concurrency.
async fn latency(endpoints: &Endpoints, t: &Template, scale: usize) -> anyhow::Result<(Vec<(String, usize, Sample)>, Vec<Row>)> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let tenant = format!("perf-{run}");
    let mut h = Handlers {
        generate: local::http_app(endpoints, t, "generate").await?,
        claim: local::http_app(endpoints, t, "claim").await?,
        status: local::http_app(endpoints, t, "status").await?,
        tenant: tenant.clone(),
    };
    let floor = Floor { client: h.status.store.client().clone(), table: h.status.store.table_name().to_owned(), run: run.clone() };
    let floor = &floor;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);

    // Seed (not measured): a default portal, a contact per generate, floor rows to read.
    let tenant_id = portal::domain::TenantId::parse(&tenant)?;
    let now = chrono::Utc::now();
    let portal = portal::domain::Portal::new(portal::domain::PortalId::parse("main")?, "Perf", true, Some("https://portal.example.com/claim"), None, None, portal::domain::web_url::Deployment::Aws)?;
    h.generate.store.put_portal(&tenant_id, &portal, "perf", now).await?;
    let total: usize = CONCURRENCY.iter().map(|c| ops_at(*c, scale)).sum();
    let contacts: Vec<String> = (0..total).map(|i| format!("p{i:05}")).collect();
    // The claim floor's contacts: codes of their own, so both paths claim pending codes.
    let floor_contacts: Vec<String> = (0..total).map(|i| format!("q{i:05}")).collect();
    stream::iter(contacts.iter().chain(&floor_contacts))
        .map(|id| {
            let (h, tenant_id) = (&h, &tenant_id);
            async move {
                let contact = portal::domain::Contact {
                    contact_id: portal::domain::ContactId::parse(id)?,
                    name: format!("Perf {id}"),
                    email: Some(portal::domain::EmailAddress::parse(&format!("{id}@example.com"))?),
                    kind: portal::domain::ContactKind::Individual,
                    portal_ids: vec![],
                    facts: Default::default(),
                    fact_key_versions: Default::default(),
                    email_problem: None,
                    phone: None,
                    locale: None,
                };
                h.generate.store.put_contact(tenant_id, &contact, "perf", now).await?;
                if id.starts_with('q') {
                    return Ok(());
                }
                let i: usize = id[1..].parse()?;
                floor.client.put_item().table_name(&floor.table).set_item(Some(floor_item(&format!("PERF#{}#C#{i}", floor.run), "CONTACT"))).send().await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Warm up both paths (portal caches, connections), not measured.
    for i in 0..5 {
        floor.query(i).await?;
        h.status(&contacts[i]).await?;
    }

    let mut primitives = Vec::new();
    let mut rows = Vec::new();
    let mut offset = 0;
    for c in CONCURRENCY {
        let n = ops_at(c, scale);
        let slice = &contacts[offset..offset + n];
        let base = offset;
        offset += n;
        let get = measure(n, c, |i| floor.get(base + i)).await?;
        let query = measure(n, c, |i| floor.query(base + i)).await?;
        let tx4 = measure(n, c, |i| floor.transact("T4", base + i, 4)).await?;
        primitives.push(("GetItem".to_owned(), c, get));
        primitives.push(("Query".to_owned(), c, query));
        primitives.push(("TransactWriteItems (4 puts)".to_owned(), c, tx4));

        // generate: Query + 4-item transaction, then the handler.
        let floor_gen = measure(n, c, |i| async move {
            floor.query(base + i).await?;
            floor.transact("G", base + i, 4).await
        })
        .await?;
        let codes = Arc::new(std::sync::Mutex::new(vec![String::new(); n]));
        let before = h.generate.store.requests_sent();
        let gen = measure(n, c, |i| {
            let codes = codes.clone();
            let h = &h;
            let contact = slice[i].clone();
            async move {
                let code = h.generate(&contact).await?;
                codes.lock().unwrap()[i] = code;
                Ok(())
            }
        })
        .await?;
        let gen_requests = (h.generate.store.requests_sent() - before) as f64 / n as f64;
        rows.push(Row { op: "generate", concurrency: c, handler: gen, floor: floor_gen, requests_per_op: gen_requests });

        // claim: its own requests on codes made for the floor (not measured), then the handler on the codes just made.
        let floor_codes = stream::iter(&floor_contacts[base..base + n])
            .map(|contact| h.generate(contact))
            .buffered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        let floor_codes = &floor_codes;
        // Each run sends to an empty mail queue of its own: moto's SendMessage slows as a
        // queue grows, which would fall on whichever of the two runs second.
        h.claim.mail_queue = fresh_mail_queue(&sqs, endpoints, &format!("perf-{run}-{c}-floor")).await?;
        let floor_claim = measure(n, c, |i| h.claim_floor(&floor_codes[i], base + i)).await?;
        let codes = codes.lock().unwrap().clone();
        h.claim.mail_queue = fresh_mail_queue(&sqs, endpoints, &format!("perf-{run}-{c}-claim")).await?;
        let before = h.claim.store.requests_sent();
        let claim = measure(n, c, |i| h.claim(&codes[i], base + i)).await?;
        let claim_requests = (h.claim.store.requests_sent() - before) as f64 / n as f64;
        rows.push(Row { op: "claim", concurrency: c, handler: claim, floor: floor_claim, requests_per_op: claim_requests });

        // status: one Query of the contact's partition, bare, then through the handler.
        let tenant_id = &tenant_id;
        let floor_status = measure(n, c, |i| floor.contact_view(tenant_id, &slice[i])).await?;
        let before = h.status.store.requests_sent();
        let status = measure(n, c, |i| h.status(&slice[i])).await?;
        let status_requests = (h.status.store.requests_sent() - before) as f64 / n as f64;
        rows.push(Row { op: "status", concurrency: c, handler: status, floor: floor_status, requests_per_op: status_requests });
        eprintln!("latency at concurrency {c}: done");
    }
    Ok((primitives, rows))
}

/// One cold start: process start → first request for an event (init) and →
/// first event answered, and its peak RSS.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub init_millis: f64,
    /// CPU time of all the process's threads by its first request for an
    /// event (`/proc/<pid>/task/*/schedstat`): how much of init was work
    /// rather than waiting.
    pub init_cpu_millis: f64,
    pub millis: f64,
    pub peak_rss_kib: u64,
}

/// When the process first asked for an event, and its CPU time then.
type FirstAsk = Arc<std::sync::Mutex<Option<(Instant, f64)>>>;

/// The CPU time (ms) all threads of `pid` have run so far; NaN when unknown.
fn cpu_millis(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return f64::NAN };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    if ns == 0 { f64::NAN } else { ns as f64 / 1e6 }
}

/// A Runtime API for one invocation: hands out `event`, reports when it was
/// first asked for and when answered.
async fn runtime_api(event: Value, pid: Arc<std::sync::atomic::AtomicU32>) -> anyhow::Result<(String, FirstAsk, tokio::sync::oneshot::Receiver<(Instant, String)>, tokio::task::JoinHandle<()>)> {
    use axum::routing::{get, post};
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked: FirstAsk = Arc::new(std::sync::Mutex::new(None));
    let first_ask = asked.clone();
    let answer = move |kind: &'static str| {
        let tx = tx.clone();
        move |body: String| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send((Instant::now(), format!("{kind}: {}", body.chars().take(200).collect::<String>())));
                }
                axum::http::StatusCode::ACCEPTED
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            get(move || {
                let (event, served, pid) = (event.clone(), served.clone(), pid.clone());
                first_ask.lock().unwrap().get_or_insert_with(|| (Instant::now(), cpu_millis(pid.load(std::sync::atomic::Ordering::SeqCst))));
                async move {
                    if served.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        // One invocation per process: the next one never comes.
                        std::future::pending::<()>().await;
                    }
                    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
                    (
                        [
                            ("lambda-runtime-aws-request-id", "cold-start-1".to_owned()),
                            ("lambda-runtime-deadline-ms", deadline.to_string()),
                            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned()),
                            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
                            ("content-type", "application/json".to_owned()),
                        ],
                        event.to_string(),
                    )
                }
            }),
        )
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer("response")))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer("error")))
        .route("/2018-06-01/runtime/init/error", post(answer("init error")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, asked, rx, server))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Starts `binary` under the Runtime API with `env`, until it answers `event`.
pub async fn cold_start(binary: &Path, env: &HashMap<String, String>, event: Value) -> anyhow::Result<(ColdStart, String)> {
    let child_pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (addr, asked, answered, server) = runtime_api(event, child_pid.clone()).await?;
    let started = Instant::now();
    // Only what Lambda sets: the caller's own variables (RUST_BACKTRACE, say,
    // which makes every anyhow error capture and resolve a backtrace) are not
    // the function's.
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("no pid")?;
    child_pid.store(pid, std::sync::atomic::Ordering::SeqCst);
    let (at, what) = tokio::time::timeout(Duration::from_secs(30), answered)
        .await
        .with_context(|| format!("{} did not answer within 30 s", binary.display()))??;
    let rss = peak_rss_kib(pid);
    let _ = child.kill().await;
    server.abort();
    let (asked, init_cpu_millis) = asked.lock().unwrap().unwrap_or((at, f64::NAN));
    let millis = |t: Instant| (t - started).as_secs_f64() * 1000.0;
    Ok((ColdStart { init_millis: millis(asked), init_cpu_millis, millis: millis(at), peak_rss_kib: rss }, what))
}

/// The Lambda environment of `binary`, with the local stack's endpoints.
async fn lambda_env(endpoints: &Endpoints, t: &Template, binary: &str) -> anyhow::Result<HashMap<String, String>> {
    // The floor reads the table status reads, with status's environment.
    let like = if binary == FLOOR_BINARY { "status" } else { binary };
    let mut env: HashMap<String, String> = match t.function(like) {
        Some(_) => local::function_env(endpoints, t, like).await?.into_iter().collect(),
        None => HashMap::new(),
    };
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", binary.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", local::dynamodb_endpoint()),
        ("AWS_ENDPOINT_URL_SQS", local::moto_endpoint()),
        ("AWS_ENDPOINT_URL_SESV2", local::moto_endpoint()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", local::moto_endpoint()),
        ("RUST_LOG", "info".to_owned()),
        // The rest of a provided.al2023 function's environment.
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
    ] {
        env.insert(k.to_owned(), v);
    }
    Ok(env)
}

/// The cold-start floor of a function whose first answer reads DynamoDB.
const FLOOR_BINARY: &str = "hello-dynamodb";

/// The demo tenant's contact that status and the floor read in the cold
/// starts (generate, lifecycle and the activator write to chart-1001's).
const COLD_CONTACT: &str = "chart-1003";

async fn seed_cold_contact(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    let app = local::http_app(endpoints, t, "admin").await?;
    portal_local::seed::contact(&app, COLD_CONTACT, "Cy Dale", Some("cy.dale@example.com"), "bench-perf").await
}

/// The event each binary gets: its own events/<binary>.json, else the closest.
fn event_for(binary: &str) -> anyhow::Result<Value> {
    let name = match binary {
        "hello" => return Ok(json!({"hello": "event"})),
        // The partition status reads for the events' contact.
        FLOOR_BINARY => {
            let tenant = portal::domain::TenantId::parse(portal_local::seed::DEMO_TENANT)?;
            let contact = portal::domain::ContactId::parse(COLD_CONTACT)?;
            return Ok(json!({"pk": portal::store::keys::contact_pk(&tenant, &contact)}));
        }
        // The same request for a contact no other binary writes to, so that
        // status and its floor read the same partition all run long.
        "status" => {
            let text = fixture_json("status.json")?.to_string();
            return Ok(serde_json::from_str(&text.replace(portal_local::seed::DEMO_CONTACT, COLD_CONTACT))?);
        }
        // The email log of the contact status and the floor read (it has none): the
        // demo contact's grows with every generate and mailer start of the run.
        "contacts" => {
            let text = fixture_json("contacts-list-emails.json")?.to_string();
            return Ok(serde_json::from_str(&text.replace(portal_local::seed::DEMO_CONTACT, COLD_CONTACT))?);
        }
        // Portal Administration's first screen: the tenant's portals.
        "admin" => "admin-list-portals.json".to_owned(),
        "templates" => "templates-get.json".to_owned(),
        "lifecycle" => "lifecycle-deactivate.json".to_owned(),
        "activator" => "activation-batch.json".to_owned(),
        "reports" => "reports-activations.json".to_owned(),
        "deliveries" => "deliveries-delivery.json".to_owned(),
        other => format!("{other}.json"),
    };
    fixture_json(&name)
}

struct ColdRow {
    binary: String,
    init_ms: f64,
    init_cpu_ms: f64,
    median_ms: f64,
    peak_rss_mib: f64,
    size_kib: u64,
    answer: String,
    /// Against the floor: medians of the ratios of each start to the floor's
    /// start beside it (init, init CPU, cold start).
    paired: Option<[f64; 3]>,
}

/// A binary to start, and its starts so far.
struct Subject {
    row: ColdRow,
    path: PathBuf,
    env: HashMap<String, String>,
    event: Value,
    times: Vec<f64>,
    inits: Vec<f64>,
    cpus: Vec<f64>,
    /// Each start ÷ the floor's start beside it: init, init CPU, cold start.
    ratios: [Vec<f64>; 3],
}

impl Subject {
    async fn start(&mut self, t: &Template) -> anyhow::Result<ColdStart> {
        let mut event = self.event.clone();
        if self.row.binary == "activator" {
            // Its proof must be fresh (signed within minutes of when SQS received it).
            // The local code hash key (`setup` gives its secret this value).
            portal_local::events::sign_activation_record(&mut event, &portal_local::local::parameter_value(t, "CodeHashKey").unwrap_or_default());
        }
        let (c, what) = cold_start(&self.path, &self.env, event).await?;
        self.times.push(c.millis);
        self.inits.push(c.init_millis);
        self.cpus.push(c.init_cpu_millis);
        self.row.peak_rss_mib = self.row.peak_rss_mib.max(c.peak_rss_kib as f64 / 1024.0);
        self.row.answer = what;
        Ok(c)
    }
}

/// Every binary `runs` times, round-robin, each function's start next to a
/// start of the floor: its ratios are the medians of start ÷ the floor's
/// start beside it. A start here depends on what ran just before (status
/// measured 6.7 ms alternating with itself and 9.0 ms in a fixed round after
/// the scheduler; the function after a start of the floor itself came out
/// 0.1× slower than in the middle of the round): paired, shuffled and in
/// alternating order, the floor and the function meet the same moment of the
/// machine and of DynamoDB Local.
async fn cold_starts(endpoints: &Endpoints, t: &Template, bin_dir: &Path, runs: usize) -> anyhow::Result<Vec<ColdRow>> {
    let mut binaries: Vec<String> = t.functions.iter().map(|f| f.binary.clone()).collect();
    binaries.sort();
    binaries.insert(0, "hello".to_owned());
    binaries.insert(1, FLOOR_BINARY.to_owned());
    let mut rows = Vec::new();
    let mut subjects = Vec::new();
    for binary in binaries {
        let path = bin_dir.join(&binary);
        if !path.exists() {
            eprintln!("{} is missing (build with `cargo build --release --workspace --bins`): left out", path.display());
            rows.push(ColdRow { binary, init_ms: f64::NAN, init_cpu_ms: f64::NAN, median_ms: f64::NAN, peak_rss_mib: f64::NAN, size_kib: 0, answer: "not built".into(), paired: None });
            continue;
        }
        let (env, event) = (lambda_env(endpoints, t, &binary).await?, event_for(&binary)?);
        let row = ColdRow { size_kib: std::fs::metadata(&path)?.len() / 1024, binary, init_ms: 0.0, init_cpu_ms: 0.0, median_ms: 0.0, peak_rss_mib: 0.0, answer: String::new(), paired: None };
        subjects.push(Subject { row, path, env, event, times: vec![], inits: vec![], cpus: vec![], ratios: Default::default() });
    }
    let floor_at = subjects.iter().position(|s| s.row.binary == FLOOR_BINARY);
    // The order of the pairs changes every run (a fixed-seed shuffle, the same
    // every benchmark), and so does which of the two starts first: what ran
    // just before falls on the floor and the function alike.
    let mut order: Vec<usize> = (0..subjects.len()).filter(|&i| Some(i) != floor_at).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for run in 0..runs {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for (n, &i) in order.iter().enumerate() {
            let Some(f) = floor_at.filter(|_| subjects[i].row.binary != "hello") else {
                subjects[i].start(t).await?;
                continue;
            };
            let (floor, c) = if (run + n) % 2 == 0 {
                let floor = subjects[f].start(t).await?;
                (floor, subjects[i].start(t).await?)
            } else {
                let c = subjects[i].start(t).await?;
                (subjects[f].start(t).await?, c)
            };
            let ratios = &mut subjects[i].ratios;
            ratios[0].push(c.init_millis / floor.init_millis);
            ratios[1].push(c.init_cpu_millis / floor.init_cpu_millis);
            ratios[2].push(c.millis / floor.millis);
        }
    }
    rows.extend(subjects.into_iter().map(|s| {
        let [a, b, c] = s.ratios;
        let paired = (!a.is_empty()).then(|| [median(a), median(b), median(c)]);
        ColdRow { init_ms: median(s.inits), init_cpu_ms: median(s.cpus), median_ms: median(s.times), paired, ..s.row }
    }));
    Ok(rows)
}

/// Whether reading the code hash key (Secrets Manager) is in any function's
/// init: `status` (which never hashes) and `generate` (whose first answer
/// hashes a code), each started with moto's Secrets Manager and with one that
/// accepts connections and never answers. The key is read by the first
/// request that needs it, so init must be the same either way.
async fn key_read_at_init(endpoints: &Endpoints, t: &Template, bin_dir: &Path, runs: usize) -> anyhow::Result<Vec<(String, &'static str, f64, f64, String)>> {
    // A Secrets Manager that takes the connection and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_url = format!("http://{}", silent.local_addr()?);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let mut out = Vec::new();
    for binary in ["status", "generate"] {
        let path = bin_dir.join(binary);
        if !path.exists() {
            continue;
        }
        let env = lambda_env(endpoints, t, binary).await?;
        let mut mute = env.clone();
        mute.insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), silent_url.clone());
        let (mut inits, mut times, mut answers) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()], [String::new(), String::new()]);
        for _ in 0..runs {
            for (i, env) in [&env, &mute].into_iter().enumerate() {
                let (c, what) = cold_start(&path, env, event_for(binary)?).await?;
                inits[i].push(c.init_millis);
                times[i].push(c.millis);
                answers[i] = what;
            }
        }
        let [i0, i1] = inits;
        let [t0, t1] = times;
        let [a0, a1] = answers;
        out.push((binary.to_owned(), "answers (moto)", median(i0), median(t0), a0));
        out.push((binary.to_owned(), "never answers", median(i1), median(t1), a1));
    }
    held.abort();
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub struct Options {
    pub scale: usize,
    pub cold_runs: usize,
    /// Only the cold starts (no latency, no key-read table, README untouched).
    pub cold_only: bool,
    pub bin_dir: PathBuf,
    pub readme: Option<PathBuf>,
}

pub async fn run(endpoints: &Endpoints, t: &Template, opts: &Options) -> anyhow::Result<()> {
    let (primitives, rows) = if opts.cold_only { Default::default() } else { latency(endpoints, t, opts.scale).await? };
    portal_local::seed::run(endpoints, t).await?;
    seed_cold_contact(endpoints, t).await?;
    let cold = cold_starts(endpoints, t, &opts.bin_dir, opts.cold_runs).await?;
    let key_read = if opts.cold_only { Vec::new() } else { key_read_at_init(endpoints, t, &opts.bin_dir, opts.cold_runs).await? };
    let mut md = String::new();
    md.push_str(&format!(
        "Measured by `infra/bench-perf` on {} ({} cores), local stack (DynamoDB Local, moto), release build, one process run.\n\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    md.push_str("Raw floor: bare SDK requests on the same DynamoDB Local (ms)\n\n| request | c | p50 | p99 | req/s |\n|---|---:|---:|---:|---:|\n");
    for (name, c, s) in &primitives {
        md.push_str(&format!("| {name} | {c} | {} | {} | {:.0} |\n", ms(s.p50_ms), ms(s.p99_ms), s.per_sec));
    }
    md.push_str(
        "\nHandlers in process against their floor, the DynamoDB requests each needs without the handler: generate = Query + \
         a 4-put transaction; claim (a code's, which emails a confirmation: 202) = its lookup and throttle count together, then the \
         confirmation's 4-item transaction, then the mail job on SQS, on codes of the floor's own; status = the bare Query of the same contact partitions. Target: p50 ≤ 1.25× floor\n\n\
         | op | c | p50 ms | p99 ms | req/s | floor p50 | floor p99 | p50 ratio | DynamoDB req/op |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.2}× | {:.2} |\n",
            r.op,
            r.concurrency,
            ms(r.handler.p50_ms),
            ms(r.handler.p99_ms),
            r.handler.per_sec,
            ms(r.floor.p50_ms),
            ms(r.floor.p99_ms),
            r.handler.p50_ms / r.floor.p50_ms,
            r.requests_per_op
        ));
    }
    let hello = cold.iter().find(|c| c.binary == "hello");
    let hello = hello.map_or(1.0, |c| c.median_ms);
    let floor_row = cold.iter().find(|c| c.binary == FLOOR_BINARY);
    let floor = floor_row.map_or(f64::NAN, |c| c.median_ms);
    let (floor_init, floor_cpu, floor_kib) = floor_row.map_or((f64::NAN, f64::NAN, f64::NAN), |c| (c.init_ms, c.init_cpu_ms, c.size_kib as f64));
    md.push_str(&format!(
        "\nCold start through a local Lambda Runtime API, median of {} starts: init = process start → first request for \
         an event (Lambda's Init Duration), cold start = process start → first event answered. `{FLOOR_BINARY}` is \
         hello-world plus the SDK client and one bare Query on its first event: the floor of any function whose first \
         answer reads DynamoDB. Targets against it: size ≤ 1.2× (functions on DynamoDB alone) or ≤ 1.35× (those that \
         also send to SQS), init ≤ 1.1×, cold start ≤ 1.15× for functions whose first answer only reads; peak RSS < 40 MiB. \
         init CPU = the CPU time all the process's threads ran by then (`/proc/<pid>/task/*/schedstat`; on a VM without \
         hardware counters, no steadier than wall time). Each function starts next to a start of the floor (which of \
         the two goes first alternates, the pairs' order is shuffled each run) and its × {FLOOR_BINARY} columns are the \
         medians of its starts ÷ the floor's start beside each; the floor's own ms are the median of all its starts. A start \
         here is mostly DynamoDB Local's answer, which depends on what the process before asked it\n\n\
         | binary | size KiB | size × {FLOOR_BINARY} | init ms | init × {FLOOR_BINARY} | init CPU ms | × {FLOOR_BINARY} | cold start ms | × hello | × {FLOOR_BINARY} | peak RSS MiB | first answer |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        opts.cold_runs
    ));
    for c in &cold {
        let answer = c.answer.replace('|', "\\|").replace('\n', " ");
        let answer: String = answer.chars().take(60).collect();
        let [init_x, cpu_x, cold_x] = c.paired.unwrap_or([c.init_ms / floor_init, c.init_cpu_ms / floor_cpu, c.median_ms / floor]);
        md.push_str(&format!(
            "| {} | {} | {:.2}× | {:.1} | {:.2}× | {:.2} | {:.2}× | {:.1} | {:.2}× | {:.2}× | {:.1} | `{}` |\n",
            c.binary,
            c.size_kib,
            c.size_kib as f64 / floor_kib,
            c.init_ms,
            init_x,
            c.init_cpu_ms,
            cpu_x,
            c.median_ms,
            c.median_ms / hello,
            cold_x,
            c.peak_rss_mib,
            answer
        ));
    }
    md.push_str(&format!(
        "\nThe code hash key at cold start (median of {} starts each): read from Secrets Manager by the first request that \
         needs it, never at init, so init is the same whether Secrets Manager answers or not; status never reads it, and \
         generate's first answer waits for it (when it never comes, a 503 within the SDK's operation timeout).\n\n\
         | binary | Secrets Manager | init ms | cold start ms | first answer |\n|---|---|---:|---:|---|\n",
        opts.cold_runs
    ));
    for (binary, sm, init, cold, answer) in &key_read {
        let answer: String = answer.replace('|', "\\|").replace('\n', " ").chars().take(60).collect();
        md.push_str(&format!("| {binary} | {sm} | {init:.1} | {cold:.1} | `{answer}` |\n"));
    }
    println!("{md}");
    if let Some(readme) = opts.readme.as_ref().filter(|_| !opts.cold_only) {
        let text = std::fs::read_to_string(readme)?;
        let (begin, end) = ("<!-- perf:begin -->", "<!-- perf:end -->");
        let (a, b) = (text.find(begin).context("README has no perf:begin marker")?, text.find(end).context("README has no perf:end marker")?);
        let updated = format!("{}{begin}\n{md}{}", &text[..a], &text[b..]);
        std::fs::write(readme, updated)?;
        eprintln!("wrote the tables into {}", readme.display());
    }
    Ok(())
}
