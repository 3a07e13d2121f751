//! Abuse and retries: the claim throttle per source address and
//! `Idempotency-Key` on every effectful POST, through the local gateway and
//! in process with a controlled clock, on DynamoDB Local and moto.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use portal::http::HttpFunction;
use reqwest::Method;
use serde_json::{json, Value};

/// A claim from client address `ip`: status, Retry-After, body.
async fn claim_from(t: &TestApp, ip: &str, body: Value) -> (u16, Option<String>, Value) {
    // A client of its own: the test app's client already names an address.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/claim", t.base))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|h| h.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

fn gateway_log() -> String {
    let dir = std::env::var("PORTAL_STATE_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| portal_local::repo_root().join(".local"));
    std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
}

fn failed_claim_metrics(portal: &str) -> usize {
    gateway_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["ClaimsFailed"] == 1.0 && v["PortalId"] == portal && v["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PortalAccess")
        .count()
}

#[tokio::test]
async fn ten_failed_claims_from_one_address_are_followed_by_429_for_that_address_only() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("guess@example.com")).await;
    let code = t.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let (guesser, other) = (random_ip(), random_ip());
    let none_before = failed_claim_metrics("none");

    for i in 0..10 {
        let (status, retry, body) = claim_from(&t, &guesser, json!({"code": format!("ZZZZZ-ZZZ{i:02}"), "email": "x@example.com"})).await;
        assert_eq!((status, retry), (400, None), "failure {i}: {body}");
    }
    // The 11th, even with the right code, is refused for the rest of the window.
    let (status, retry, body) = claim_from(&t, &guesser, json!({"code": code, "email": "guess@example.com"})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["type"], "/problems/rate-limited");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&secs), "Retry-After {secs}");

    // Another address is not affected, and its claim does not reset the guesser.
    let (status, _, body) = claim_from(&t, &other, json!({"code": code, "email": "guess@example.com"})).await;
    assert_eq!(status, 202, "{body}");
    let (status, _, _) = claim_from(&t, &guesser, json!({"code": "AAAAA-AAAAA", "email": "x@example.com"})).await;
    assert_eq!(status, 429);

    // Every refused claim is a ClaimsFailed data point (no code matched: portal "none").
    let counted = eventually(std::time::Duration::from_secs(5), || async {
        (failed_claim_metrics("none") >= none_before + 10).then_some(())
    })
    .await;
    assert!(counted.is_some(), "ClaimsFailed EMF lines missing from the gateway log");
}

#[tokio::test]
async fn the_throttle_lasts_fifteen_minutes_from_the_first_failure() {
    let t0: DateTime<Utc> = "2026-06-01T10:00:00Z".parse().unwrap();
    let mut app = app("claim").await;
    let clock = Clock::install(&mut app, t0);
    let ip = random_ip();
    let claim = |code: &str| fixture("claim.json").json(&json!({"code": code, "email": "a@example.com"})).source_ip(&ip).request();

    for minute in 0..10 {
        clock.set(t0 + Duration::minutes(minute));
        assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim("BBBBB-BBBBB")).await.status(), 400);
    }
    clock.set(t0 + Duration::minutes(14) + Duration::seconds(50));
    let resp = portal::http::HttpFunction::Claim.handle(&app, claim("BBBBB-BBBBB")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "11", "ends 15 minutes after the first failure");

    // The window is over: claims are judged again (and a new window starts).
    clock.set(t0 + Duration::minutes(15));
    assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim("BBBBB-BBBBB")).await.status(), 400);
    for _ in 0..9 {
        assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim("BBBBB-BBBBB")).await.status(), 400);
    }
    assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim("BBBBB-BBBBB")).await.status(), 429);
}

