//! Bad input gets a 4xx `application/problem+json` with a clear detail, and
//! nothing is stored.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_or_mis_shaped_bodies_are_refused_and_store_nothing() {
    let app = TestApp::new().await;
    let contact = app.with_contact(Some("v@example.com")).await;
    let path = format!("/v1/contacts/{contact}/codes");
    let token = app.token(WRITE);
    let cases: [(&str, u16, &str); 4] = [
        ("{not json", 400, "malformed JSON"),
        (r#"{"send_email": "yes"}"#, 422, "invalid type"),
        (r#"{"portal": "main"}"#, 422, "unknown field `portal`"),
        (r#"{"portal_id": "no#such"}"#, 422, "portal_id"),
    ];
    for (body, status, needle) in cases {
        let answer = app.raw(Method::POST, &path, Some(&token), Some(body.into())).await;
        let detail = answer.problem(status);
        assert!(detail.contains(needle), "{body}: {detail}");
    }
    assert_eq!(app.status(&contact).await.ok(200)["pending_codes"], json!([]), "no code was stored");
    assert_eq!(app.emails(&contact).await.ok(200)["items"], json!([]), "no email was queued");
}

#[tokio::test]
async fn unknown_contacts_and_portals_are_clear_errors() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    assert!(app.generate("nobody", json!({})).await.problem(404).contains("contact"));
    assert!(app.status("nobody").await.problem(404).contains("contact"));
    let contact = app.with_contact(None).await;
    let detail = app.generate(&contact, json!({"portal_id": "ghost"})).await.problem(422);
    assert!(detail.contains("ghost"), "{detail}");
    let bad_path = app.get("/v1/contacts/bad%23id/portal").await;
    assert!(bad_path.problem(400).contains("contact_id"));
}

#[tokio::test]
async fn emailing_a_contact_without_an_address_is_422_and_stores_nothing() {
    let app = TestApp::new().await;
    let contact = app.with_contact(None).await;
    let detail = app.generate(&contact, json!({"send_email": true})).await.problem(422);
    assert_eq!(detail, "contact has no email address");
    assert_eq!(app.status(&contact).await.ok(200)["pending_codes"], json!([]));
    assert_eq!(app.emails(&contact).await.ok(200)["items"], json!([]));
}

#[tokio::test]
async fn without_a_default_portal_generate_needs_a_portal_id() {
    let app = TestApp::new().await;
    app.put_portal("side", false).await.ok(200);
    let contact = unique("chart");
    app.put_contact(&contact, None).await.ok(200);
    let detail = app.generate(&contact, json!({})).await.problem(422);
    assert!(detail.contains("no default portal"), "{detail}");
    app.generate(&contact, json!({"portal_id": "side"})).await.ok(201);
}

#[tokio::test]
async fn invalid_emails_and_settings_are_refused_with_field_pointers() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let contact = unique("chart");
    let bad = app
        .call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(json!({"name": "A", "email": "not-an-email", "kind": "individual"})))
        .await;
    assert!(bad.problem(422).contains("email"));
    assert_eq!(bad.body["errors"][0]["pointer"], "/email");
    app.get(&format!("/v1/contacts/{contact}")).await.problem(404);

    let ttl = app
        .call(Method::PUT, "/v1/portals/p", ADMIN, Some(json!({"name": "P", "default": false, "claim_url": "https://x.example", "code_ttl_hours": 5000})))
        .await;
    ttl.problem(422);
    assert_eq!(ttl.body["errors"][0]["pointer"], "/code_ttl_hours");

    let claim = app.claim(json!({"code": "ABCDE-FGHJK", "email": "nope"})).await;
    assert!(claim.problem(422).contains("email"));
    let no_body = app.raw(Method::POST, "/v1/claim", None, None).await;
    no_body.problem(400);
}

/// What schemathesis found (infra/contract): the code now reads these
/// parameters exactly as openapi.yaml documents them.
#[tokio::test]
async fn query_parameters_and_counts_are_read_as_the_document_says() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    // A report's parameters: present means a value; empty or unknown is 422, not "absent".
    for (query, pointer) in [("format=xml", "/format"), ("older_than=", "/older_than"), ("portal_id=", "/portal_id"), ("from=", "/from")] {
        for report in ["activations", "unused-codes"] {
            if report == "activations" && query.starts_with("older_than") || report == "unused-codes" && query.starts_with("from") {
                continue;
            }
            let answer = app.get(&format!("/v1/reports/{report}?{query}")).await;
            answer.problem(422);
            assert_eq!(answer.body["errors"][0]["pointer"], pointer, "{report}?{query}");
        }
    }
    app.get("/v1/reports/unused-codes?format=csv").await.ok(200);
    // A count is a whole number as JSON Schema reads `integer`: 2.0 is 2, 2.5 is not.
    let whole = app.call(Method::PUT, "/v1/settings", ADMIN, Some(json!({"emails_per_hour": 20.0, "sms_per_hour": 5.0}))).await;
    let settings = whole.ok(200);
    assert_eq!((settings["emails_per_hour"].clone(), settings["sms_per_hour"].clone()), (json!(20), json!(5)));
    let half = app.call(Method::PUT, "/v1/settings", ADMIN, Some(json!({"emails_per_hour": 2.5}))).await;
    assert!(half.problem(422).contains("whole number"));
    // An emptied fact field erases the fact, as null does; one of spaces past the limit is 422.
    let contact = unique("chart");
    let path = format!("/v1/contacts/{contact}");
    let put = |facts: serde_json::Value| {
        let mut body = json!({"name": "Ann Lee", "kind": "individual"});
        body.as_object_mut().unwrap().extend(facts.as_object().unwrap().clone());
        app.call(Method::PUT, &path, WRITE, Some(body))
    };
    let set = put(json!({"date_of_birth": "1990-04-01", "family_name": "Lee", "postal_code": "SW1A 1AA"})).await;
    assert_eq!(set.ok(200)["identity_facts"], json!(["date_of_birth", "family_name", "postal_code"]));
    let emptied = put(json!({"date_of_birth": "", "family_name": "   ", "postal_code": null})).await;
    assert_eq!(emptied.ok(200)["identity_facts"], json!([]));
    put(json!({"family_name": " ".repeat(101)})).await.problem(422);
    put(json!({"family_name": "- '"})).await.problem(422);
}
