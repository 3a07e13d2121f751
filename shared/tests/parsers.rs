//! Property tests of the request parsers (issue "Hardening", Bad input): no
//! input makes a parser panic or answer 5xx, every documented rule holds for
//! every input, and valid input round-trips.
//!
//! - Domain parsers ([`portal::domain`]): ids, email addresses, pickup codes,
//!   link tokens, names, portal settings and the activation queue's message,
//!   each checked against an oracle written from its documentation (the id
//!   pattern is read from ids.rs's own doc comment; RFC 5321 lengths;
//!   Crockford's alphabet and look-alikes).
//! - HTTP ([`portal::http::request`]): every request body type is read from a
//!   real-shaped API Gateway v2 event (events/*.json) carrying arbitrary
//!   bodies: random bytes, random JSON, valid objects with extra, retyped or
//!   truncated fields, huge strings, deep nesting, invalid UTF-8, lone
//!   surrogates. Errors must be 400, 413 or 422 problem+json; malformed JSON
//!   is 400 and well-formed JSON never is; an unknown field is named in the
//!   422; a body over the route's limit is 413 and one within it never is.
//!   Also the `limit` query parameter, path ids, the optional `portal_id`
//!   and the caller read from the authorizer's claims.
//!
//! Failing seeds proptest finds are kept in `tests/proptest-regressions/parsers.txt`
//! and replayed first on every run. Each interesting input is also an explicit
//! case in `tests/corpus/{bodies,domain}.json`, checked by the `corpus_*` tests
//! at the end. `PROPTEST_CASES=2000 cargo test -p portal-shared --test parsers`
//! hunts longer than the default counts (sized to keep a debug run short).

use base64::{engine::general_purpose::STANDARD, Engine as _};
use lambda_http::Request;
use portal::domain::email_address::EmailError;
use portal::domain::ids::IdError;
use portal::domain::job::{ActivationMessage, MessageError, Sender, CONTACTS_PER_MESSAGE, QUEUE_ACTOR};
use portal::domain::pickup_code::CodeFormatError;
use portal::domain::portal::{valid_name, PortalError, DEFAULT_CODE_TTL_HOURS, MAX_CODE_TTL_HOURS, MAX_NAME_LEN, MAX_REMINDER_DAYS};
use portal::domain::{
    CodeHasher, ContactId, EmailAddress, GroupId, JobId, LinkToken, Method, PickupCode, Portal, PortalId, Scope, TenantId,
};
use portal::http::activations::{ActivationsRequest, GroupActivateRequest, GroupRequest};
use portal::http::{admin::PortalRequest, contacts::ContactRequest};
use portal::http::claim::ClaimRequest;
use portal::http::generate::GenerateRequest;
use portal::http::lifecycle::LifecycleRequest;
use portal::http::problem::ApiError;
use portal::http::request::{caller, json_body_up_to, limit_param, optional_portal_id, path_param, MAX_BODY_BYTES, MAX_BULK_BODY_BYTES};
use portal::http::templates::{PreviewBody, TemplateBody};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::FileFailurePersistence;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

// ---------------------------------------------------------------------------
// Set-up: case counts, persistence, requests built from the event fixtures.
// ---------------------------------------------------------------------------

/// Where proptest keeps the seeds of failures it found (committed; replayed first).
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proptest-regressions/parsers.txt");

/// `cases` per property unless `PROPTEST_CASES` asks for more.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

const CLAIM_EVENT: &str = include_str!("../../events/claim.json");
const GENERATE_EVENT: &str = include_str!("../../events/generate.json");
const PUT_PORTAL_EVENT: &str = include_str!("../../events/admin-put-portal.json");
const PUT_CONTACT_EVENT: &str = include_str!("../../events/contacts-put.json");
/// A staff request (it carries the authorizer's claims); re-routed per body type.
const STAFF_EVENT: &str = include_str!("../../events/status.json");

/// The event as API Gateway's HTTP API would send it for `route`, carrying
/// `body`: as text when it is UTF-8, base64-encoded otherwise.
fn event(base: &str, route: &str, body: &[u8]) -> Value {
    let mut e: Value = serde_json::from_str(base).expect("event fixture");
    let method = route.split(' ').next().unwrap_or("POST");
    e["routeKey"] = json!(route);
    e["requestContext"]["routeKey"] = json!(route);
    e["requestContext"]["http"]["method"] = json!(method);
    match std::str::from_utf8(body) {
        Ok(text) => {
            e["body"] = json!(text);
            e["isBase64Encoded"] = json!(false);
        }
        Err(_) => {
            e["body"] = json!(STANDARD.encode(body));
            e["isBase64Encoded"] = json!(true);
        }
    }
    e
}

fn request(e: &Value) -> Request {
    lambda_http::request::from_str(&e.to_string()).expect("a valid API Gateway v2 event")
}

/// Checks an error is a client error answered as problem+json, and returns its status and detail.
fn client_error(e: ApiError) -> Result<(u16, String), TestCaseError> {
    let status = e.status().as_u16();
    prop_assert!(matches!(status, 400 | 413 | 422), "{} for {:?}", status, e);
    let detail = e.to_string();
    prop_assert!(!detail.is_empty());
    let answer = e.into_response();
    prop_assert_eq!(answer.status().as_u16(), status);
    prop_assert_eq!(answer.headers()["content-type"].to_str().unwrap(), "application/problem+json");
    let problem: Value = serde_json::from_slice(answer.body().as_ref()).expect("problem+json body");
    prop_assert_eq!(&problem["status"], &json!(status));
    prop_assert_eq!(problem["detail"].as_str(), Some(detail.as_str()));
    if status == 422 {
        prop_assert!(problem["errors"].as_array().is_some_and(|a| !a.is_empty()), "422 without field errors: {}", problem);
    }
    Ok((status, detail))
}

// ---------------------------------------------------------------------------
// Oracles: the documented rules, written independently of the parsers.
// ---------------------------------------------------------------------------

/// The id pattern exactly as ids.rs documents it, read from its doc comment.
static ID_PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    let doc = include_str!("../src/domain/ids.rs");
    let pattern = Regex::new(r"`(\^[^`]+\$)`").unwrap().captures(doc).expect("ids.rs documents its pattern")[1].to_owned();
    assert_eq!(pattern, "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "the documented id pattern changed: update the generators");
    Regex::new(&pattern).unwrap()
});

/// RFC 5322 dot-atom local part and a dotted domain of LDH labels (each ≤ 63).
static EMAIL_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    let atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
    let label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    Regex::new(&format!(r"^{atom}(?:\.{atom})*@(?:{label}\.)+{label}$")).unwrap()
});

/// What `EmailAddress::parse` must accept: the shape and RFC 5321's lengths, after trimming.
fn email_acceptable(raw: &str) -> bool {
    let t = raw.trim();
    let Some((local, domain)) = t.rsplit_once('@') else { return false };
    t.len() <= 254 && local.len() <= 64 && domain.len() <= 255 && EMAIL_SHAPE.is_match(t)
}

/// The code printed for people: two groups of five Crockford characters.
static CODE_DISPLAY: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$").unwrap());
const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What a typed code means: dashes and spaces dropped, case folded, O→0, I/L→1.
fn code_meaning(raw: &str) -> Option<String> {
    let out: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (out.chars().count() == 10 && out.chars().all(|c| CROCKFORD.contains(c))).then_some(out)
}

