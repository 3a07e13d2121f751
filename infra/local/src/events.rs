//! API Gateway HTTP API (payload 2.0) events, built in one place.
//!
//! The local gateway turns each HTTP request into the event a Lambda behind
//! API Gateway receives; the handler tests and the benchmarks call the
//! handlers in process with events of their own. All of them go through
//! [`ApiEvent`], so an event made in a test has exactly the shape of the one
//! the gateway makes (route key, path parameters, query string and its map,
//! body and its base64 flag, JWT claims in the authorizer context, source
//! address), and a change to that shape is made once.
//!
//! An event starts either from a route ([`ApiEvent::new`]: a fresh envelope,
//! as the local gateway sends it) or from a real-shaped payload such as
//! `events/*.json` ([`ApiEvent::fixture`]), whose other fields are kept as
//! they are; the builder then sets what the test or the request decides.

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// The `sub` of the staff member behind an event made with [`ApiEvent::scope`] or [`ApiEvent::staff`].
pub const STAFF_SUB: &str = "staff-local";

/// One API Gateway v2 event under construction.
///
/// Without a caller an event is a public route's (the claim page); with one
/// (`scope`, `staff`, `claims`) it carries the JWT authorizer's context, as
/// API Gateway passes it: every claim a string, `scopes` split from `scope`.
#[derive(Debug, Clone)]
pub struct ApiEvent {
    /// The payload the builder writes onto: a fixture, or a fresh envelope.
    base: Value,
    method: String,
    /// The route's path as the template writes it, e.g. `/v1/contacts/{contact_id}/codes`.
    route: String,
    /// The concrete path; `None` fills the route's `{params}` in.
    path: Option<String>,
    params: BTreeMap<String, String>,
    /// The query string as sent (percent-encoded); its map is derived from it.
    raw_query: String,
    headers: BTreeMap<String, String>,
    /// `None`: no body (API Gateway sends none for an empty one).
    body: Option<Vec<u8>>,
    /// The JWT claims of a staff caller; `None` on a public route.
    claims: Option<BTreeMap<String, String>>,
    source_ip: String,
}

impl ApiEvent {
    /// A request for `route` (a path as template.yaml writes it) with a fresh
    /// envelope like the local gateway's: no caller, no query, no body, from 127.0.0.1.
    pub fn new(method: &str, route: &str) -> Self {
        let now = chrono::Utc::now();
        let base = json!({
            "version": "2.0",
            "headers": {},
            "requestContext": {
                "accountId": crate::local::ACCOUNT_ID,
                "apiId": "local",
                "domainName": "127.0.0.1",
                "domainPrefix": "local",
                "http": { "protocol": "HTTP/1.1" },
                "requestId": uuid::Uuid::new_v4().to_string(),
                "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
                "timeEpoch": now.timestamp_millis(),
            },
            "isBase64Encoded": false,
        });
        Self {
            base,
            method: method.to_owned(),
            route: route.to_owned(),
            path: None,
            params: BTreeMap::new(),
            raw_query: String::new(),
            headers: BTreeMap::new(),
            body: None,
            claims: None,
            source_ip: "127.0.0.1".to_owned(),
        }
    }

    /// `events/<name>` of the repository, to build on.
    pub fn fixture(name: &str) -> anyhow::Result<Self> {
        Self::from_payload(fixture_json(name)?)
    }

