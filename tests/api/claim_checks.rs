//! Facts of the record (issue 14): write-only facts on the contact, a
//! portal's `claim_checks`, issuing refused for a contact without a checked
//! fact, claims that must match, and the lock after three wrong claims, all
//! through the local gateway on DynamoDB Local and moto.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A portal `main` that checks `checks`.
async fn checking_portal(t: &TestApp, checks: Value) {
    let body = json!({"name": "Clinic portal", "default": true, "claim_url": "https://portal.example.com/claim", "claim_checks": checks});
    let p = t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await;
    assert_eq!(p.ok(200)["claim_checks"], checks);
}

/// A contact with an email and the given fields (facts among them).
async fn contact_with(t: &TestApp, id: &str, extra: Value) -> Answer {
    let mut body = json!({"name": "Ada Lovelace", "email": format!("{id}@example.com"), "kind": "individual"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    t.call(Method::PUT, &format!("/v1/contacts/{id}"), WRITE, Some(body)).await
}

fn state_on_main(status: &Value) -> String {
    status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == "main").unwrap()["state"].as_str().unwrap().to_owned()
}

async fn audit_actions(t: &TestApp, contact: &str) -> Vec<String> {
    let audit = t.get(&format!("/v1/contacts/{contact}/audit")).await;
    audit.ok(200)["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn facts_are_write_only_kept_when_omitted_and_erased_by_null() {
    let t = TestApp::new().await;
    t.put_portal("main", true).await.ok(200);
    let id = unique("chart");
    let put = contact_with(&t, &id, json!({"date_of_birth": "1984-02-29", "family_name": "Núñez"})).await;
    assert_eq!(put.ok(200)["identity_facts"], json!(["date_of_birth", "family_name"]));
    let got = t.get(&format!("/v1/contacts/{id}")).await;
    assert_eq!(got.ok(200)["identity_facts"], json!(["date_of_birth", "family_name"]));
    let text = got.body.to_string();
    assert!(!text.contains("1984") && !text.contains("Núñez") && !text.contains("nunez"), "a fact's value is shown: {text}");

    // An edit that does not know the facts keeps them; null erases one.
    contact_with(&t, &id, json!({})).await.ok(200);
    assert_eq!(t.get(&format!("/v1/contacts/{id}")).await.body["identity_facts"], json!(["date_of_birth", "family_name"]));
    let erased = contact_with(&t, &id, json!({"family_name": null, "postal_code": "SW1A 1AA"})).await;
    assert_eq!(erased.ok(200)["identity_facts"], json!(["date_of_birth", "postal_code"]));

    // A date that is not YYYY-MM-DD is refused at its field, and nothing changes.
    let bad = contact_with(&t, &id, json!({"date_of_birth": "29/02/1984", "postal_code": null})).await;
    bad.problem(422);
    assert_eq!(bad.body["errors"][0]["pointer"], "/date_of_birth");
    assert_eq!(t.get(&format!("/v1/contacts/{id}")).await.body["identity_facts"], json!(["date_of_birth", "postal_code"]));
}

#[tokio::test]
async fn issuing_for_a_contact_without_a_checked_fact_is_422_naming_it_and_stores_nothing() {
    let t = TestApp::new().await;
    checking_portal(&t, json!(["date_of_birth", "family_name"])).await;
    let id = unique("chart");
    contact_with(&t, &id, json!({"family_name": "Lovelace"})).await.ok(200);
    let refused = t.generate(&id, json!({})).await;
    let detail = refused.problem(422);
    assert!(detail.contains("date_of_birth") && !detail.contains("family_name"), "{detail}");
    let link = t.call(Method::POST, &format!("/v1/contacts/{id}/portal/activate"), WRITE, Some(json!({}))).await;
    assert!(link.problem(422).contains("date_of_birth"));
    let status = t.status(&id).await;
    assert_eq!(state_on_main(status.ok(200)), "none", "nothing was stored");
    assert_eq!(t.emails(&id).await.ok(200)["items"], json!([]));

    // In a bulk job the contact is a skip of its own kind.
    let complete = unique("chart");
    contact_with(&t, &complete, json!({"family_name": "Lovelace", "date_of_birth": "1815-12-10"})).await.ok(200);
    let job = t.call(Method::POST, "/v1/activations", WRITE, Some(json!({"contact_ids": [id, complete], "method": "code", "send_email": false}))).await;
    let job = job.ok(202)["job_id"].as_str().unwrap().to_owned();
    let j = eventually(Duration::from_secs(30), || async {
        let j = t.get(&format!("/v1/jobs/{job}")).await.body;
        (j["state"] == "done").then_some(j)
    })
    .await
    .expect("the job finishes");
    assert_eq!((j["activated"].clone(), j["skipped_missing_facts"].clone(), j["failed"].clone()), (json!(1), json!(1), json!(0)), "{j}");
}

#[tokio::test]
async fn a_claim_must_give_every_checked_fact_and_the_third_wrong_claim_locks_the_code() {
    let t = TestApp::new().await;
    checking_portal(&t, json!(["date_of_birth", "family_name"])).await;
    let id = unique("chart");
    contact_with(&t, &id, json!({"date_of_birth": "1990-07-14", "family_name": "O'Brien-Núñez"})).await.ok(200);
    let code = t.generate(&id, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let email = format!("{id}@example.com");
    let unknown = t.claim(json!({"code": "ZZZZZ-ZZZZZ", "email": email, "date_of_birth": "1990-07-14", "family_name": "obrien nunez"})).await;
    unknown.problem(400);

    // Missing a fact, then a wrong one: the same answer as an unknown code.
    let missing = t.claim(json!({"code": code, "email": email, "date_of_birth": "1990-07-14"})).await;
    missing.problem(400);
    assert_eq!(missing.body, unknown.body, "a missing fact answers like an unknown code");
    let wrong = t.claim(json!({"code": code, "email": email, "date_of_birth": "1990-07-15", "family_name": "O'Brien-Núñez"})).await;
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(state_on_main(t.status(&id).await.ok(200)), "pending", "two wrong claims do not lock");
    // The third locks it: even the right facts get nowhere now.
    t.claim(json!({"code": code, "email": email, "date_of_birth": "1990-07-13", "family_name": "obrien nunez"})).await.problem(400);
    let right = json!({"code": code, "email": email, "date_of_birth": "1990-07-14", "family_name": "obrien nunez"});
    assert_eq!(t.claim(right).await.body, unknown.body, "a locked code is not claimable");

    let status = t.status(&id).await;
    assert_eq!(state_on_main(status.ok(200)), "locked");
    let listed = t.get("/v1/contacts?portal_status=locked&portal_id=main").await;
    let ids: Vec<&str> = listed.ok(200)["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()]);
    let actions = audit_actions(&t, &id).await;
    assert_eq!(actions.iter().filter(|a| *a == "claim_refused").count(), 2, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "code_locked").count(), 1, "{actions:?}");

    // Resend on a locked contact resets it: a fresh link, claimable with the right facts.
    let reset = t.call(Method::POST, &format!("/v1/contacts/{id}/portal/resend"), WRITE, Some(json!({}))).await;
    assert_eq!(reset.ok(202)["action"], "reset", "{:?}", reset.body);
    let fresh = t.generate(&id, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let claimed = t.claim_confirmed(json!({"code": fresh, "email": email, "date_of_birth": "1990-07-14", "family_name": "OBRIEN NUNEZ"})).await;
    assert_eq!(claimed.ok(201)["contact_id"], id.as_str());
    assert_eq!(state_on_main(t.status(&id).await.ok(200)), "active");
    let actions = audit_actions(&t, &id).await;
    let claimed: Vec<_> = t.get(&format!("/v1/contacts/{id}/audit")).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "claimed")
        .cloned()
        .collect();
    assert_eq!(claimed.len(), 1, "{actions:?}");
    assert_eq!(claimed[0]["actor"], "claimant");
    assert_eq!(claimed[0]["detail"]["account_email"], email.as_str());
    assert_eq!(claimed[0]["detail"]["method"], "code");
    assert!(claimed[0]["detail"]["source_address_hash"].as_str().is_some_and(|h| h.len() == 64), "{:?}", claimed[0]);
}

#[tokio::test]
async fn a_portal_without_checks_claims_as_before_whatever_facts_are_sent() {
    let t = TestApp::new().await;
    let id = t.with_contact(Some("plain@example.com")).await;
    let code = t.generate(&id, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let claimed = t.claim_confirmed(json!({"code": code, "email": "plain@example.com", "date_of_birth": "2000-01-01"})).await;
    claimed.ok(201);
}