static TOKEN_SHAPE: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[A-Za-z0-9_-]{43}$").unwrap());

/// What `valid_name` must keep: trimmed, 1 to 200 characters, no control characters.
fn name_meaning(raw: &str) -> Option<&str> {
    let t = raw.trim();
    (!t.is_empty() && t.chars().count() <= MAX_NAME_LEN && !t.chars().any(char::is_control)).then_some(t)
}

// ---------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------

/// Any text, weighted towards the characters parsers trip on.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "(?s).{0,24}",
        "[ -~]{0,24}",
        vec(select(vec!['a', 'Z', '0', ' ', '\t', '\n', '\0', '\u{7f}', '"', '\\', '/', '#', '@', '.', '-', '_', 'é', 'ı', 'K', '\u{a0}', '\u{200b}', '\u{202e}', '\u{feff}', '😀']), 0..24)
            .prop_map(|cs| cs.into_iter().collect()),
    ]
    .boxed()
}

fn id_string() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
}

/// Arbitrary JSON: every kind of value, nested a few levels.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(vec![0u64, 1, 168, 2160, 2161, u32::MAX as u64, u32::MAX as u64 + 1]).prop_map(Value::from),
        text().prop_map(Value::String),
        select(vec!["code", "link", "individual", "organization_contact", "main", "a@b.co"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An optional field: absent, null, or a value.
fn optional<S: Strategy<Value = Value> + 'static>(s: S) -> BoxedStrategy<Option<Value>> {
    prop_oneof![Just(None), Just(Some(Value::Null)), s.prop_map(Some)].boxed()
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect::<Map<_, _>>())
}

fn string_field() -> BoxedStrategy<Value> {
    text().prop_map(Value::String).boxed()
}

fn strings_field() -> BoxedStrategy<Value> {
    vec(prop_oneof![id_string().boxed(), text()], 0..8).prop_map(|v| json!(v)).boxed()
}

fn method_field() -> BoxedStrategy<Value> {
    select(vec!["code", "link"]).prop_map(Value::from).boxed()
}

fn u32_field() -> BoxedStrategy<Value> {
    any::<u32>().prop_map(Value::from).boxed()
}

fn bool_field() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::Bool).boxed()
}

// ---------------------------------------------------------------------------
// The request body types and how each handler reads them.
// ---------------------------------------------------------------------------

/// A request body type, read the way its handler reads it.
trait RequestBody: DeserializeOwned + std::fmt::Debug {
    /// The event fixture and route the body arrives with.
    const EVENT: &'static str;
    const ROUTE: &'static str;
    /// Whether the handler reads an empty body as `{}` (its `json_body(req, true)`).
    const EMPTY_OK: bool;
    /// The handler's size limit.
    const MAX: usize;
    const FIELDS: &'static [&'static str];
    /// A string field, for huge strings and escapes.
    const TEXT_FIELD: &'static str;
    /// Bodies of the right shape (any values the type takes).
    fn valid() -> BoxedStrategy<Value>;
    /// Whether the parsed body holds what the JSON said.
    fn matches(&self, json: &Value) -> bool;
}

/// Bodies above this travel in the event too, but are swapped into the built
/// request instead: the event's JSON round trip of a 1 MiB body is slow in
/// debug and the conversion is already exercised by every smaller body.
const SWAP_ABOVE: usize = 16 * 1024;

fn read<T: RequestBody>(body: &[u8]) -> Result<T, ApiError> {
    let req = if body.len() > SWAP_ABOVE {
        let mut req = request(&event(T::EVENT, T::ROUTE, b"{}"));
        *req.body_mut() = match std::str::from_utf8(body) {
            Ok(text) => lambda_http::Body::Text(text.to_owned()),
            Err(_) => lambda_http::Body::Binary(body.to_vec()),
        };
        req
    } else {
        request(&event(T::EVENT, T::ROUTE, body))
    };
    json_body_up_to(&req, T::EMPTY_OK, T::MAX)
}

fn s<'a>(j: &'a Value, k: &str) -> Option<&'a str> {
    j.get(k).and_then(Value::as_str)
}
fn flag(j: &Value, k: &str, default: bool) -> bool {
    j.get(k).and_then(Value::as_bool).unwrap_or(default)
}
fn number(j: &Value, k: &str) -> Option<u32> {
    j.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
}
fn strings(j: &Value, k: &str) -> Vec<String> {
    j.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}
fn same<T: Serialize>(v: &T, j: &Value, k: &str) -> bool {
    serde_json::to_value(v).ok().as_ref() == j.get(k)
}