    /// Any v2 payload, to build on: its route, path, parameters, query,
    /// headers, body, claims and source address become the builder's; every
    /// other field is kept as it is.
    pub fn from_payload(payload: Value) -> anyhow::Result<Self> {
        let route_key = payload["routeKey"].as_str().context("not an API Gateway v2 event: no routeKey")?;
        let (method, route) = route_key.split_once(' ').with_context(|| format!("route key {route_key:?} is not `METHOD /path`"))?;
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        };
        let body = match payload["body"].as_str() {
            None | Some("") => None,
            Some(b) if payload["isBase64Encoded"] == true => {
                Some(base64::engine::general_purpose::STANDARD.decode(b).context("a base64 body that is not base64")?)
            }
            Some(b) => Some(b.as_bytes().to_vec()),
        };
        let claims = &payload["requestContext"]["authorizer"]["jwt"]["claims"];
        Ok(Self {
            method: method.to_owned(),
            route: route.to_owned(),
            path: payload["rawPath"].as_str().map(str::to_owned),
            params: strings(&payload["pathParameters"]),
            raw_query: payload["rawQueryString"].as_str().unwrap_or_default().to_owned(),
            headers: strings(&payload["headers"]),
            body,
            claims: claims.is_object().then(|| strings(claims)),
            source_ip: payload["requestContext"]["http"]["sourceIp"].as_str().unwrap_or("127.0.0.1").to_owned(),
            base: payload,
        })
    }

    /// A path parameter; the concrete path is the route with it filled in
    /// (percent-encoded) unless [`path`](Self::path) sets one.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The path as requested, for a caller that has it (the gateway).
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Every path parameter at once, replacing any set before.
    pub fn params(mut self, params: BTreeMap<String, String>) -> Self {
        self.params = params;
        self
    }

    /// One query parameter, appended (percent-encoded) to the query string.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        if !self.raw_query.is_empty() {
            self.raw_query.push('&');
        }
        self.raw_query.push_str(&format!("{}={}", portal::http::encode_component(name), portal::http::encode_component(value)));
        self
    }

    /// The query string as sent, e.g. `a=1&a=2&b=x+y`.
    pub fn raw_query(mut self, raw: &str) -> Self {
        self.raw_query = raw.to_owned();
        self
    }

    /// Sets a header (names are lower case in v2 events), replacing its value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    /// Adds a header value; a repeated header is joined with commas, as API Gateway does.
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
        self
    }

    /// A JSON body, with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json").body(body.to_string().into_bytes())
    }

    /// A raw body: text when it is UTF-8, base64 (`isBase64Encoded`) otherwise; empty is none.
    pub fn body(mut self, bytes: Vec<u8>) -> Self {
        self.body = (!bytes.is_empty()).then_some(bytes);
        self
    }

    /// The body read as JSON, if it is.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(self.body.as_deref()?).ok()
    }

    /// A staff caller of `tenant` holding `scope` (e.g. `portal:read portal:write`).
    pub fn staff(self, tenant: &str, scope: &str) -> Self {
        self.scope(scope).claim("tenant_id", tenant)
    }

    /// The staff caller's scope; an event without a caller gets one ([`STAFF_SUB`], no tenant yet).
    pub fn scope(mut self, scope: &str) -> Self {
        let claims = self.claims.get_or_insert_with(|| BTreeMap::from([("sub".to_owned(), STAFF_SUB.to_owned())]));
        claims.insert("scope".to_owned(), scope.to_owned());
        self
    }

    /// The staff caller's tenant. A public event has no caller to carry one
    /// and stays public, so a claim and a staff event can be sent alike.
    pub fn tenant(mut self, tenant: &str) -> Self {
        if let Some(claims) = &mut self.claims {
            claims.insert("tenant_id".to_owned(), tenant.to_owned());
        }
        self
    }

    /// Sets one claim of the caller (making the event a staff one if it was not).
    pub fn claim(mut self, name: &str, value: &str) -> Self {
        self.claims.get_or_insert_with(BTreeMap::new).insert(name.to_owned(), value.to_owned());
        self
    }

    /// The caller's claims as the JWT authorizer passes them on.
    pub fn claims(mut self, claims: HashMap<String, String>) -> Self {
        self.claims = Some(claims.into_iter().collect());
        self
    }

    /// No caller: the authorizer context is removed.
    pub fn public(mut self) -> Self {
        self.claims = None;
        self
    }

    /// The address API Gateway saw (`requestContext.http.sourceIp`).
    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_owned();
        self
    }

    /// The concrete path: the one given, or the route with its parameters filled in.
    fn concrete_path(&self) -> String {
        if let Some(p) = &self.path {
            return p.clone();
        }
        self.route
            .split('/')
            .map(|segment| {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')).and_then(|name| self.params.get(name)) {
                    Some(value) => portal::http::encode_component(value),
                    None => segment.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The event as JSON, exactly what the Lambda receives.
    pub fn to_value(&self) -> Value {
        let mut e = self.base.clone();
        // API Gateway names its default route `$default`, whatever the method.
        let route_key = if self.route == "$default" { self.route.clone() } else { format!("{} {}", self.method, self.route) };
        let path = self.concrete_path();
        e["version"] = json!("2.0");
        e["routeKey"] = json!(route_key);
        e["rawPath"] = json!(path);
        e["rawQueryString"] = json!(self.raw_query);
        e["headers"] = json!(self.headers);
        let ctx = &mut e["requestContext"];
        ctx["routeKey"] = json!(route_key);
        ctx["http"]["method"] = json!(self.method);
        ctx["http"]["path"] = json!(path);
        ctx["http"]["sourceIp"] = json!(self.source_ip);
        ctx["http"]["userAgent"] = json!(self.headers.get("user-agent").map(String::as_str).unwrap_or_default());
        match &self.claims {
            Some(claims) => {
                let scopes: Vec<&str> = claims.get("scope").map(|s| s.split(' ').collect()).unwrap_or_default();
                ctx["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": scopes } });
            }
            None => {
                ctx.as_object_mut().map(|c| c.remove("authorizer"));
            }
        }
        let top = e.as_object_mut().expect("an event is an object");
        if self.params.is_empty() {
            top.remove("pathParameters");
        } else {
            top.insert("pathParameters".into(), json!(self.params));
        }
        if self.raw_query.is_empty() {
            top.remove("queryStringParameters");
        } else {
            top.insert("queryStringParameters".into(), Value::Object(query_map(&self.raw_query)));
        }
        let (body, is_base64) = match &self.body {
            None => (None, false),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (Some(text.to_owned()), false),
                Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(bytes)), true),
            },
        };
        match body {
            Some(b) => top.insert("body".into(), json!(b)),
            None => top.remove("body"),
        };
        top.insert("isBase64Encoded".into(), json!(is_base64));
        e
    }

    /// The event parsed by lambda_http, exactly as in the Lambda.
    pub fn try_request(&self) -> Result<lambda_http::Request, serde_json::Error> {
        lambda_http::request::from_str(&self.to_value().to_string())
    }

    /// [`try_request`](Self::try_request), for tests and benchmarks: panics if
    /// lambda_http refuses the event (only a malformed fixture can make it).
    pub fn request(&self) -> lambda_http::Request {
        self.try_request().expect("a valid API Gateway v2 event")
    }
}

