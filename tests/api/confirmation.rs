//! Proof of the address (issue 14): only a link claimed for the address it
//! was emailed to binds at once; every other claim emails a one-time
//! confirmation to the typed address, and a code has at most three out.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

async fn confirm(t: &TestApp, token: &str) -> Answer {
    t.raw(Method::POST, "/v1/claim/confirm", None, Some(json!({"token": token}).to_string())).await
}

#[tokio::test]
async fn a_code_stays_pending_until_the_typed_address_confirms_and_a_fourth_confirmation_voids_the_first() {
    let t = TestApp::new().await;
    let record = format!("{}@example.com", unique("rec"));
    let contact = t.with_contact(Some(&record)).await;
    let code = t.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    // Four people (or one, four times) type the code with four addresses.
    let typed: Vec<String> = (0..4).map(|i| format!("{}-{i}@example.com", unique("typed"))).collect();
    let mut tokens = Vec::new();
    for to in &typed {
        let sent = t.claim_from(&random_ip(), json!({"code": code, "email": to})).await;
        assert_eq!(sent.ok(202), &json!({"state": "confirmation_sent"}));
        tokens.push(confirmation_token_for(to, 0).await);
    }
    let status = t.status(&contact).await;
    assert_eq!(status.ok(200)["portals"][0]["state"], "pending", "nothing is bound before a confirmation");
    assert_eq!(status.body["accounts"], json!([]));
    // The confirmation email names nothing of the chart.
    let (subject, body) = ses_messages_to(&typed[0]).await.pop().unwrap();
    assert!(!body.contains(&format!("Contact {contact}")) && !subject.contains("Contact"), "{body}");

    // The oldest was voided by the fourth; the newest confirms; the rest are then refused.
    confirm(&t, &tokens[0]).await.problem(400);
    let claimed = confirm(&t, &tokens[3]).await;
    assert_eq!(claimed.ok(201)["email"], typed[3].as_str());
    confirm(&t, &tokens[3]).await.problem(400);
    confirm(&t, &tokens[1]).await.problem(400);
    let status = t.status(&contact).await;
    assert_eq!(status.ok(200)["portals"][0]["state"], "active");
    assert_eq!(status.body["accounts"][0]["email"], typed[3].as_str());
    let audit = t.get(&format!("/v1/contacts/{contact}/audit")).await;
    let actions: Vec<&str> = audit.ok(200)["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "claim_confirmation_sent").count(), 4, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "claimed").count(), 1, "{actions:?}");
    // Garbage is refused like any unknown token.
    confirm(&t, "x").await.problem(400);
    // The address of record is told that another address can now open its access.
    assert_account_added(&record, &typed[3]).await;
}

async fn assert_account_added(record: &str, added: &str) {
    let notice = eventually(std::time::Duration::from_secs(60), || async {
        ses_messages_to(record).await.into_iter().find(|(subject, _)| subject.starts_with("A new account can open"))
    })
    .await
    .unwrap_or_else(|| panic!("no account_added notice reached {record}"));
    assert!(notice.1.contains(added), "the notice names the added address: {}", notice.1);
}

#[tokio::test]
async fn a_link_claimed_for_another_address_is_confirmed_first() {
    let t = TestApp::new().await;
    let record = format!("{}@example.com", unique("rec"));
    let contact = t.with_contact(Some(&record)).await;
    let activated = t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/activate"), WRITE, Some(json!({}))).await;
    activated.ok(202);
    let link_token = eventually(std::time::Duration::from_secs(20), || async {
        ses_messages_to(&record).await.iter().find_map(|(_, b)| b.find("token=").map(|at| b[at + 6..].chars().take(43).collect::<String>()))
    })
    .await
    .expect("the activation link reaches the address of record");
    let other = format!("{}@example.com", unique("other"));
    let sent = t.claim(json!({"token": link_token, "email": other})).await;
    assert_eq!(sent.ok(202), &json!({"state": "confirmation_sent"}));
    let token = confirmation_token_for(&other, 0).await;
    assert_eq!(confirm(&t, &token).await.ok(201)["email"], other.as_str());
    assert_account_added(&record, &other).await;
}