impl RequestBody for ClaimRequest {
    const EVENT: &'static str = CLAIM_EVENT;
    const ROUTE: &'static str = "POST /v1/claim";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["code", "token", "email", "portal_id"];
    const TEXT_FIELD: &'static str = "email";
    fn valid() -> BoxedStrategy<Value> {
        (optional(string_field()), optional(string_field()), string_field(), optional(string_field()))
            .prop_map(|(code, token, email, portal_id)| {
                object(vec![("code", code), ("token", token), ("email", Some(email)), ("portal_id", portal_id)])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.code.as_deref() == s(j, "code")
            && self.token.as_deref() == s(j, "token")
            && self.email.as_deref() == s(j, "email")
            && self.portal_id.as_deref() == s(j, "portal_id")
    }
}

impl RequestBody for GenerateRequest {
    const EVENT: &'static str = GENERATE_EVENT;
    const ROUTE: &'static str = "POST /v1/contacts/{contact_id}/codes";
    const EMPTY_OK: bool = true;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["portal_id", "send_email"];
    const TEXT_FIELD: &'static str = "portal_id";
    fn valid() -> BoxedStrategy<Value> {
        (optional(string_field()), prop::option::of(bool_field()))
            .prop_map(|(portal_id, send_email)| object(vec![("portal_id", portal_id), ("send_email", send_email)]))
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.portal_id.as_deref() == s(j, "portal_id") && self.send_email == flag(j, "send_email", false)
    }
}

impl RequestBody for PortalRequest {
    const EVENT: &'static str = PUT_PORTAL_EVENT;
    const ROUTE: &'static str = "PUT /v1/portals/{portal_id}";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &[
        "name",
        "default",
        "claim_url",
        "code_ttl_hours",
        "link_ttl_hours",
        "auto_generate",
        "auto_email",
        "reminder_days_before_expiry",
    ];
    const TEXT_FIELD: &'static str = "claim_url";
    fn valid() -> BoxedStrategy<Value> {
        (
            (string_field(), bool_field(), string_field()),
            (optional(u32_field()), optional(u32_field()), optional(u32_field())),
            (prop::option::of(bool_field()), prop::option::of(bool_field())),
        )
            .prop_map(|((name, default, claim_url), (code_ttl, link_ttl, reminder), (auto_generate, auto_email))| {
                object(vec![
                    ("name", Some(name)),
                    ("default", Some(default)),
                    ("claim_url", Some(claim_url)),
                    ("code_ttl_hours", code_ttl),
                    ("link_ttl_hours", link_ttl),
                    ("reminder_days_before_expiry", reminder),
                    ("auto_generate", auto_generate),
                    ("auto_email", auto_email),
                ])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        Some(self.name.as_str()) == s(j, "name")
            && Some(self.default) == j["default"].as_bool()
            && self.claim_url.as_deref() == s(j, "claim_url")
            && self.code_ttl_hours == number(j, "code_ttl_hours")
            && self.link_ttl_hours == number(j, "link_ttl_hours")
            && self.reminder_days_before_expiry == number(j, "reminder_days_before_expiry")
            && self.auto_generate == flag(j, "auto_generate", false)
            && self.auto_email == flag(j, "auto_email", false)
    }
}

impl RequestBody for ContactRequest {
    const EVENT: &'static str = PUT_CONTACT_EVENT;
    const ROUTE: &'static str = "PUT /v1/contacts/{contact_id}";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["name", "email", "kind", "portal_ids"];
    const TEXT_FIELD: &'static str = "name";
    fn valid() -> BoxedStrategy<Value> {
        (string_field(), optional(string_field()), select(vec!["individual", "organization_contact"]), prop::option::of(strings_field()))
            .prop_map(|(name, email, kind, portal_ids)| {
                object(vec![("name", Some(name)), ("email", email), ("kind", Some(json!(kind))), ("portal_ids", portal_ids)])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        Some(self.name.as_str()) == s(j, "name")
            && self.email.as_deref() == s(j, "email")
            && same(&self.kind, j, "kind")
            && self.portal_ids == strings(j, "portal_ids")
    }
}

impl RequestBody for ActivationsRequest {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "POST /v1/activations";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BULK_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["contact_ids", "portal_id", "method", "send_email"];
    const TEXT_FIELD: &'static str = "portal_id";
    fn valid() -> BoxedStrategy<Value> {
        (strings_field(), optional(string_field()), method_field(), prop::option::of(bool_field()))
            .prop_map(|(contact_ids, portal_id, method, send_email)| {
                object(vec![("contact_ids", Some(contact_ids)), ("portal_id", portal_id), ("method", Some(method)), ("send_email", send_email)])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.contact_ids == strings(j, "contact_ids")
            && self.portal_id.as_deref() == s(j, "portal_id")
            && same(&self.method, j, "method")
            && self.send_email == flag(j, "send_email", true)
    }
}

impl RequestBody for GroupRequest {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "PUT /v1/groups/{group_id}";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BULK_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["name", "contact_ids"];
    const TEXT_FIELD: &'static str = "name";
    fn valid() -> BoxedStrategy<Value> {
        (string_field(), strings_field())
            .prop_map(|(name, contact_ids)| object(vec![("name", Some(name)), ("contact_ids", Some(contact_ids))]))
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        Some(self.name.as_str()) == s(j, "name") && self.contact_ids == strings(j, "contact_ids")
    }
}

impl RequestBody for GroupActivateRequest {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "POST /v1/groups/{group_id}/activate";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["portal_id", "method", "send_email"];
    const TEXT_FIELD: &'static str = "portal_id";
    fn valid() -> BoxedStrategy<Value> {
        (optional(string_field()), method_field(), prop::option::of(bool_field()))
            .prop_map(|(portal_id, method, send_email)| {
                object(vec![("portal_id", portal_id), ("method", Some(method)), ("send_email", send_email)])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.portal_id.as_deref() == s(j, "portal_id") && same(&self.method, j, "method") && self.send_email == flag(j, "send_email", true)
    }
}

impl RequestBody for LifecycleRequest {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "POST /v1/contacts/{contact_id}/portal/activate";
    const EMPTY_OK: bool = true;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["portal_id"];
    const TEXT_FIELD: &'static str = "portal_id";
    fn valid() -> BoxedStrategy<Value> {
        optional(string_field()).prop_map(|portal_id| object(vec![("portal_id", portal_id)])).boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.portal_id.as_deref() == s(j, "portal_id")
    }
}

impl RequestBody for TemplateBody {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "PUT /v1/portals/{portal_id}/templates/{kind}";
    const EMPTY_OK: bool = false;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["subject", "text", "html"];
    const TEXT_FIELD: &'static str = "html";
    fn valid() -> BoxedStrategy<Value> {
        (string_field(), string_field(), string_field())
            .prop_map(|(subject, text, html)| object(vec![("subject", Some(subject)), ("text", Some(text)), ("html", Some(html))]))
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        Some(self.subject.as_str()) == s(j, "subject") && Some(self.text.as_str()) == s(j, "text") && Some(self.html.as_str()) == s(j, "html")
    }
}

impl RequestBody for PreviewBody {
    const EVENT: &'static str = STAFF_EVENT;
    const ROUTE: &'static str = "POST /v1/portals/{portal_id}/templates/{kind}/preview";
    const EMPTY_OK: bool = true;
    const MAX: usize = MAX_BODY_BYTES;
    const FIELDS: &'static [&'static str] = &["subject", "text", "html", "vars"];
    const TEXT_FIELD: &'static str = "text";
    fn valid() -> BoxedStrategy<Value> {
        (optional(string_field()), optional(string_field()), optional(string_field()), prop::option::of(btree_map(text(), text(), 0..5)))
            .prop_map(|(subject, text, html, vars)| {
                object(vec![("subject", subject), ("text", text), ("html", html), ("vars", vars.map(|v| json!(v)))])
            })
            .boxed()
    }
    fn matches(&self, j: &Value) -> bool {
        self.subject.as_deref() == s(j, "subject")
            && self.text.as_deref() == s(j, "text")
            && self.html.as_deref() == s(j, "html")
            && (same(&self.vars, j, "vars") || (self.vars.is_empty() && j.get("vars").is_none()))
    }
}

// ---------------------------------------------------------------------------
// Bodies: arbitrary, and the checks every body type must pass.
// ---------------------------------------------------------------------------

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xc3",                 // a lead byte with no continuation
    b"\xc0\x80",             // overlong NUL
    b"\xed\xa0\x80",         // an encoded surrogate
    b"\xf4\x90\x80\x80",     // above U+10FFFF
    b"\x80\x80",             // stray continuations
];
const BAD_ESCAPES: &[&str] = &[r"\ud800", r"\udc00x", r"\ud83d\u0041", r"\u12", r"\x41", r"\u0000", r"\uDBFF\uDFFF"];
const FILL: &[&str] = &["a", "é", "\"", "\u{0}", "😀", " "];

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn with_field(mut json: Value, field: &str, value: Value) -> Value {
    json.as_object_mut().expect("bodies are objects").insert(field.to_owned(), value);
    json
}

/// `depth` levels of arrays or objects, closed or not, alone or as a field's value.
fn nested(depth: usize, shape: u8, closed: bool, field: &str) -> Vec<u8> {
    let (open, leaf, close) = match shape % 3 {
        0 => ("[", "", "]"),
        1 => (r#"{"a":"#, "1", "}"),
        _ => (r#"[{"":"#, "null", "}]"),
    };
    let mut inner = open.repeat(depth) + leaf;
    if closed {
        inner += &close.repeat(depth);
    }
    let body = if shape >= 3 { format!(r#"{{"{field}":{inner}}}"#) } else { inner };
    body.into_bytes()
}

fn arbitrary_body<T: RequestBody>() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..256),
        1 => vec(select(b" \t\r\n\x0c".to_vec()), 0..32),
        3 => json_value().prop_map(|v| to_bytes(&v)),
        3 => (T::valid(), select(T::FIELDS), json_value()).prop_map(|(j, f, v)| to_bytes(&with_field(j, f, v))),
        2 => (T::valid(), text(), json_value()).prop_map(|(j, f, v)| to_bytes(&with_field(j, &f, v))),
        2 => (T::valid(), any::<Index>()).prop_map(|(j, at)| {
            let b = to_bytes(&j);
            b[..at.index(b.len() + 1)].to_vec()
        }),
        2 => (T::valid(), any::<Index>(), select(INVALID_UTF8)).prop_map(|(j, at, bad)| {
            let mut b = to_bytes(&j);
            b.splice(at.index(b.len() + 1)..at.index(b.len() + 1), bad.iter().copied());
            b
        }),
        1 => (T::valid(), select(BAD_ESCAPES)).prop_map(|(j, esc)| {
            let marker = "\u{1F9EA}MARK";
            serde_json::to_string(&with_field(j, T::TEXT_FIELD, json!(marker))).unwrap().replace(marker, esc).into_bytes()
        }),
        1 => (1usize..12_000, 0u8..6, any::<bool>()).prop_map(|(depth, shape, closed)| nested(depth, shape, closed, T::TEXT_FIELD)),
        1 => (T::valid(), (T::MAX - 512)..(T::MAX + 512), select(FILL)).prop_map(|(j, len, fill)| {
            let width = serde_json::to_string(fill).unwrap().len() - 2;
            to_bytes(&with_field(j, T::TEXT_FIELD, json!(fill.repeat(len / width))))
        }),
    ]
    .boxed()
}

/// Any body: parsed, or refused with 400 (malformed), 413 (too large) or 422 (wrong shape).
/// Well-formed means RFC 8259 JSON: UTF-8, no lone surrogates.
fn answered<T: RequestBody>(body: &[u8]) -> Result<(), TestCaseError> {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    let json = serde_json::from_slice::<Value>(body).ok();
    match read::<T>(body) {
        Ok(parsed) => {
            prop_assert!(body.len() <= T::MAX, "{} bytes parsed over the {} limit", body.len(), T::MAX);
            match &json {
                Some(json) => prop_assert!(json.is_object() && parsed.matches(json), "{:?} does not hold {}", parsed, json),
                None => prop_assert!(blank && T::EMPTY_OK, "malformed body accepted"),
            }
        }
        Err(e) => {
            let (status, detail) = client_error(e)?;
            prop_assert_eq!(status == 413, body.len() > T::MAX, "413 exactly when the body is over the limit ({})", detail);
            if status != 413 {
                if blank {
                    prop_assert!(!T::EMPTY_OK && status == 400, "blank body: {} {}", status, detail);
                } else if json.is_some() {
                    prop_assert!(status == 422, "well-formed JSON answered {}: {}", status, detail);
                }
            }
        }
    }
    Ok(())
}

macro_rules! body_properties {
    ($($module:ident: $ty:ty,)*) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(config(96))]

                #[test]
                fn any_body_is_parsed_or_refused_with_a_client_error(body in arbitrary_body::<$ty>()) {
                    answered::<$ty>(&body)?;
                }

                #[test]
                fn valid_bodies_round_trip(json in <$ty as RequestBody>::valid(), pad in "[ \t\r\n]{0,3}") {
                    let body = format!("{pad}{json}{pad}");
                    let parsed: $ty = read::<$ty>(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?} for {body}")))?;
                    prop_assert!(parsed.matches(&json), "{:?} does not hold {}", parsed, json);
                }

                #[test]
                fn an_unknown_field_is_refused_by_name(
                    json in <$ty as RequestBody>::valid(),
                    name in text().prop_filter("a known field", |n| !<$ty as RequestBody>::FIELDS.contains(&n.as_str())),
                    value in json_value(),
                ) {
                    let body = to_bytes(&with_field(json, &name, value));
                    let e = read::<$ty>(&body).err().ok_or_else(|| TestCaseError::fail(format!("unknown field {name:?} accepted")))?;
                    let (status, detail) = client_error(e)?;
                    prop_assert_eq!(status, 422);
                    prop_assert!(detail.contains(&format!("unknown field `{name}`")), "{} does not name {:?}", detail, name);
                }

                #[test]
                fn a_field_of_another_type_is_422(json in <$ty as RequestBody>::valid(), field in select(<$ty as RequestBody>::FIELDS), value in json_value()) {
                    let json = with_field(json, field, value);
                    match read::<$ty>(&to_bytes(&json)) {
                        Ok(parsed) => prop_assert!(parsed.matches(&json), "{:?} does not hold {}", parsed, json),
                        Err(e) => {
                            let (status, detail) = client_error(e)?;
                            prop_assert!(status == 422, "{} {}", status, detail);
                        }
                    }
                }
            }

            proptest! {
                #![proptest_config(config(8))]

                /// The limit is exact: a valid body padded to the limit parses, one byte more is 413.
                #[test]
                fn the_size_limit_is_exact(json in <$ty as RequestBody>::valid(), over in 1usize..2048) {
                    let mut body = to_bytes(&json);
                    body.resize(<$ty as RequestBody>::MAX, b' ');
                    let parsed = read::<$ty>(&body).map_err(|e| TestCaseError::fail(format!("{e:?} at the limit")))?;
                    prop_assert!(parsed.matches(&json));
                    body.resize(<$ty as RequestBody>::MAX + over, b' ');
                    let e = read::<$ty>(&body).err().ok_or_else(|| TestCaseError::fail("over the limit accepted"))?;
                    prop_assert_eq!(client_error(e)?.0, 413);
                }
            }
        }
    )*};
}

body_properties! {
    claim_request: ClaimRequest,
    generate_request: GenerateRequest,
    portal_request: PortalRequest,
    contact_request: ContactRequest,
    activations_request: ActivationsRequest,
    group_request: GroupRequest,
    group_activate_request: GroupActivateRequest,
    lifecycle_request: LifecycleRequest,
    template_body: TemplateBody,
    preview_body: PreviewBody,
}

// ---------------------------------------------------------------------------
// Query, path and context parsing.
// ---------------------------------------------------------------------------

/// Percent-encodes everything but unreserved characters, as a careful client would.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn with_query(raw_query: &str) -> Request {
    let mut e = event(STAFF_EVENT, "GET /v1/contacts", b"");
    e["rawQueryString"] = json!(raw_query);
    request(&e)
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn limit_is_a_whole_number_in_range_or_422(raw in prop_oneof![text(), "[+-]?[0-9]{1,22}", Just(String::new())], max in 1usize..1000) {
        let default = max.div_ceil(2);
        match limit_param(&with_query(&format!("limit={}", percent_encode(&raw))), default, max) {
            Ok(n) => prop_assert_eq!(Ok(n), raw.parse::<usize>().map_err(drop).and_then(|n| if (1..=max).contains(&n) { Ok(n) } else { Err(()) })),
            Err(e) => {
                prop_assert!(raw.parse::<usize>().map_or(true, |n| !(1..=max).contains(&n)), "{:?} refused", raw);
                let (status, detail) = client_error(e)?;
                prop_assert_eq!(status, 422);
                prop_assert!(detail.contains("limit"));
            }
        }
    }

    #[test]
    fn limit_round_trips_and_defaults(max in 1usize..1000, pick in any::<Index>(), other in "[a-z_]{1,8}") {
        let n = pick.index(max) + 1;
        prop_assert_eq!(limit_param(&with_query(&format!("limit={n}")), 7, max).unwrap(), n);
        prop_assume!(other != "limit");
        prop_assert_eq!(limit_param(&with_query(&format!("{other}=3")), 7, max).unwrap(), 7);
    }

    /// Any query string API Gateway can hand over (lambda_http itself refuses
    /// spaces, `"`, `<`, `>` and controls in `rawQueryString`: see the report).
    #[test]
    fn any_query_string_is_answered(raw in prop_oneof!["[!#-;=?-~]{0,30}".boxed(), "[a-z=&%0-9+;]{0,30}".boxed(), "limit=[^ -\\x7f\\p{Cc}]{0,4}".boxed()]) {
        if let Err(e) = limit_param(&with_query(&raw), 10, 500) {
            prop_assert_eq!(client_error(e)?.0, 422);
        }
    }

    #[test]
    fn path_ids_parse_or_name_the_parameter_in_a_400(raw in prop_oneof![text(), id_string().boxed()]) {
        let mut e = event(STAFF_EVENT, "GET /v1/portals/{portal_id}", b"");
        e["pathParameters"] = json!({ "portal_id": raw });
        match path_param(&request(&e), "portal_id", PortalId::parse) {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), raw.as_str());
                prop_assert!(ID_PATTERN.is_match(&raw));
            }
            Err(err) => {
                prop_assert!(!ID_PATTERN.is_match(&raw), "{:?} refused", raw);
                let (status, detail) = client_error(err)?;
                prop_assert_eq!(status, 400);
                prop_assert!(detail.contains("portal_id"), "{}", detail);
            }
        }
        let missing = path_param(&request(&event(STAFF_EVENT, "GET /v1/portals", b"")), "portal_id", PortalId::parse);
        prop_assert_eq!(client_error(missing.unwrap_err())?.0, 400);
    }

    #[test]
    fn an_optional_portal_id_is_an_id_or_a_422_at_its_pointer(raw in prop::option::of(prop_oneof![text(), id_string().boxed()])) {
        match optional_portal_id(raw.as_deref()) {
            Ok(id) => prop_assert_eq!(id.as_ref().map(PortalId::as_str), raw.as_deref()),
            Err(e) => {
                prop_assert!(raw.as_deref().is_some_and(|r| !ID_PATTERN.is_match(r)));
                let ApiError::Validation { errors, .. } = &e else { return Err(TestCaseError::fail(format!("{e:?}"))) };
                prop_assert_eq!(errors[0].pointer.as_str(), "/portal_id");
                prop_assert_eq!(client_error(e)?.0, 422);
            }
        }
    }

    /// The authorizer's claims: a valid tenant and subject are required (401),
    /// the scope must cover the operation (403); nothing else is possible.
    #[test]
    fn the_caller_is_read_from_any_claims(
        sub in prop::option::of(prop_oneof![text(), Just("staff-1".to_owned())]),
        tenant in prop::option::of(prop_oneof![text(), id_string().boxed()]),
        scope in prop::option::of(prop_oneof![text(), "(portal:(access|read|write|admin)|openid|\\[|\\]|,| ){0,6}"]),
        needed in select(Scope::ALL.to_vec()),
    ) {
        let mut e = event(STAFF_EVENT, "GET /v1/portals", b"");
        let mut claims = Map::new();
        for (k, v) in [("sub", &sub), ("tenant_id", &tenant), ("scope", &scope)] {
            if let Some(v) = v {
                claims.insert(k.to_owned(), json!(v));
            }
        }
        e["requestContext"]["authorizer"]["jwt"]["claims"] = Value::Object(claims);
        let identified = sub.as_deref().is_some_and(|s| !s.is_empty()) && tenant.as_deref().is_some_and(|t| ID_PATTERN.is_match(t));
        match caller(&request(&e), needed) {
            Ok(c) => {
                prop_assert!(identified);
                prop_assert_eq!(Some(c.tenant_id.as_str()), tenant.as_deref());
                prop_assert_eq!(Some(c.sub.as_str()), sub.as_deref());
                let granted = scope.as_deref().unwrap_or_default();
                // Some scope named in the claim covers the route: the staff chain, and every staff scope the login check.
                let covering: Vec<Scope> = match needed {
                    Scope::Access => Scope::ALL.to_vec(),
                    staff => [Scope::Read, Scope::Write, Scope::Admin].into_iter().filter(|s| *s >= staff).collect(),
                };
                let named: Vec<&str> = granted.trim_matches(|c| c == '[' || c == ']').split([' ', ',']).collect();
                prop_assert!(covering.iter().any(|s| named.contains(&s.as_str())), "{:?} granted {:?}", granted, needed);
            }
            Err(err) => {
                let status = err.status().as_u16();
                prop_assert!(if identified { status == 403 } else { status == 401 }, "{} for {:?}", status, err);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Domain parsers.
// ---------------------------------------------------------------------------

/// The five id types parse alike; returns the displayed form if accepted.
fn parse_all_ids(raw: &str) -> Result<String, IdError> {
    let tenant = TenantId::parse(raw).map(|i| i.to_string());
    let others = [
        ContactId::parse(raw).map(|i| i.to_string()),
        PortalId::parse(raw).map(|i| i.to_string()),
        GroupId::parse(raw).map(|i| i.to_string()),
        JobId::parse(raw).map(|i| i.to_string()),
    ];
    assert!(others.iter().all(|o| *o == tenant), "the id types disagree on {raw:?}");
    let via_serde = serde_json::from_value::<ContactId>(json!(raw)).map(String::from);
    assert_eq!(via_serde.is_ok(), tenant.is_ok(), "serde and parse disagree on {raw:?}");
    tenant
}

/// A typed version of a canonical code: random case, look-alikes, dashes and spaces.
fn noisy_code() -> impl Strategy<Value = (String, String)> {
    ("[0-9A-HJKMNP-TV-Z]{10}", vec((any::<bool>(), 0usize..3, select(vec!["", "", "-", " ", "--", " - "])), 10), select(vec!["", " ", "-"]))
        .prop_map(|(canonical, noise, lead)| {
            let mut typed = lead.to_owned();
            for (c, (lower, look, sep)) in canonical.chars().zip(noise) {
                let c = match (c, look) {
                    ('0', 1) => 'O',
                    ('1', 1) => 'I',
                    ('1', 2) => 'L',
                    (c, _) => c,
                };
                typed.push(if lower { c.to_ascii_lowercase() } else { c });
                typed.push_str(sep);
            }
            (canonical, typed)
        })
}

fn email_parts() -> impl Strategy<Value = (String, String)> {
    (
        vec("[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}", 1..5).prop_map(|a| a.join(".")),
        vec("[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", 2..5).prop_map(|l| l.join(".")),
    )
}

/// Addresses near the edge: valid ones with one character inserted, or with noise around.
fn email_like() -> BoxedStrategy<String> {
    let tricky = vec!['@', '.', '-', ' ', '\n', '\0', 'É', 'ß', '"', '(', ',', ';', '<', '[', '\u{a0}', '\u{3000}', '\u{feff}', '_', '+'];
    prop_oneof![
        text(),
        (email_parts(), any::<Index>(), select(tricky)).prop_map(|((l, d), at, c)| {
            let mut e = format!("{l}@{d}");
            let i = at.index(e.len() + 1);
            e.insert(i, c);
            e
        }),
        (email_parts(), select(vec!["", " ", "\t", "\n", "\u{a0}", "\u{2003}", "\r\n"])).prop_map(|((l, d), ws)| format!("{ws}{l}@{d}{ws}")),
        ("[a-z]{50,80}", "[a-z]{1,63}(\\.[a-z]{1,63}){1,5}").prop_map(|(l, d)| format!("{l}@{d}")),
    ]
    .boxed()
}

fn claim_url() -> BoxedStrategy<String> {
    prop_oneof![
        text(),
        "https?://[a-z0-9.-]{0,12}(:[0-9]{0,5})?(/[a-z0-9/._~%-]{0,16})?(\\?[a-z=&]{0,10})?(#[a-z/?=]{0,8})?",
        ("(https?|HTTPS|ftp|javascript):(//)?", text()).prop_map(|(a, b)| a + &b),
        (select(vec!["https://", "http://", " https://x.example ", "https://@", "https://:443", "https://user@", "https://[", "https://[]/"]), text())
            .prop_map(|(a, b)| a.to_owned() + &b),
        (Just("https://x.example/"), 2030usize..2070).prop_map(|(a, n)| a.to_owned() + &"p".repeat(n)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ids_match_the_documented_pattern_and_redisplay_identically(raw in prop_oneof![id_string().boxed(), text(), "[A-Za-z0-9._#/ -]{60,70}".boxed()]) {
        match parse_all_ids(&raw) {
            Ok(shown) => {
                prop_assert!(ID_PATTERN.is_match(&raw), "{:?} accepted", raw);
                prop_assert_eq!(&shown, &raw);
                let back: PortalId = serde_json::from_value(serde_json::to_value(PortalId::parse(&raw).unwrap()).unwrap()).unwrap();
                prop_assert_eq!(back.as_str(), raw.as_str());
            }
            Err(e) => {
                prop_assert!(!ID_PATTERN.is_match(&raw), "{:?} refused: {}", raw, e);
                let want = if raw.is_empty() { IdError::Empty } else if raw.len() > 64 { IdError::TooLong } else { IdError::BadCharacter };
                prop_assert_eq!(e, want);
            }
        }
    }

    #[test]
    fn emails_are_accepted_exactly_as_documented(raw in email_like()) {
        let parsed = EmailAddress::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), email_acceptable(&raw), "{:?}: {:?}", raw, parsed);
        let t = raw.trim();
        match parsed {
            Ok(email) => {
                prop_assert_eq!(email.as_str(), t.to_ascii_lowercase());
                let again = EmailAddress::parse(email.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&email), "parsing is idempotent");
                let back: EmailAddress = serde_json::from_value(serde_json::to_value(&email).unwrap()).unwrap();
                prop_assert_eq!(back, email);
            }
            Err(e) => {
                let (local, domain) = t.rsplit_once('@').unwrap_or(("", ""));
                let too_long = t.len() > 254 || (t.contains('@') && (local.len() > 64 || domain.len() > 255));
                prop_assert_eq!(e == EmailError::TooLong, too_long, "{:?}: {:?}", raw, e);
            }
        }
    }

    #[test]
    fn valid_emails_round_trip_whatever_their_case(((local, domain), flips) in (email_parts(), vec(any::<bool>(), 64))) {
        let raw: String = format!("{local}@{domain}").chars().zip(flips.into_iter().cycle())
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        let email = EmailAddress::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
        prop_assert_eq!(email.as_str(), format!("{local}@{domain}").to_ascii_lowercase());
    }

    #[test]
    fn emails_over_rfc_5321_lengths_are_refused(
        local_len in 1usize..120,
        labels in vec(1usize..=63, 1..6),
        tld in "[a-z]{2,6}",
    ) {
        let domain = labels.iter().map(|n| "d".repeat(*n)).chain(std::iter::once(tld)).collect::<Vec<_>>().join(".");
        let raw = format!("{}@{domain}", "l".repeat(local_len));
        let over = local_len > 64 || domain.len() > 255 || raw.len() > 254;
        prop_assert_eq!(EmailAddress::parse(&raw).err() == Some(EmailError::TooLong), over, "{} octets, local {}, domain {}", raw.len(), local_len, domain.len());
        prop_assert_eq!(EmailAddress::parse(&raw).is_ok(), !over);
    }

    #[test]
    fn a_typed_code_means_its_canonical_code((canonical, typed) in noisy_code()) {
        let code = PickupCode::parse(&typed).map_err(|e| TestCaseError::fail(format!("{typed:?}: {e}")))?;
        let shown = code.display();
        prop_assert_eq!(shown.replace('-', ""), canonical);
        prop_assert!(CODE_DISPLAY.is_match(&shown));
        prop_assert_eq!(PickupCode::parse(&shown), Ok(code.clone()));
        let hasher = CodeHasher::new("k");
        prop_assert_eq!(hasher.hash(&PickupCode::parse(&shown.to_lowercase()).unwrap()), hasher.hash(&code));
    }

    #[test]
    fn codes_are_accepted_exactly_as_documented(raw in prop_oneof![
        text(),
        noisy_code().prop_map(|(_, t)| t),
        (noisy_code(), any::<Index>(), select(vec!['U', 'u', '!', 'é', '\u{a0}', '0', '-', '\n', '\u{0130}', '\u{212a}'])).prop_map(|((_, t), at, c)| {
            let mut t: Vec<char> = t.chars().collect();
            t.insert(at.index(t.len() + 1), c);
            t.into_iter().collect()
        }),
    ]) {
        let parsed = PickupCode::parse(&raw);
        prop_assert_eq!(parsed.as_ref().ok().map(|c| c.display().replace('-', "")), code_meaning(&raw), "{:?}", raw);
        if let Err(e) = parsed {
            prop_assert!(matches!(e, CodeFormatError::Length | CodeFormatError::Character));
        }
        let generated = PickupCode::generate();
        prop_assert_eq!(PickupCode::parse(&generated.display()), Ok(generated));
    }

    #[test]
    fn link_tokens_are_43_url_safe_characters(raw in prop_oneof![
        text(),
        "[A-Za-z0-9_-]{40,46}",
        ("[ \t\n]{0,2}", "[A-Za-z0-9_+/=-]{43}", "[ \t\n]{0,2}").prop_map(|(a, b, c)| a + &b + &c),
    ]) {
        match LinkToken::parse(&raw) {
            Ok(t) => {
                prop_assert!(TOKEN_SHAPE.is_match(t.expose()));
                prop_assert_eq!(t.expose(), raw.trim());
                prop_assert_eq!(LinkToken::parse(t.expose()), Ok(t.clone()));
            }
            Err(_) => prop_assert!(!TOKEN_SHAPE.is_match(raw.trim()), "{:?} refused", raw),
        }
        let fresh = LinkToken::generate();
        prop_assert_eq!(LinkToken::parse(fresh.expose()), Ok(fresh));
    }

    #[test]
    fn names_are_trimmed_and_at_most_200_characters(raw in prop_oneof![
        text(),
        ("[ \t]{0,2}", "[^\\p{Cc}]{195,205}", "[ \n]{0,2}").prop_map(|(a, b, c)| a + &b + &c),
        ("[^\\p{Cc}]{1,100}", "\\p{Cc}", "[^\\p{Cc}]{1,100}").prop_map(|(a, b, c)| a + &b + &c),
    ]) {
        let kept = valid_name(&raw);
        prop_assert_eq!(kept.as_deref(), name_meaning(&raw), "{:?}", raw);
    }

    /// Portal settings: accepted settings obey every documented bound (and
    /// make working links); refused ones name the field that broke its rule.
    #[test]
    fn portal_settings_are_checked_field_by_field(
        name in prop_oneof![text(), "[a-zA-Z ]{1,210}".boxed()],
        url in claim_url(),
        code_ttl in prop::option::of(prop_oneof![0u32..2200, any::<u32>()]),
        link_ttl in prop::option::of(prop_oneof![0u32..2200, any::<u32>()]),
        reminder in prop::option::of(0u32..100),
        default in any::<bool>(),
    ) {
        let id = PortalId::parse("main").unwrap();
        let name_ok = name_meaning(&name).is_some();
        let t = url.trim();
        // Empty is no claim_url at all: the hosted page.
        // In AWS: https as the WHATWG parser reads it (the reading a browser gives the link), a host, no credentials.
        let url_ok = t.is_empty()
            || t.len() <= 2048
                && !t.chars().any(|c| c.is_whitespace() || c.is_control())
                && url::Url::parse(t).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) && u.username().is_empty() && u.password().is_none());
        let ttl_ok = |t: Option<u32>| (1..=MAX_CODE_TTL_HOURS).contains(&t.unwrap_or(DEFAULT_CODE_TTL_HOURS));
        let reminder_ok = reminder.is_none_or(|d| (1..=MAX_REMINDER_DAYS).contains(&d));
        let result = Portal::new(id, &name, default, Some(&url), code_ttl, link_ttl, portal::domain::web_url::Deployment::Aws).and_then(|p| p.with_automation(true, false, reminder));
        match result {
            Ok(p) => {
                prop_assert!(name_ok && url_ok && ttl_ok(code_ttl) && ttl_ok(link_ttl) && reminder_ok, "accepted {:?}", p);
                prop_assert_eq!(Some(p.name.as_str()), name_meaning(&name));
                prop_assert_eq!(p.claim_url.as_deref(), Some(t).filter(|t| !t.is_empty()));
                prop_assert_eq!(p.code_ttl_hours, code_ttl.unwrap_or(DEFAULT_CODE_TTL_HOURS));
                prop_assert_eq!(p.link_ttl_hours, link_ttl.unwrap_or(DEFAULT_CODE_TTL_HOURS));
                prop_assert_eq!(p.reminder_days_before_expiry, reminder);
                let back: Portal = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
                prop_assert_eq!(&back, &p);
                if let Some(claim_url) = p.claim_url.as_deref().filter(|u| !u.contains('#')) {
                    // The activation link carries the token as a query parameter of the claim URL.
                    let token = LinkToken::parse(&"T".repeat(43)).unwrap();
                    let link = token.link(claim_url);
                    let query = link.split_once('?').map(|(_, q)| q).unwrap_or("");
                    prop_assert!(link.starts_with(claim_url));
                    prop_assert!(query.split('&').any(|kv| kv == format!("token={}", token.expose())), "{}", link);
                }
            }
            Err(e) => {
                let broken = match e {
                    PortalError::Name => !name_ok,
                    PortalError::ClaimUrl => !url_ok,
                    PortalError::CodeTtl => !ttl_ok(code_ttl),
                    PortalError::LinkTtl => !ttl_ok(link_ttl),
                    PortalError::ReminderDays => !reminder_ok,
                };
                prop_assert!(broken, "{:?} refused with {:?}", (&name, &url, code_ttl, link_ttl, reminder), e);
                prop_assert!(e.to_string().starts_with(&format!("{}:", &e.pointer()[1..])), "{} does not name {}", e, e.pointer());
                let as_problem = ApiError::validation(e.pointer(), e.to_string());
                prop_assert_eq!(client_error(as_problem)?.0, 422);
            }
        }
    }
}