#[tokio::test]
async fn a_refused_claim_does_the_same_work_whether_or_not_the_code_exists() {
    // Timing cannot be asserted in a test; the work can. Every refusal looks
    // the hash up (with the throttle read beside it) and counts the failure.
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("same@example.com")).await;
    let code = t.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let app = app("claim").await;
    let mut costs = Vec::new();
    for body in [
        json!({"code": "CCCCC-CCCCC", "email": "a@example.com"}),          // no such code
        json!({"code": "not a code", "email": "a@example.com"}),           // malformed
        json!({"code": code, "email": "a@example.com", "portal_id": "other"}), // another portal's
        json!({"token": "x".repeat(43), "email": "a@example.com"}),        // no such link
    ] {
        let before = app.store.requests_sent();
        let resp = portal::http::HttpFunction::Claim.handle(&app, fixture("claim.json").json(&body).request()).await;
        assert_eq!(resp.status(), 400, "{body}");
        costs.push(app.store.requests_sent() - before);
    }
    assert!(costs.iter().all(|c| *c == costs[0]), "DynamoDB requests per refusal differ: {costs:?}");
    assert_eq!(costs, [2, 2, 2, 2], "lookup + the count of the claim, the first one too");
    // And the code still works for its own portal.
    let resp = portal::http::HttpFunction::Claim.handle(&app, fixture("claim.json").json(&json!({"code": code, "email": "same@example.com"})).request()).await;
    assert_eq!(resp.status(), 202, "a code's claim is confirmed by email");
}