/// `events/<name>` of the repository as JSON (API Gateway, SQS or schedule events).
pub fn fixture_json(name: &str) -> anyhow::Result<Value> {
    let path = crate::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Matches a concrete path against a template path like `/v1/contacts/{contact_id}/codes`.
pub fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let want: Vec<&str> = template.trim_matches('/').split('/').collect();
    let have: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = BTreeMap::new();
    // A greedy last parameter (`{proxy+}`) takes one segment or more, slashes kept.
    if let Some(name) = want.last().and_then(|w| w.strip_prefix('{')).and_then(|w| w.strip_suffix("+}")) {
        let fixed = want.len() - 1;
        if have.len() <= fixed || have[fixed].is_empty() {
            return None;
        }
        let head = match_path(&want[..fixed].join("/"), &have[..fixed].join("/"))?;
        params.extend(head);
        let rest: Vec<String> = have[fixed..].iter().map(|h| portal::http::decode_component(h)).collect();
        params.insert(name.to_owned(), rest.join("/"));
        return Some(params);
    }
    if want.len() != have.len() {
        return None;
    }
    for (w, h) in want.iter().zip(&have) {
        if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            if h.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), portal::http::decode_component(h));
        } else if w != h {
            return None;
        }
    }
    Some(params)
}

/// `queryStringParameters` from a raw query string: decoded, and repeated
/// parameters joined with commas, as API Gateway v2 does.
pub fn query_map(raw: &str) -> serde_json::Map<String, Value> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |x: &str| portal::http::decode_component(&x.replace('+', " "));
        map.entry(decode(k)).or_default().push(decode(v));
    }
    map.into_iter().map(|(k, v)| (k, Value::String(v.join(",")))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_templates_and_yield_parameters() {
        let p = match_path("/v1/contacts/{contact_id}/codes", "/v1/contacts/c%2D1/codes").unwrap();
        assert_eq!(p["contact_id"], "c-1");
        assert!(match_path("/v1/contacts/{contact_id}/codes", "/v1/contacts/c1").is_none());
        assert!(match_path("/v1/portals", "/v1/portals/").is_some());
        assert!(match_path("/v1/contacts/{contact_id}", "/v1/contacts//").is_none());
    }

    #[test]
    fn a_greedy_parameter_takes_the_rest_of_the_path() {
        assert_eq!(match_path("/console/{proxy+}", "/console/demo/index.html").unwrap()["proxy"], "demo/index.html");
        assert_eq!(match_path("/console/{proxy+}", "/console/console.js").unwrap()["proxy"], "console.js");
        assert!(match_path("/console/{proxy+}", "/console").is_none(), "one segment at least");
        assert!(match_path("/console/{proxy+}", "/consoles/x").is_none());
    }

    #[test]
    fn repeated_query_parameters_join_with_commas() {
        let q = query_map("a=1&a=2&b=x+y");
        assert_eq!(q["a"], "1,2");
        assert_eq!(q["b"], "x y");
    }

    #[test]
    fn every_api_fixture_comes_back_unchanged_through_the_builder() {
        let dir = crate::repo_root().join("events");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            // events/schemas/ holds the JSON Schemas of events out, not fixtures.
            if entry.file_type().unwrap().is_dir() {
                continue;
            }
            let name = entry.file_name().into_string().unwrap();
            let payload = fixture_json(&name).unwrap();
            if payload.get("routeKey").is_none() {
                continue;
            }
            assert_eq!(ApiEvent::from_payload(payload.clone()).unwrap().to_value(), payload, "{name}");
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} API Gateway fixtures in {}", dir.display());
    }

    #[test]
    fn a_built_event_reads_in_lambda_http_as_sent() {
        use lambda_http::RequestExt as _;
        let e = ApiEvent::new("POST", "/v1/accounts/{email}/access")
            .param("email", "a+b@example.com")
            .query("q", "x&y=z é")
            .query("limit", "5")
            .json(&json!({"k": 1}))
            .staff("t1", "portal:read portal:write")
            .source_ip("10.1.2.3");
        let v = e.to_value();
        assert_eq!(v["rawPath"], "/v1/accounts/a%2Bb%40example.com/access");
        assert_eq!(v["routeKey"], "POST /v1/accounts/{email}/access");
        assert_eq!(v["requestContext"]["authorizer"]["jwt"]["scopes"], json!(["portal:read", "portal:write"]));
        let req = e.request();
        assert_eq!(req.path_parameters().first("email"), Some("a+b@example.com"));
        assert_eq!(req.query_string_parameters().first("q"), Some("x&y=z é"));
        assert_eq!(req.query_string_parameters().first("limit"), Some("5"));
        assert_eq!(req.body().as_ref(), br#"{"k":1}"#);
        let public = e.public().tenant("ignored").to_value();
        assert!(public["requestContext"].get("authorizer").is_none());
    }

    #[test]
    fn a_body_that_is_not_utf8_goes_as_base64() {
        let v = ApiEvent::new("PUT", "/x").body(vec![0xff, 0x00]).to_value();
        assert_eq!((v["body"].as_str(), v["isBase64Encoded"].as_bool()), (Some("/wA="), Some(true)));
        let v = ApiEvent::new("PUT", "/x").body(Vec::new()).to_value();
        assert!(v.get("body").is_none() && v["isBase64Encoded"] == false);
    }
}

/// Signs the first record of an activation-queue event (`events/activation-batch.json`)
/// now, as the service's own message for the tenant its body names, with
/// `SentTimestamp` now: the proof the activator checks (`domain::queue_proof`).
pub fn sign_activation_record(event: &mut Value, hash_key: &str) {
    use portal::domain::queue_proof::{attributes, service_key, Signer};
    let record = &mut event["Records"][0];
    let body = record["body"].as_str().unwrap_or_default().to_owned();
    let tenant = serde_json::from_str::<Value>(&body).ok().and_then(|b| b["tenant_id"].as_str().map(str::to_owned)).unwrap_or_default();
    let Ok(tenant) = portal::domain::TenantId::parse(&tenant) else { return };
    let now = chrono::Utc::now();
    record["attributes"]["SentTimestamp"] = json!(now.timestamp_millis().to_string());
    let attrs: serde_json::Map<String, Value> = attributes(&service_key(hash_key.as_bytes()), now.timestamp(), &tenant, &Signer::Service, &body)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!({"stringValue": v, "stringListValues": [], "binaryListValues": [], "dataType": "String"})))
        .collect();
    record["messageAttributes"] = attrs.into();
}