/// A queue message from its parts (absent optional fields left out).
#[allow(clippy::too_many_arguments)]
fn message(tenant: &str, job: &str, portal: Option<&str>, method: &str, send: Option<bool>, ids: &[String], total: Option<u32>, actor: Option<&str>) -> Value {
    object(vec![
        ("version", Some(json!(1))),
        ("tenant_id", Some(json!(tenant))),
        ("job_id", Some(json!(job))),
        ("portal_id", portal.map(|p| json!(p))),
        ("method", Some(json!(method))),
        ("send_email", send.map(Value::Bool)),
        ("contact_ids", Some(json!(ids))),
        ("job_total", total.map(|t| json!(t))),
        ("actor", actor.map(|a| json!(a))),
    ])
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn queue_messages_round_trip(
        (tenant, job) in (id_string(), id_string()),
        portal in prop::option::of(id_string()),
        method in select(vec!["code", "link"]),
        send in prop::option::of(any::<bool>()),
        ids in vec(prop_oneof![id_string().boxed(), Just("c1".to_owned()).boxed()], 1..=CONTACTS_PER_MESSAGE),
        total in prop::option::of(any::<u32>()),
        actor in prop::option::of(prop_oneof![text(), "[a-z]{195,205}".boxed()]),
    ) {
        let json = message(&tenant, &job, portal.as_deref(), method, send, &ids, total, actor.as_deref());
        let proven = TenantId::parse(&tenant).unwrap();
        let b = ActivationMessage::parse(&json.to_string(), &proven, Sender::Service).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(b.tenant_id.as_str(), tenant.as_str());
        prop_assert_eq!(b.job_id.as_str(), job.as_str());
        prop_assert_eq!(b.portal_id.as_ref().map(PortalId::as_str), portal.as_deref());
        prop_assert_eq!(serde_json::to_value(b.method).unwrap(), json!(method));
        prop_assert_eq!(b.send_email, send.unwrap_or(true));
        prop_assert_eq!(b.job_total, total);
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort();
        want.dedup();
        prop_assert_eq!(b.contact_ids.iter().map(ContactId::as_str).collect::<Vec<_>>(), want);
        let actor_kept = actor.as_deref().filter(|a| !a.is_empty() && a.len() <= 200).unwrap_or(QUEUE_ACTOR);
        prop_assert_eq!(b.actor.as_str(), actor_kept);
        let tenant_id = TenantId::parse(&tenant).unwrap();
        let job_id = JobId::parse(&job).unwrap();
        let portal_id = PortalId::parse(portal.as_deref().unwrap_or("main")).unwrap();
        let method: Method = serde_json::from_value(json!(method)).unwrap();
        let sent = portal::domain::job::messages(&tenant_id, &job_id, &portal_id, method, send.unwrap_or(true), &b.contact_ids, actor_kept);
        let again = ActivationMessage::parse(&serde_json::to_string(&sent[0]).unwrap(), &proven, Sender::Service).unwrap();
        prop_assert_eq!(again.contact_ids, b.contact_ids);
    }

    #[test]
    fn any_queue_message_is_checked_or_refused(raw in prop_oneof![
        text(),
        json_value().prop_map(|v| v.to_string()),
        (id_string(), select(vec!["tenant_id", "job_id", "portal_id", "method", "contact_ids", "version", "send_email", "job_total", "actor"]), json_value())
            .prop_map(|(id, f, v)| with_field(message(&id, &id, None, "code", None, &[id.clone()], None, None), f, v).to_string()),
        (1usize..12_000).prop_map(|d| "[".repeat(d)),
    ]) {
        let t = TenantId::parse("t").unwrap();
        if let Ok(b) = ActivationMessage::parse(&raw, &t, Sender::Service) {
            prop_assert_eq!(b.tenant_id.as_str(), "t");
            prop_assert!((1..=CONTACTS_PER_MESSAGE).contains(&b.contact_ids.len()));
            prop_assert!(b.contact_ids.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            prop_assert!(!b.actor.is_empty() && b.actor.len() <= 200);
        }
    }

    #[test]
    fn a_queue_message_with_an_unknown_field_names_it(
        id in id_string(),
        name in text().prop_filter("a known field", |n| !["version", "tenant_id", "job_id", "portal_id", "method", "send_email", "contact_ids", "job_total", "actor"].contains(&n.as_str())),
        value in json_value(),
    ) {
        let json = with_field(message(&id, &id, None, "link", None, &[id.clone()], None, None), &name, value);
        let proven = TenantId::parse(&id).unwrap();
        let e = ActivationMessage::parse(&json.to_string(), &proven, Sender::Service).err().ok_or_else(|| TestCaseError::fail("unknown field accepted"))?;
        let MessageError::Invalid(e) = e else { return Err(TestCaseError::fail(format!("{e}"))) };
        prop_assert!(e.contains(&format!("unknown field `{name}`")), "{}", e);
    }

    #[test]
    fn a_queue_message_holds_1_to_100_contacts(n in prop_oneof![Just(0usize), (CONTACTS_PER_MESSAGE + 1)..300]) {
        let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        prop_assert!(ActivationMessage::parse(&message("t", "j", None, "code", None, &ids, None, None).to_string(), &TenantId::parse("t").unwrap(), Sender::Service).is_err());
    }
}

// ---------------------------------------------------------------------------
// The committed corpus: every interesting input found, as explicit cases.
// ---------------------------------------------------------------------------

/// One request body and the answer it must get (200: parsed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyCase {
    why: String,
    #[serde(rename = "type")]
    body_type: String,
    #[serde(default)]
    body: String,
    /// Raw bytes (for invalid UTF-8), instead of `body`.
    #[serde(default)]
    body_base64: Option<String>,
    /// Pads the body with `pad` (default a space) to this many bytes.
    #[serde(default)]
    pad_to: Option<usize>,
    #[serde(default)]
    pad: Option<String>,
    status: u16,
    #[serde(default)]
    detail_contains: Vec<String>,
}

