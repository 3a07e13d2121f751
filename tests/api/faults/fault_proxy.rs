//! A fault-injecting HTTP proxy for the fault tests: it listens on
//! 127.0.0.1:0 and forwards every request to a real endpoint (DynamoDB Local,
//! moto), except those a rule matches, which it answers itself with the
//! error AWS would send. Faults are injected at the network, so the code under
//! test is exactly what runs in the Lambda: the SDK parses a real wire answer.
//!
//! HTTP/1.1 only, `Content-Length` or chunked request bodies, keep-alive;
//! enough for the AWS SDK's requests, nothing more.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Which requests a rule takes.
#[derive(Debug, Clone)]
enum Match {
    /// A JSON-protocol operation by its `X-Amz-Target` (e.g. `DynamoDB_20120810.TransactWriteItems`).
    Target(String),
    /// A REST operation by method and path (e.g. SES v2 SendEmail: `POST /v2/email/outbound-emails`).
    Route(String, String),
}

/// The answer a rule gives instead of the upstream's.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A REST-JSON error (SES v2): status, `x-amzn-ErrorType`, `{"message"}`.
    Rest { status: u16, error_type: String, message: String },
    /// DynamoDB's TransactionCanceledException (JSON 1.0, HTTP 400) with one
    /// cancellation reason per item of the request: `code` for the item at
    /// `at` (every item when `None`), `None` for the others.
    TransactionCanceled { code: String, at: Option<usize> },
}

impl Fault {
    /// SES v2's throttling answer.
    pub fn ses_throttled() -> Self {
        Self::Rest { status: 429, error_type: "TooManyRequestsException".into(), message: "Maximum sending rate exceeded.".into() }
    }

    /// A 5xx from SES (500 InternalFailure, 503 ServiceUnavailable).
    pub fn ses_unavailable(status: u16) -> Self {
        let error_type = if status == 503 { "ServiceUnavailable" } else { "InternalFailure" };
        Self::Rest { status, error_type: error_type.into(), message: "We encountered an internal error. Please try again.".into() }
    }

    /// A transaction cancelled because the condition of item `at` failed.
    pub fn conditional_check_failed(at: usize) -> Self {
        Self::TransactionCanceled { code: "ConditionalCheckFailed".into(), at: Some(at) }
    }

    /// A transaction cancelled by a concurrent one on item `at`.
    pub fn transaction_conflict(at: usize) -> Self {
        Self::TransactionCanceled { code: "TransactionConflict".into(), at: Some(at) }
    }
}

/// A rule: what it matches, how often, and its answer.
pub struct Rule {
    matcher: Match,
    /// Substrings the request body must contain.
    contains: Vec<String>,
    /// How many more matches it answers (`None`: every one).
    remaining: Option<usize>,
    fault: Fault,
    hits: Arc<AtomicUsize>,
}

impl Rule {
    /// A DynamoDB operation (`TransactWriteItems`, `PutItem`, …).
    pub fn dynamodb(operation: &str) -> Self {
        Self::new(Match::Target(format!("DynamoDB_20120810.{operation}")))
    }

    /// Any JSON-protocol operation by its `X-Amz-Target` (e.g. `AWSEvents.PutEvents`).
    pub fn target(target: &str) -> Self {
        Self::new(Match::Target(target.to_owned()))
    }

    /// SES v2 SendEmail.
    pub fn ses_send_email() -> Self {
        Self::new(Match::Route("POST".into(), "/v2/email/outbound-emails".into()))
    }

    fn new(matcher: Match) -> Self {
        Self {
            matcher,
            contains: Vec::new(),
            remaining: None,
            fault: Fault::ses_unavailable(500),
            hits: Arc::default(),
        }
    }

    /// Only requests whose body contains `text`.
    pub fn body_contains(mut self, text: &str) -> Self {
        self.contains.push(text.to_owned());
        self
    }

    /// Only the first `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    pub fn answer(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    fn matches(&self, seen: &Seen) -> bool {
        let op = match &self.matcher {
            Match::Target(t) => seen.header("x-amz-target") == Some(t.as_str()),
            Match::Route(m, p) => seen.method == *m && seen.path.split('?').next() == Some(p.as_str()),
        };
        if !op || self.remaining == Some(0) {
            return false;
        }
        let body = seen.body_text();
        self.contains.iter().all(|c| body.contains(c.as_str()))
    }
}