#[tokio::test]
async fn a_burst_of_100_parallel_wrong_claims_from_one_address_gets_at_most_10_judged() {
    let t = TestApp::new().await;
    let ip = random_ip();
    let claims = (0..100).map(|i| claim_from(&t, &ip, json!({"code": format!("DDDDD-DD{i:03}"), "email": "x@example.com"})));
    let answers = futures::future::join_all(claims).await;
    let judged = answers.iter().filter(|(s, _, _)| *s == 400).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(judged <= 10, "{judged} of 100 parallel wrong claims were judged (400); the throttle allows 10");
    assert_eq!(judged + limited.len(), 100, "every answer is 400 or 429: {:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    assert!(limited.iter().all(|(_, retry, body)| retry.is_some() && body["type"] == "/problems/rate-limited"), "429s carry Retry-After");
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_and_a_claim_without_a_source_address_is_refused() {
    let app = app("claim").await;
    let prefix = format!("2001:db8:{:x}:{:x}", rand_u16(), rand_u16());
    let claim = |ip: String| fixture("claim.json").json(&json!({"code": "EEEEE-EEEEE", "email": "a@example.com"})).source_ip(&ip).request();
    // Ten addresses of one /64: ten judged claims between them.
    for i in 0..10 {
        assert_eq!(HttpFunction::Claim.handle(&app, claim(format!("{prefix}:{i:x}::1"))).await.status(), 400);
    }
    let resp = HttpFunction::Claim.handle(&app, claim(format!("{prefix}:ffff:ffff:ffff:ffff"))).await;
    assert_eq!(resp.status(), 429, "an eleventh address of the same /64 shares its count");
    // The neighbouring /64 is another subscriber.
    let next = format!("2001:db8:{:x}:{:x}", rand_u16(), rand_u16());
    assert_eq!(HttpFunction::Claim.handle(&app, claim(format!("{next}::1"))).await.status(), 400);

    // No source address at all: refused before anything is looked up (fails closed).
    let before = app.store.requests_sent();
    let resp = HttpFunction::Claim.handle(&app, claim(String::new())).await;
    assert_eq!(resp.status(), 400);
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert!(body["detail"].as_str().unwrap().contains("no source address"), "{body}");
    assert_eq!(app.store.requests_sent(), before, "nothing was read or counted");
}

fn rand_u16() -> u16 {
    u16::from_be_bytes(uuid::Uuid::new_v4().into_bytes()[..2].try_into().unwrap())
}

/// A POST with an Idempotency-Key: status, replayed?, body.
async fn keyed(t: &TestApp, path: &str, key: &str, body: Value) -> (u16, bool, Value) {
    keyed_as(t, &t.token(WRITE), path, key, body).await
}

/// [`keyed`] with the given token.
async fn keyed_as(t: &TestApp, token: &str, path: &str, key: &str, body: Value) -> (u16, bool, Value) {
    let resp = t
        .client
        .request(Method::POST, format!("{}{path}", t.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some_and(|h| h == "true");
    (status, replayed, resp.json().await.unwrap_or(Value::Null))
}

fn pending_codes(status: &Value) -> usize {
    status["pending_codes"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_repeated_generate_with_its_key_answers_the_first_code_and_issues_nothing() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("idem@example.com")).await;
    let path = format!("/v1/contacts/{contact}/codes");
    let key = unique("key");

    let (s1, r1, first) = keyed(&t, &path, &key, json!({"send_email": true})).await;
    assert_eq!((s1, r1), (201, false), "{first}");
    let (s2, r2, second) = keyed(&t, &path, &key, json!({"send_email": true})).await;
    assert_eq!((s2, r2), (201, true), "{second}");
    assert_eq!(first, second, "the replay is the first answer");
    let status = t.status(&contact).await.ok(200).clone();
    assert_eq!(pending_codes(&status), 1, "{status}");
    let emails = t.emails(&contact).await.ok(200).clone();
    assert_eq!(emails["items"].as_array().map(Vec::len), Some(1), "{emails}");

    // The same key with another body is refused and changes nothing.
    let (s3, _, problem) = keyed(&t, &path, &key, json!({"send_email": false})).await;
    assert_eq!(s3, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("Idempotency-Key"), "{problem}");
    // The same key under another tenant is another key.
    let other = TestApp::new().await;
    let other_contact = other.with_contact(Some("idem2@example.com")).await;
    let (s4, r4, _) = keyed(&other, &format!("/v1/contacts/{other_contact}/codes"), &key, json!({"send_email": true})).await;
    assert_eq!((s4, r4), (201, false));
    // A new key is a new request.
    let (s5, r5, third) = keyed(&t, &path, &unique("key"), json!({"send_email": true})).await;
    assert_eq!((s5, r5), (201, false));
    assert_ne!(third["code"], first["code"]);
    // Bad keys are refused before anything runs.
    let (s6, _, _) = keyed(&t, &path, "has space", json!({})).await;
    assert_eq!(s6, 400);
}

#[tokio::test]
async fn one_staff_member_s_key_does_not_replay_another_s_answer() {
    // Two front-desk staff of one tenant whose clients happen to send the same
    // key with the same request: each runs, and neither sees the other's code.
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("two-staff@example.com")).await;
    let path = format!("/v1/contacts/{contact}/codes");
    let key = unique("shared-key");
    let (ann, bob) = (t.token_as("staff-ann", WRITE), t.token_as("staff-bob", WRITE));

    let (s1, r1, first) = keyed_as(&t, &ann, &path, &key, json!({"send_email": false})).await;
    assert_eq!((s1, r1), (201, false), "{first}");
    let (s2, r2, second) = keyed_as(&t, &bob, &path, &key, json!({"send_email": false})).await;
    assert_eq!((s2, r2), (201, false), "Bob's request ran as his own: {second}");
    assert_ne!(first["code"], second["code"], "Bob did not get Ann's code");
    let second_code = second["code"].clone();
    // Each still replays their own.
    assert_eq!(keyed_as(&t, &ann, &path, &key, json!({"send_email": false})).await, (201, true, first));
    assert_eq!(keyed_as(&t, &bob, &path, &key, json!({"send_email": false})).await, (201, true, second));
    // Both ran (Bob's code replaced Ann's, as a second Generate does), and no more.
    let status = t.status(&contact).await.ok(200).clone();
    assert_eq!(pending_codes(&status), 1, "{status}");
    assert_eq!(status["pending_codes"][0]["code"], second_code, "{status}");
}

#[tokio::test]
async fn concurrent_duplicates_resolve_to_one_effect() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("race@example.com")).await;
    let path = format!("/v1/contacts/{contact}/codes");
    let key = unique("key");
    let answers = futures::future::join_all((0..12).map(|_| keyed(&t, &path, &key, json!({"send_email": true})))).await;
    let firsts = answers.iter().filter(|(s, replayed, _)| *s == 201 && !replayed).count();
    assert_eq!(firsts, 1, "exactly one request ran: {answers:?}");
    let code = &answers.iter().find(|a| !a.1).unwrap().2["code"];
    for (status, _, body) in &answers {
        // Duplicates wait for the first answer (or, if it were slow, get 409).
        assert!(*status == 201 && &body["code"] == code || *status == 409, "{status} {body}");
    }
    let status = t.status(&contact).await.ok(200).clone();
    assert_eq!(pending_codes(&status), 1, "{status}");
    assert_eq!(t.emails(&contact).await.ok(200)["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn every_effectful_post_honours_its_key() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("every@example.com")).await;
    let base = format!("/v1/contacts/{contact}/portal");

    let activate = unique("k");
    let (s, r, first) = keyed(&t, &format!("{base}/activate"), &activate, json!({})).await;
    assert_eq!((s, r), (202, false), "{first}");
    assert_eq!(keyed(&t, &format!("{base}/activate"), &activate, json!({})).await, (202, true, first.clone()));

    let resend = unique("k");
    let (s, r, first) = keyed(&t, &format!("{base}/resend"), &resend, json!({})).await;
    assert_eq!((s, r), (202, false), "{first}");
    assert_eq!(keyed(&t, &format!("{base}/resend"), &resend, json!({})).await, (202, true, first.clone()));

    let deactivate = unique("k");
    let (s, r, first) = keyed(&t, &format!("{base}/deactivate"), &deactivate, json!({})).await;
    assert_eq!((s, r), (200, false), "{first}");
    assert!(first["email_document_id"].is_string(), "{first}");
    // Replayed: the first answer, notice email id and all (a new deactivate would answer null).
    assert_eq!(keyed(&t, &format!("{base}/deactivate"), &deactivate, json!({})).await, (200, true, first.clone()));
    let emails = t.emails(&contact).await.ok(200).clone();
    let kinds: Vec<&str> = emails["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "deactivation").count(), 1, "{kinds:?}");

    // Bulk: one job for a key, and a group activation likewise.
    let other = unique("chart");
    t.put_contact(&other, Some("bulk@example.com")).await.ok(200);
    let bulk = unique("k");
    let body = json!({"contact_ids": [other.clone()], "method": "code", "send_email": false});
    let (s, r, job) = keyed(&t, "/v1/activations", &bulk, body.clone()).await;
    assert_eq!((s, r), (202, false), "{job}");
    assert_eq!(keyed(&t, "/v1/activations", &bulk, body).await, (202, true, job.clone()));

    let group = unique("g");
    t.call(Method::PUT, &format!("/v1/groups/{group}"), WRITE, Some(json!({"name": "G", "contact_ids": [other]}))).await.ok(200);
    let gkey = unique("k");
    let gbody = json!({"method": "code", "send_email": false});
    let (s, r, gjob) = keyed(&t, &format!("/v1/groups/{group}/activate"), &gkey, gbody.clone()).await;
    assert_eq!((s, r), (202, false), "{gjob}");
    let (s, r, again) = keyed(&t, &format!("/v1/groups/{group}/activate"), &gkey, gbody).await;
    assert_eq!((s, r), (202, true));
    assert_eq!(again["job_id"], gjob["job_id"]);
}

#[tokio::test]
async fn a_key_is_ignored_where_nothing_changes_and_without_a_token() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("noauth@example.com")).await;
    // No token: the authorizer answers 401 before any key is recorded.
    let resp = t
        .client
        .post(format!("{}/v1/contacts/{contact}/codes", t.base))
        .header("idempotency-key", "k1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A read-only caller gets 403 each time, never a replay.
    for _ in 0..2 {
        let resp = t
            .client
            .post(format!("{}/v1/contacts/{contact}/codes", t.base))
            .bearer_auth(t.token(READ))
            .header("idempotency-key", "k2")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        assert!(resp.headers().get("idempotent-replayed").is_none());
    }
    // In process, the route decides: a key on a GET is not looked at.
    let app = app("status").await;
    let e = staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", &contact).header("idempotency-key", "k3");
    let (code, _) = call(&app, HttpFunction::Status, &t.tenant, e.clone()).await;
    let (again, _) = call(&app, HttpFunction::Status, &t.tenant, e).await;
    assert_eq!((code, again), (200, 200));
}

fn emf_count(metric: &str, portal: Option<&str>) -> usize {
    gateway_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == metric && v[metric].is_number())
        .filter(|v| portal.is_none_or(|p| v["PortalId"] == p))
        .count()
}

#[tokio::test]
async fn codes_claims_and_emails_are_counted_in_embedded_metric_format() {
    let t = TestApp::new().await;
    // A portal id of our own, so other tests' data points do not count here.
    let portal = unique("m");
    t.put_portal(&portal, true).await.ok(200);
    let contact = unique("chart");
    t.put_contact(&contact, Some("metrics@example.com")).await.ok(200);
    let (sent_before, generated_before) = (emf_count("EmailsSent", None), emf_count("CodesGenerated", Some(&portal)));
    let code = t.generate(&contact, json!({"portal_id": portal, "send_email": true})).await.ok(201)["code"].as_str().unwrap().to_owned();
    t.claim_confirmed(json!({"code": code, "email": "metrics@example.com"})).await.ok(201);
    let seen = eventually(std::time::Duration::from_secs(20), || async {
        (emf_count("CodesGenerated", Some(&portal)) == generated_before + 1
            && emf_count("ClaimsSucceeded", Some(&portal)) == 1
            && emf_count("EmailsSent", None) > sent_before)
            .then_some(())
    })
    .await;
    assert!(seen.is_some(), "CodesGenerated / ClaimsSucceeded / EmailsSent missing from the gateway log");
}

/// Behind CloudFront (`WebAclArn`): a request without the distribution's
/// secret header is 403 whatever it claims to be, and with it the claim
/// throttle counts the viewer's address from `CloudFront-Viewer-Address`, not
/// the one source address all of CloudFront's requests share. The secret is
/// a real one in moto's Secrets Manager.
#[tokio::test]
async fn behind_the_edge_only_requests_with_its_secret_pass_and_each_viewer_is_throttled_alone() {
    let mut app = app("claim").await;
    let name = unique("portal-local/EdgeSecret");
    let secret = uuid::Uuid::new_v4().simple().to_string();
    app.secrets.put(&name, &secrecy::SecretString::from(secret.clone()), "edge test").await.unwrap();
    app.edge_secret = Some(name);
    let cloudfront = random_ip();
    let claim = |viewer: &str, secret: Option<&str>| {
        let mut e = fixture("claim.json").json(&json!({"code": "DDDDD-DDDDD", "email": "a@example.com"})).source_ip(&cloudfront);
        e = e.header("cloudfront-viewer-address", &format!("{viewer}:443"));
        if let Some(s) = secret {
            e = e.header("x-portal-edge", s);
        }
        e.request()
    };
    // A direct call, forged viewer address and all, and one with a wrong secret.
    let direct = portal::http::HttpFunction::Claim.handle(&app, claim(&random_ip(), None)).await;
    assert_eq!(direct.status(), 403);
    assert_eq!(body(&direct)["type"], "/problems/forbidden");
    let wrong = portal::http::HttpFunction::Claim.handle(&app, claim(&random_ip(), Some("not-the-secret"))).await;
    assert_eq!(wrong.status(), 403);
    // Other functions too: the check runs before any route.
    let status = portal::http::HttpFunction::Status.handle(&app, fixture("claim.json").source_ip(&cloudfront).request()).await;
    assert_eq!(status.status(), 403);

    // One viewer's ten failures throttle that viewer, not the next one through the same edge.
    let (guesser, other) = (random_ip(), random_ip());
    for i in 0..10 {
        let r = portal::http::HttpFunction::Claim.handle(&app, claim(&guesser, Some(&secret))).await;
        assert_eq!(r.status(), 400, "failure {i}");
    }
    assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim(&guesser, Some(&secret))).await.status(), 429);
    assert_eq!(portal::http::HttpFunction::Claim.handle(&app, claim(&other, Some(&secret))).await.status(), 400, "another viewer is judged");
}

