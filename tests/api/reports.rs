//! The two reports against a seeded data set with known answers: search,
//! date bounds, pagination without gaps or repeats, one DynamoDB request per
//! page, and CSV quoting with formula injection neutralised.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use portal::app::App;
use portal::http::HttpFunction;
use serde_json::{json, Value};
use std::collections::BTreeSet;

struct Seeded {
    tenant: String,
    reports: App,
    t0: DateTime<Utc>,
}

fn get(route: &str, query: Value) -> ApiEvent {
    let query = query.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect::<Vec<_>>();
    query.iter().fold(staff("GET", route), |e, (k, v)| e.query(k, v))
}

async fn report(s: &Seeded, route: &str, query: Value) -> Value {
    let (code, body) = call(&s.reports, HttpFunction::Reports, &s.tenant, get(route, query)).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// Five contacts claim at t0+1h … t0+5h; two more hold unused codes (one emailed); one code expired.
async fn seed() -> Seeded {
    let tenant = unique("rep");
    let t0: DateTime<Utc> = "2026-02-01T10:00:00Z".parse().unwrap();
    let mut admin_app = app("admin").await;
    Clock::install(&mut admin_app, t0);
    let mut gen = app("generate").await;
    let gen_clock = Clock::install(&mut gen, t0);
    let mut claim_app = app("claim").await;
    let claim_clock = Clock::install(&mut claim_app, t0);
    let mut reports = app("reports").await;
    Clock::install(&mut reports, t0 + Duration::hours(12));
    for (id, default) in [("main", true), ("side", false)] {
        let body = json!({"name": format!("Portal {id}"), "default": default, "claim_url": "https://p.example/claim"});
        let e = staff("PUT", "/v1/portals/{portal_id}").param("portal_id", id).json(&body);
        assert_eq!(call(&admin_app, HttpFunction::Admin, &tenant, e).await.0, 200);
    }
    let people = [
        ("p1", "Ann Lee", "ann.lee@example.com", "main"),
        ("p2", "Bob Stone, Jr.", "bob@example.com", "main"),
        ("p3", "Anna Smith", "asmith@example.com", "side"),
        ("p4", "=HYPERLINK(\"http://evil\")", "eve@example.com", "main"),
        ("p5", "Carl Annson", "carl@example.com", "main"),
        ("u1", "Uma Unused", "uma@example.com", "main"),
        ("u2", "Ulf Unmailed", "ulf@example.com", "side"),
        ("x1", "Xena Expired", "xena@example.com", "main"),
    ];
    for (id, name, email, portal) in people {
        let body = json!({"name": name, "email": email, "kind": "individual", "portal_ids": ["side"]});
        let e = staff("PUT", "/v1/contacts/{contact_id}").param("contact_id", id).json(&body);
        assert_eq!(call(&admin_app, HttpFunction::Contacts, &tenant, e).await.0, 200);
        let _ = portal;
    }
    for (i, (id, _, email, portal)) in people.iter().enumerate() {
        gen_clock.set(if *id == "x1" { t0 - Duration::hours(200) } else { t0 });
        let send = *id == "u1" || id.starts_with('p');
        let route = "/v1/contacts/{contact_id}/codes";
        let e = staff("POST", route).param("contact_id", id).json(&json!({"portal_id": portal, "send_email": send}));
        let (code, issued) = call(&gen, HttpFunction::Generate, &tenant, e).await;
        assert_eq!(code, 201, "{issued}");
        if id.starts_with('p') {
            claim_clock.set(t0 + Duration::hours(i as i64 + 1));
            let e = fixture("claim.json").json(&json!({"code": issued["code"], "email": email})).request();
            assert_eq!(portal::http::HttpFunction::Claim.handle(&claim_app, e).await.status(), 202);
            assert_eq!(confirm_in_process(&claim_app, &tenant, id).await.status(), 201);
        }
    }
    Seeded { tenant, reports, t0 }
}

fn ids(rows: &Value) -> Vec<String> {
    rows["items"].as_array().unwrap().iter().map(|r| r["contact_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_activation_report_searches_bounds_and_pages() {
    let s = seed().await;
    let all = report(&s, "/v1/reports/activations", json!({})).await;
    assert_eq!(ids(&all), ["p5", "p4", "p3", "p2", "p1"], "newest activation first");
    let row = &all["items"][4];
    assert_eq!(row["contact_name"], "Ann Lee");
    assert_eq!(row["email"], "ann.lee@example.com");
    assert_eq!((row["portal_id"].clone(), row["method"].clone()), (json!("main"), json!("code")));
    assert_eq!(row["activated_at"], "2026-02-01T11:00:00.000Z");
    assert_eq!(row["sent_at"], "2026-02-01T10:00:00.000Z");
    assert!(row["email_document_id"].is_string());
    assert_eq!(row["sent_by"], json!(["email"]), "the code went by email");

    let search = |q: &str| report(&s, "/v1/reports/activations", json!({"q": q}));
    assert_eq!(ids(&search("ann").await), ["p5", "p3", "p1"], "prefix of any word: Ann, Anna, Annson");
    assert_eq!(ids(&search("LEE").await), ["p1"]);
    assert_eq!(ids(&search("stone").await), ["p2"]);
    assert_eq!(ids(&search("asmith@").await), ["p3"], "the email is searched too");
    assert!(ids(&search("nn").await).is_empty(), "not a word prefix");

    let from = (s.t0 + Duration::hours(2)).to_rfc3339();
    let to = (s.t0 + Duration::hours(4)).to_rfc3339();
    assert_eq!(ids(&report(&s, "/v1/reports/activations", json!({"from": from, "to": to})).await), ["p4", "p3", "p2"]);
    assert_eq!(ids(&report(&s, "/v1/reports/activations", json!({"portal_id": "side"})).await), ["p3"]);

    // Pages of two: every row once, one DynamoDB request per page.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut q = json!({"limit": "2"});
        if let Some(c) = &cursor {
            q["cursor"] = json!(c);
        }
        let before = s.reports.store.requests_sent();
        let page = report(&s, "/v1/reports/activations", q).await;
        assert_eq!(s.reports.store.requests_sent() - before, 1, "one Query per page");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["p5", "p4", "p3", "p2", "p1"]);
    let (code, _) = call(&s.reports, HttpFunction::Reports, &s.tenant, get("/v1/reports/activations", json!({"cursor": "bm9wZQ"}))).await;
    assert_eq!(code, 422);
    // A cursor is good only for the report and tenant it came from: the
    // activations report's second page is no cursor of the unused-codes report,
    // nor of another tenant's activations report, and its plain part unsigned is none at all.
    let issued = report(&s, "/v1/reports/activations", json!({"limit": "2"})).await["next_cursor"].as_str().unwrap().to_owned();
    let (code, _) = call(&s.reports, HttpFunction::Reports, &s.tenant, get("/v1/reports/unused-codes", json!({"cursor": issued.clone()}))).await;
    assert_eq!(code, 422, "another report's cursor");
    let (code, _) = call(&s.reports, HttpFunction::Reports, &format!("{}-other", s.tenant), get("/v1/reports/activations", json!({"cursor": issued.clone()}))).await;
    assert_eq!(code, 422, "another tenant's cursor");
    let unsigned = issued.rsplit_once('.').unwrap().0.to_owned();
    let (code, _) = call(&s.reports, HttpFunction::Reports, &s.tenant, get("/v1/reports/activations", json!({"cursor": unsigned}))).await;
    assert_eq!(code, 422, "the store's cursor without its signature");
    let (code, _) = call(&s.reports, HttpFunction::Reports, &s.tenant, get("/v1/reports/activations", json!({"from": "yesterday"}))).await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn the_unused_codes_report_lists_pending_unexpired_codes_only() {
    let s = seed().await;
    let unused = report(&s, "/v1/reports/unused-codes", json!({})).await;
    let got: BTreeSet<String> = ids(&unused).into_iter().collect();
    assert_eq!(got, BTreeSet::from(["u1".to_owned(), "u2".to_owned()]), "claimed and expired codes are not unused");
    let by_id = |id: &str| unused["items"].as_array().unwrap().iter().find(|r| r["contact_id"] == id).unwrap().clone();
    assert!(by_id("u1")["email_document_id"].is_string());
    assert_eq!(by_id("u1")["sent_by"], json!(["email"]), "sent by email");
    assert!(by_id("u2")["email_document_id"].is_null(), "never emailed");
    assert_eq!(by_id("u2")["sent_by"], json!([]), "sent by nothing");
    assert_eq!(by_id("u2")["portal_id"], "side");
    assert_eq!(by_id("u1")["code"].as_str().unwrap().len(), 11);
    assert_eq!(ids(&report(&s, "/v1/reports/unused-codes", json!({"portal_id": "side"})).await), ["u2"]);
    let older = (s.t0 - Duration::hours(1)).to_rfc3339();
    assert!(ids(&report(&s, "/v1/reports/unused-codes", json!({"older_than": older})).await).is_empty());
}

#[tokio::test]
async fn reports_come_as_csv_with_quoting_and_formulas_neutralised() {
    let s = seed().await;
    let e = get("/v1/reports/activations", json!({})).header("accept", "text/csv");
    let resp = HttpFunction::Reports.handle(&s.reports, e.tenant(&s.tenant).request()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = String::from_utf8(resp.body().as_ref().to_vec()).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "contact_id,contact_name,email,portal_id,method,sent_at,sent_by,activated_at,email_document_id");
    assert_eq!(lines.len(), 6, "a header and five rows");
    assert!(csv.contains("\"Bob Stone, Jr.\""), "a comma is quoted");
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "a formula is neutralised and quoted: {csv}");
    assert!(!csv.contains(",=HYPERLINK"));

    let (code, _) = call(&s.reports, HttpFunction::Reports, &s.tenant, get("/v1/reports/unused-codes", json!({"format": "csv"}))).await;
    assert_eq!(code, 200);
}
