//! The hosted pages in a real browser (issue 14): Debian's Chromium, driven
//! over WebDriver by its chromedriver (both installed by `infra/bootstrap`),
//! at a phone's width, against the local gateway. Each page is checked with
//! axe-core (from npm, injected by WebDriver) for serious and critical
//! violations. The pages have no JavaScript: everything here is typing,
//! clicking and following emailed links, as a person would.
//!
//! All of a run's browsers reach the gateway from 127.0.0.1, one client
//! address for the claim throttle (10 counted claims per 15 minutes): these
//! tests make five such claims together, and each run starts a fresh stack.

use crate::browser::Browser;
use crate::helpers::*;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{json, Value};

fn state_on_main(status: &Value) -> String {
    status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == "main").unwrap()["state"].as_str().unwrap().to_owned()
}

/// A contact with an email of record and a date of birth on a hosted portal checking it.
async fn patient(t: &TestApp, portal_name: &str) -> (String, String) {
    t.put_hosted_portal(portal_name, json!(["date_of_birth"])).await.ok(200);
    let contact = unique("chart");
    let email = format!("{contact}@example.com");
    let body = json!({"name": "Ada Lovelace", "email": email, "kind": "individual", "date_of_birth": "1984-02-29"});
    t.call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);
    (contact, email)
}

#[tokio::test]
async fn code_and_date_of_birth_then_the_emailed_confirmation_bind_the_account() {
    let t = TestApp::new().await;
    let (contact, _) = patient(&t, "Riverside Clinic").await;
    let code = t.generate(&contact, json!({})).await;
    let code = code.ok(201)["code"].as_str().unwrap().to_owned();
    let browser = Browser::start().await;

    browser.goto(&format!("{}/claim?tenant={}&portal=main", t.base(), t.tenant)).await;
    assert_eq!(browser.client.title().await.unwrap(), "Set up your account with your code – Riverside Clinic");
    browser.assert_accessible("the claim form").await;
    browser.fill("f-code", &code.to_lowercase().replace('-', " ")).await;
    browser.set_date("f-date_of_birth", "1984-02-29").await;
    let typed = format!("{}@example.org", unique("pat"));
    browser.fill("f-email", &typed).await;
    browser.screenshot("claim-page").await;
    let before = ses_messages_to(&typed).await.len();
    browser.click("Set up my account").await;
    assert_eq!(browser.heading().await, "Check your email");
    browser.assert_accessible("check your email").await;
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "pending", "nothing is bound before the address is proven");

    let link = emailed_link(&typed, before, "/claim/confirm?").await;
    browser.goto(&link).await;
    assert_eq!(browser.heading().await, "Confirm your email address");
    browser.assert_accessible("the confirmation page").await;
    browser.click("Confirm").await;
    assert_eq!(browser.heading().await, "Your account is ready");
    browser.assert_accessible("done").await;
    browser.close().await;

    let status = t.status(&contact).await;
    let status = status.ok(200);
    assert_eq!(state_on_main(status), "active");
    assert!(status["accounts"].as_array().unwrap().iter().any(|a| a["email"] == typed.as_str()), "the portlet shows the account: {status}");
    let audit = t.get(&format!("/v1/contacts/{contact}/audit")).await;
    let claimed = audit.ok(200)["items"].as_array().unwrap().iter().find(|a| a["action"] == "claimed").cloned().expect("the claim is audited");
    assert_eq!(claimed["detail"]["account_email"], typed.as_str());
    assert_eq!(claimed["detail"]["confirmed_by_email"], "true");
    assert!(claimed["detail"]["user_agent"].as_str().unwrap_or_default().contains("Chrome"), "{claimed}");
}

#[tokio::test]
async fn the_emailed_link_claimed_for_its_own_address_binds_at_once() {
    let t = TestApp::new().await;
    let (contact, email, link) = t.activated_link("Lakeside Practice").await;

    let browser = Browser::start().await;
    browser.goto(&link).await;
    assert_eq!(browser.heading().await, "Set up your account");
    browser.assert_accessible("the link's page").await;
    browser.fill("f-email", &email).await;
    browser.click("Continue").await;
    assert_eq!(browser.heading().await, "Your account is ready");
    // The link's page again: used, and it says so.
    browser.goto(&link).await;
    assert_eq!(browser.heading().await, "This link has already been used");
    browser.assert_accessible("a used link's page").await;
    browser.close().await;
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "active");
}

#[tokio::test]
async fn three_wrong_dates_of_birth_lock_the_code() {
    let t = TestApp::new().await;
    let (contact, email) = patient(&t, "Hillside Clinic").await;
    let code = t.generate(&contact, json!({})).await;
    let code = code.ok(201)["code"].as_str().unwrap().to_owned();
    let browser = Browser::start().await;
    browser.goto(&format!("{}/claim?tenant={}&portal=main", t.base(), t.tenant)).await;
    for wrong in ["1984-02-28", "1948-02-29", "1984-03-01"] {
        browser.fill("f-code", &code).await;
        browser.set_date("f-date_of_birth", wrong).await;
        browser.fill("f-email", &email).await;
        browser.click("Set up my account").await;
        let alert = browser.client.find(Locator::Css("[role=alert]")).await.expect("the refusal is shown").text().await.unwrap();
        assert!(alert.contains("could not accept"), "{alert}");
    }
    browser.assert_accessible("a refused claim").await;
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "locked");
    // The right date no longer opens it.
    browser.fill("f-code", &code).await;
    browser.set_date("f-date_of_birth", "1984-02-29").await;
    browser.fill("f-email", &email).await;
    browser.click("Set up my account").await;
    // Refused: the form's plain error, or, when the suite's other browser claims (all from
    // 127.0.0.1) have used up this address's count, the "Too many attempts" page. Never bound.
    let heading = browser.heading().await;
    let alert = browser.client.find(Locator::Css("[role=alert]")).await.is_ok();
    assert!(alert || heading == "Too many attempts", "still refused, not {heading:?}");
    assert_ne!(heading, "Your account is ready");
    browser.close().await;
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "locked");
    let audit = t.get(&format!("/v1/contacts/{contact}/audit")).await;
    assert!(audit.ok(200)["items"].as_array().unwrap().iter().any(|a| a["action"] == "code_locked"));
}

#[tokio::test]
async fn a_replaced_link_s_page_answers_as_ever_and_voids_nothing_newer() {
    let t = TestApp::new().await;
    let (contact, email, first) = t.activated_link("Brookside Clinic").await;
    let before = ses_messages_to(&email).await.len();
    t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/resend"), WRITE, Some(json!({}))).await.ok(202);
    let newer = emailed_link(&email, before, "/claim?").await;

    let browser = Browser::start().await;
    browser.goto(&first).await;
    assert_eq!(browser.heading().await, "This link has been replaced");
    browser.assert_accessible("a replaced link's page").await;
    let before = ses_messages_to(&email).await.len();
    browser.click("Email me a new link").await;
    // The same answer whatever happened; a replaced (or forwarded) link reissues nothing.
    assert_eq!(browser.heading().await, "Check your email");
    browser.assert_accessible("new link requested").await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(ses_messages_to(&email).await.len(), before, "no new link from a replaced one");
    browser.goto(&newer).await;
    assert_eq!(browser.heading().await, "Set up your account", "the newer link still stands");
    browser.close().await;
}