/// How many requests a rule answered.
#[derive(Clone, Debug)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct State {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. `http://127.0.0.1:8000`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(state, stream).await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The URL to point an SDK client at.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (rules are tried in order); returns its hit counter.
    pub fn inject(&self, rule: Rule) -> Hits {
        let hits = Hits(rule.hits.clone());
        self.state.rules.lock().unwrap().push(rule);
        hits
    }

    /// Removes every rule: everything passes through again.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Every request seen so far (answered or forwarded).
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// One connection: requests one after another until the client closes it.
async fn serve(state: Arc<State>, stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let Some((seen, close)) = read_request(&mut reader).await? else {
            return Ok(());
        };
        state.seen.lock().unwrap().push(seen.clone());
        let injected = {
            let mut rules = state.rules.lock().unwrap();
            rules.iter_mut().find(|r| r.matches(&seen)).map(|r| {
                if let Some(n) = r.remaining.as_mut() {
                    *n -= 1;
                }
                r.hits.fetch_add(1, Ordering::SeqCst);
                r.fault.clone()
            })
        };
        let (status, headers, body) = match injected {
            Some(fault) => synthetic(&fault, &seen),
            None => forward(&state, &seen).await,
        };
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n", body.len()));
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        write.write_all(head.as_bytes()).await?;
        write.write_all(&body).await?;
        write.flush().await?;
        if close {
            return Ok(());
        }
    }
}

/// Reads one request; `None` at a clean end of the connection.
async fn read_request<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<(Seen, bool)>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or("/").to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 {
            return Ok(None);
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).await?;
    }
    Ok(Some((Seen { method, path, headers, body }, close)))
}

const HOP_BY_HOP: [&str; 6] = ["host", "content-length", "connection", "transfer-encoding", "keep-alive", "expect"];

async fn forward(state: &State, seen: &Seen) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let method = reqwest::Method::from_bytes(seen.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut req = state.client.request(method, format!("{}{}", state.upstream, seen.path));
    for (k, v) in &seen.headers {
        if !HOP_BY_HOP.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            req = req.header(k, v);
        }
    }
    match req.body(seen.body.clone()).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            (status, headers, body)
        }
        // The upstream is down: what a load balancer in front of it would say.
        Err(e) => (502, vec![("content-type".into(), "text/plain".into())], format!("upstream unreachable: {e}").into_bytes()),
    }
}

/// The error AWS would send for `fault`, shaped for the request's protocol.
fn synthetic(fault: &Fault, seen: &Seen) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let request_id = uuid::Uuid::new_v4().to_string();
    match fault {
        Fault::Rest { status, error_type, message } => (
            *status,
            vec![
                ("content-type".into(), "application/json".into()),
                ("x-amzn-errortype".into(), format!("{error_type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/")),
                ("x-amzn-requestid".into(), request_id),
            ],
            serde_json::json!({ "message": message }).to_string().into_bytes(),
        ),
        Fault::TransactionCanceled { code, at } => {
            let items = serde_json::from_slice::<serde_json::Value>(&seen.body)
                .ok()
                .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1);
            let reasons: Vec<serde_json::Value> = (0..items)
                .map(|i| {
                    if at.is_none_or(|a| a == i) {
                        let message = match code.as_str() {
                            "ConditionalCheckFailed" => "The conditional request failed",
                            "TransactionConflict" => "Transaction is ongoing for the item",
                            _ => code.as_str(),
                        };
                        serde_json::json!({ "Code": code, "Message": message })
                    } else {
                        serde_json::json!({ "Code": "None" })
                    }
                })
                .collect();
            let listed: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
            (
                400,
                vec![("content-type".into(), "application/x-amz-json-1.0".into()), ("x-amzn-requestid".into(), request_id)],
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", listed.join(", ")),
                    "CancellationReasons": reasons,
                })
                .to_string()
                .into_bytes(),
            )
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