fn read_as(body_type: &str, body: &[u8]) -> Result<(), ApiError> {
    match body_type {
        "ClaimRequest" => read::<ClaimRequest>(body).map(drop),
        "GenerateRequest" => read::<GenerateRequest>(body).map(drop),
        "PortalRequest" => read::<PortalRequest>(body).map(drop),
        "ContactRequest" => read::<ContactRequest>(body).map(drop),
        "ActivationsRequest" => read::<ActivationsRequest>(body).map(drop),
        "GroupRequest" => read::<GroupRequest>(body).map(drop),
        "GroupActivateRequest" => read::<GroupActivateRequest>(body).map(drop),
        "LifecycleRequest" => read::<LifecycleRequest>(body).map(drop),
        "TemplateBody" => read::<TemplateBody>(body).map(drop),
        "PreviewBody" => read::<PreviewBody>(body).map(drop),
        other => panic!("corpus names an unknown body type {other}"),
    }
}

#[test]
fn corpus_bodies_get_their_recorded_answers() {
    let cases: Vec<BodyCase> = serde_json::from_str(include_str!("corpus/bodies.json")).expect("tests/corpus/bodies.json");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let mut body = match &case.body_base64 {
            Some(b) => STANDARD.decode(b).expect("base64 body"),
            None => case.body.clone().into_bytes(),
        };
        if let Some(n) = case.pad_to {
            let pad = case.pad.as_deref().unwrap_or(" ").as_bytes();
            while body.len() < n {
                body.push(pad[body.len() % pad.len()]);
            }
        }
        let (status, detail) = match read_as(&case.body_type, &body) {
            Ok(()) => (200, String::new()),
            Err(e) => client_error(e).unwrap_or_else(|f| panic!("{}: {f}", case.why)),
        };
        let lacking: Vec<&String> = case.detail_contains.iter().filter(|want| !detail.contains(want.as_str())).collect();
        if status != case.status || !lacking.is_empty() {
            failures.push(format!("{} ({}): got {status} {detail:?}, want {} with {lacking:?}", case.why, case.body_type, case.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One input to a domain parser and what it must give.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainCase {
    why: String,
    parser: String,
    input: String,
    ok: bool,
    /// The accepted value as shown (id, lower-cased email, `XXXXX-XXXXX` code, trimmed name, stored URL, activation link).
    #[serde(default)]
    shown: Option<String>,
    /// A part of the refusal's text or variant name.
    #[serde(default)]
    error: Option<String>,
}

fn parse_as(parser: &str, input: &str) -> Result<String, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    match parser {
        "id" => parse_all_ids(input).map_err(|x| format!("{x:?} {x}")),
        "email" => EmailAddress::parse(input).map(|a| a.to_string()).map_err(|x| format!("{x:?} {x}")),
        "pickup_code" => PickupCode::parse(input).map(|c| c.display()).map_err(|x| format!("{x:?} {x}")),
        "link_token" => LinkToken::parse(input).map(|t| t.expose().to_owned()).map_err(|x| e(&x)),
        "name" => valid_name(input).ok_or_else(|| "None".to_owned()),
        "claim_url" => Portal::new(PortalId::parse("main").unwrap(), "Main", true, Some(input), None, None, portal::domain::web_url::Deployment::Aws)
            .map(|p| p.claim_url.unwrap_or_default())
            .map_err(|x| format!("{x:?} {x}")),
        "activation_link" => Portal::new(PortalId::parse("main").unwrap(), "Main", true, Some(input), None, None, portal::domain::web_url::Deployment::Aws)
            .map(|p| LinkToken::parse(&"T".repeat(43)).unwrap().link(&p.claim_url.unwrap_or_default()))
            .map_err(|x| format!("{x:?} {x}")),
        "activation_message" => ActivationMessage::parse(input, &TenantId::parse("t").unwrap(), Sender::Service)
            .map(|b| b.contact_ids.iter().map(ContactId::as_str).collect::<Vec<_>>().join(","))
            .map_err(|x| x.to_string()),
        other => panic!("corpus names an unknown parser {other}"),
    }
}

#[test]
fn corpus_domain_inputs_get_their_recorded_results() {
    let cases: Vec<DomainCase> = serde_json::from_str(include_str!("corpus/domain.json")).expect("tests/corpus/domain.json");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let got = parse_as(&case.parser, &case.input);
        let as_recorded = got.is_ok() == case.ok
            && match (&got, &case.shown, &case.error) {
                (Ok(shown), Some(want), _) => shown == want,
                (Err(err), _, Some(want)) => err.contains(want.as_str()),
                _ => true,
            };
        if !as_recorded {
            failures.push(format!("{} ({} {:?}): got {got:?}, want ok={} {:?} {:?}", case.why, case.parser, case.input, case.ok, case.shown, case.error));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
