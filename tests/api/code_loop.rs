//! The first complete loop: generate & email → mailer sends through SES →
//! claim → the portlet shows the account and no pending code.

use crate::helpers::*;
use futures::future::join_all;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn generate_and_email_then_claim_shows_the_account_in_the_portlet() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("ann"));
    let contact = app.with_contact(Some(&email)).await;

    let issued = app.generate(&contact, json!({"send_email": true})).await;
    let issued = issued.ok(201).clone();
    let code = issued["code"].as_str().unwrap().to_owned();
    let document_id = issued["email_document_id"].as_str().expect("a document id").to_owned();
    assert_eq!(issued["portal_id"], "main");
    assert!(regex_like_code(&code), "{code}");

    // Before the claim the portlet lists the pending code.
    let before = app.status(&contact).await.ok(200).clone();
    assert_eq!(before["pending_codes"][0]["code"], code.as_str());
    assert_eq!(before["pending_codes"][0]["email_document_id"], document_id.as_str());
    assert_eq!(before["message"], "There are no accounts currently with portal-only access to this chart.");

    // The mailer (driven by the gateway's SQS poller) sends it through SES.
    let log = eventually(Duration::from_secs(20), || async {
        let log = app.emails(&contact).await.body;
        (log["items"][0]["status"] == "sent").then_some(log)
    })
    .await
    .expect("the email is sent within 20 s");
    let entry = &log["items"][0];
    assert_eq!(entry["document_id"], document_id.as_str());
    assert_eq!(entry["to"], email.as_str());
    assert!(entry["ses_message_id"].as_str().is_some_and(|m| !m.is_empty()));
    let sent = ses_messages_to(&email).await;
    assert_eq!(sent.len(), 1, "exactly one email reached SES");
    assert!(sent[0].1.contains(&code), "the email carries the code");
    assert_eq!(sent[0].0, "Your Portal main activation code");

    // The person claims it (typed sloppily) and the portlet switches.
    let sloppy = code.to_lowercase().replace('-', " ");
    let claimed = app.claim_confirmed(json!({"code": sloppy, "email": email.to_uppercase()})).await;
    let claimed = claimed.ok(201);
    assert_eq!(claimed["contact_id"], contact.as_str());
    assert_eq!(claimed["email"], email.as_str());

    let after = app.status(&contact).await.ok(200).clone();
    assert_eq!(after["accounts"][0]["email"], email.as_str());
    assert_eq!(after["accounts"][0]["portal_id"], "main");
    assert_eq!(after["pending_codes"], json!([]));
    assert_eq!(after["message"], "These accounts have portal-only access to this chart.");

    // A used code is refused with the same body as an unknown one.
    let again = app.claim(json!({"code": code, "email": email})).await;
    let unknown = app.claim(json!({"code": "ZZZZZ-ZZZZZ", "email": email})).await;
    assert_eq!(again.problem(400), unknown.problem(400));
    assert_eq!(again.body, unknown.body);
}

fn regex_like_code(code: &str) -> bool {
    let alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    code.len() == 11 && &code[5..6] == "-" && code.replace('-', "").chars().all(|c| alphabet.contains(c))
}

#[tokio::test]
async fn fifty_concurrent_claims_of_one_code_succeed_exactly_once() {
    let app = TestApp::new().await;
    let contact = app.with_contact(None).await;
    let code = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();

    let racers = unique("racer");
    let claims = (0..50).map(|i| {
        let app = &app;
        let code = code.clone();
        // Fifty people, each from their own address (one address would be throttled after ten).
        let racers = &racers;
        async move { app.claim_from(&random_ip(), json!({"code": code, "email": format!("{racers}{i}@example.com")})).await }
    });
    let answers = join_all(claims).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 202 || *s == 400), "a confirmation sent or 400, never 5xx: {statuses:?}");
    let sent: Vec<usize> = (0..50).filter(|i| statuses[*i] == 202).collect();
    assert!(!sent.is_empty(), "at least one claim sends its confirmation");

    // Every confirmation sent (at most three stay outstanding), each confirmed
    // ten times at once: exactly one confirmation wins.
    let mut tokens = Vec::new();
    for i in &sent {
        tokens.push(confirmation_token_for(&format!("{racers}{i}@example.com"), 0).await);
    }
    let confirms = tokens.iter().flat_map(|t| std::iter::repeat_n(t.clone(), 10)).map(|token| {
        let app = &app;
        async move { app.raw(reqwest::Method::POST, "/v1/claim/confirm", None, Some(json!({"token": token}).to_string())).await }
    });
    let answers = join_all(confirms).await;
    let won: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(won.len(), 1, "exactly one confirmation wins: {:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(answers.iter().all(|a| a.status == 201 || a.status == 400), "losers get 400, never 5xx");

    let status = app.status(&contact).await.ok(200).clone();
    assert_eq!(status["accounts"].as_array().unwrap().len(), 1, "one account, the winner's");
    assert_eq!(status["accounts"][0]["email"], won[0].body["email"]);
}

#[tokio::test]
async fn a_new_code_revokes_the_earlier_pending_one() {
    let app = TestApp::new().await;
    let contact = app.with_contact(None).await;
    let first = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let second = app.generate(&contact, json!({"portal_id": "main"})).await.ok(201)["code"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let status = app.status(&contact).await.ok(200).clone();
    let pending: Vec<&str> = status["pending_codes"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(pending, [second.as_str()], "only the newest code is pending");

    app.claim(json!({"code": first, "email": "late@example.com"})).await.problem(400);
    app.claim_confirmed(json!({"code": second, "email": format!("{}@example.com", unique("ok"))})).await.ok(201);
}

#[tokio::test]
async fn a_code_only_works_on_its_own_portal() {
    let app = TestApp::new().await;
    let contact = app.with_contact(None).await;
    app.put_portal("other", false).await.ok(200);
    let code = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();

    let wrong = app.claim(json!({"code": code, "email": "a@example.com", "portal_id": "other"})).await;
    let unknown = app.claim(json!({"code": "ZZZZZ-ZZZZZ", "email": "a@example.com", "portal_id": "other"})).await;
    assert_eq!(wrong.body, unknown.body, "wrong portal and unknown code look the same");
    wrong.problem(400);
    app.claim_confirmed(json!({"code": code, "email": format!("{}@example.com", unique("own")), "portal_id": "main"})).await.ok(201);
}

#[tokio::test]
async fn portals_listed_are_the_defaults_plus_the_related_ones() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    app.put_portal("extra", false).await.ok(200);
    app.put_portal("unrelated", false).await.ok(200);
    let contact = unique("chart");
    let body = json!({"name": "Org Contact", "kind": "organization_contact", "portal_ids": ["extra"]});
    app.call(reqwest::Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);

    let status = app.status(&contact).await.ok(200).clone();
    let ids: Vec<&str> = status["portals"].as_array().unwrap().iter().map(|p| p["portal_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["extra", "main"]);
    assert_eq!(status["portals"][1]["default"], true);

    let portals = app.get("/v1/portals").await.ok(200).clone();
    assert_eq!(portals["items"].as_array().unwrap().len(), 3);
}