/// Least sight of codes: read-only staff see a pending code's last three
/// characters in the portlet and the unused-codes report (JSON and CSV);
/// staff who issue codes see it whole.
#[tokio::test]
async fn read_only_staff_see_a_pending_code_masked_and_staff_who_issue_codes_see_it_whole() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let contact = app.with_contact(Some("mask@example.com")).await;
    let code = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let masked = format!("•••••-••{}", &code[8..]);
    let portlet = format!("/v1/contacts/{contact}/portal");
    let report = "/v1/reports/unused-codes";
    for (scope, expected) in [(READ, masked.as_str()), (WRITE, code.as_str()), (ADMIN, code.as_str())] {
        let view = app.call(Method::GET, &portlet, scope, None).await.ok(200).clone();
        assert_eq!(view["pending_codes"][0]["code"], expected, "portlet as {scope}");
        let rows = app.call(Method::GET, report, scope, None).await.ok(200).clone();
        let row = rows["items"].as_array().unwrap().iter().find(|r| r["contact_id"] == contact.as_str()).expect("the code is unused");
        assert_eq!(row["code"], expected, "report as {scope}");
        let csv = app.call(Method::GET, &format!("{report}?format=csv"), scope, None).await;
        let text = csv.body.as_str().expect("CSV text").to_owned();
        let line = text.lines().find(|l| l.contains(contact.as_str())).expect("the code's row");
        assert!(line.contains(expected), "CSV as {scope}: {line}");
        if scope == READ {
            assert!(!text.contains(&code), "the whole code is nowhere in the read-only CSV");
        }
    }
}

/// The idempotency record keeps its answer sealed: a copy of the table shows
/// no plain code under the key, and the replay still answers it.
#[tokio::test]
async fn an_idempotency_record_keeps_no_plain_code_and_its_replay_still_answers_it() {
    let t = TestApp::new().await;
    let contact = t.with_contact(Some("sealed@example.com")).await;
    let path = format!("/v1/contacts/{contact}/codes");
    let key = unique("key");
    let (status, _, first) = keyed(&t, &path, &key, json!({})).await;
    assert_eq!(status, 201, "{first}");
    let code = first["code"].as_str().unwrap().to_owned();
    // The record as DynamoDB holds it.
    let endpoints = portal_local::local::Endpoints::from_env().await;
    let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
    let digest = portal::domain::guard::IdempotencyKey::parse("staff-test", &key).unwrap().digest();
    let pk = format!("T#{}#IDEM#{digest}", t.tenant);
    let items = direct
        .query()
        .table_name(portal_local::local::table_name(&template()).unwrap())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 1, "the key's record");
    let raw = format!("{:?}", items[0]);
    let compact = code.replace('-', "");
    assert!(!raw.contains(&code) && !raw.contains(&compact), "no plain code in the record: {raw}");
    // Replayed, the answer is the first one, code and all.
    let (status, replayed, again) = keyed(&t, &path, &key, json!({})).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again["code"], code.as_str());
}

/// A method a path does not route answers 405 with the methods it does
/// (`Allow`, RFC 9110), through the `$default` route; an unknown path, 404.
#[tokio::test]
async fn a_method_a_path_does_not_route_is_405_with_allow() {
    let t = TestApp::new().await;
    for (method, path, allow) in [
        (Method::DELETE, "/v1/settings", "GET, PUT"),
        (Method::PATCH, "/v1/contacts/c-1", "PUT, GET"),
        (Method::PUT, "/v1/claim", "POST"),
        (Method::DELETE, "/claim", "GET, POST"),
    ] {
        let resp = t.client.request(method.clone(), format!("{}{path}", t.base)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
    }
    let unknown = t.client.delete(format!("{}/v1/nothing-here", t.base)).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}
