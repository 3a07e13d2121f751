//! The hosted pages over HTTP (issue 14), through the local gateway: strict
//! headers and small pages with the portal's name, GET never consuming
//! anything (a mail scanner's five GETs), POSTs refused from other sites,
//! "email me a new link" only to the address of record and once an hour,
//! and portals without a `claim_url` linking to the hosted page.
//! `pages_browser.rs` drives the same pages in Chromium.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A page fetched or posted like a browser on the same origin would.
struct Html {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(t: &TestApp, path_and_query: &str) -> Html {
    let resp = t.client.get(format!("{}{path_and_query}", t.base())).send().await.expect("gateway answers");
    Html { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
}

async fn post(t: &TestApp, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Html {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{}={}", k, percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = t.client.post(format!("{}{path}", t.base())).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let resp = req.send().await.expect("gateway answers");
    Html { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
}

fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn state_on_main(status: &Value) -> String {
    status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == "main").unwrap()["state"].as_str().unwrap().to_owned()
}

/// Every hosted page: HTML, no script, the strict headers, at most 20 KB, the portal's name.
fn assert_strict_page(page: &Html, portal_name: &str, what: &str) {
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(header("content-type").starts_with("text/html"), "{what}: {}", header("content-type"));
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{what}: no script may run: {csp}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert!(!page.body.to_lowercase().contains("<script"), "{what}: no JavaScript");
    assert!(page.body.len() <= 20 * 1024, "{what}: {} bytes", page.body.len());
    assert!(page.body.contains(portal_name), "{what}: the portal's name is on the page");
}

#[tokio::test]
async fn a_portal_without_a_claim_url_links_to_the_hosted_page_branded_for_it() {
    let t = TestApp::new().await;
    let put = t.put_hosted_portal("Riverside Clinic", json!([])).await;
    assert_eq!(put.ok(200)["claim_url"], Value::Null);
    let (_, _, link) = t.activated_link("Riverside Clinic").await;
    // In the language the contact's emails fall back to (the portal's default, English), the token last.
    let expected = format!("{}/claim?tenant={}&portal=main&lang=en&token=", t.base(), t.tenant);
    assert!(link.starts_with(&expected), "{link} should start with {expected}");
    let path = &link[t.base().len()..];
    let page = get(&t, path).await;
    assert_eq!(page.status, 200);
    assert_strict_page(&page, "Riverside Clinic", "the link's page");
    assert!(page.body.contains("Continue"));
}

#[tokio::test]
async fn every_page_is_small_strict_and_names_its_portal() {
    let t = TestApp::new().await;
    let (_, _, link) = t.activated_link("Hill & Dale <Surgery>").await;
    let claim = get(&t, &format!("/claim?tenant={}&portal=main", t.tenant)).await;
    assert_strict_page(&claim, "Hill &amp; Dale &lt;Surgery&gt;", "the claim form");
    assert!(!claim.body.contains("<Surgery>"), "the name is escaped, not markup");
    let token = link.split("token=").nth(1).unwrap();
    assert_strict_page(&get(&t, &format!("/claim?token={token}")).await, "Hill", "the link's page");
    assert_strict_page(&get(&t, "/claim?token=not-a-token").await, "Portal Access", "an unknown link's page");
    assert_strict_page(&get(&t, "/claim/confirm?token=nothing").await, "Portal Access", "an unknown confirmation's page");
    let wrong = post(&t, "/claim", &[("code", "ZZZZZ-ZZZZZ"), ("email", "pat@example.org"), ("tenant", &t.tenant), ("portal", "main")], None).await;
    assert_eq!(wrong.status, 400);
    assert_strict_page(&wrong, "Hill", "a refused claim");
    assert!(wrong.body.contains("role=\"alert\""), "the refusal is announced");
}

#[tokio::test]
async fn a_mail_scanner_following_the_links_five_times_changes_nothing() {
    let t = TestApp::new().await;
    let (contact, email, link) = t.activated_link("Scanned Clinic").await;
    let path = &link[t.base().len()..];
    for _ in 0..5 {
        assert_eq!(get(&t, path).await.status, 200);
    }
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "pending");
    // Still the person's to claim, at once, for the address it was emailed to.
    let token = link.split("token=").nth(1).unwrap();
    let claimed = post(&t, "/claim", &[("token", token), ("email", &email), ("tenant", &t.tenant), ("portal", "main")], None).await;
    assert_eq!(claimed.status, 201, "{}", claimed.body);
    assert!(claimed.body.contains("Your account is ready"));
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "active");

    // A confirmation link's page, followed five times, does not confirm either.
    let code = t.generate(&contact, json!({})).await;
    let code = code.ok(201)["code"].as_str().unwrap().to_owned();
    let other = format!("{}@example.org", unique("other"));
    let before = ses_messages_to(&other).await.len();
    let sent = post(&t, "/claim", &[("code", &code), ("email", &other), ("tenant", &t.tenant), ("portal", "main")], None).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let confirm = emailed_link(&other, before, "/claim/confirm?").await;
    let confirm_path = &confirm[t.base().len()..];
    for _ in 0..5 {
        let page = get(&t, confirm_path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&other), "the page says which address it confirms");
    }
    let accounts = |s: &Value| s["accounts"].as_array().unwrap().len();
    assert_eq!(accounts(t.status(&contact).await.ok(200)), 1, "only the first account; the confirmation waits");
    let token = confirm.split("token=").nth(1).unwrap();
    let done = post(&t, "/claim/confirm", &[("token", token)], None).await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(accounts(t.status(&contact).await.ok(200)), 2);
}

#[tokio::test]
async fn posts_from_another_site_are_refused_and_change_nothing() {
    let t = TestApp::new().await;
    let (contact, email, link) = t.activated_link("Guarded Clinic").await;
    let token = link.split("token=").nth(1).unwrap();
    let form = [("token", token), ("email", email.as_str())];
    for origin in ["https://evil.example", "null"] {
        let refused = post(&t, "/claim", &form, Some(origin)).await;
        assert_eq!(refused.status, 403, "Origin {origin}");
        assert!(refused.body.contains("another site"));
    }
    let cross_site = t
        .client
        .post(format!("{}/claim", t.base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(format!("token={token}&email={}", percent_encode(&email)))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    let not_a_form = t.client.post(format!("{}/claim", t.base())).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(not_a_form.status().as_u16(), 415);
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "pending", "nothing was claimed");
    // From our own origin the same form goes through.
    let own = post(&t, "/claim", &form, Some(t.base())).await;
    assert_eq!(own.status, 201, "{}", own.body);
}

/// A branded page (`?tenant=…&portal=…`) takes only its own tenant's codes:
/// another tenant's code for a portal of the same id gets the 400 of an unknown code.
#[tokio::test]
async fn a_branded_page_takes_only_its_own_tenant_s_codes() {
    let ours = TestApp::new().await;
    ours.activated_link("Ours Clinic").await;
    let theirs = TestApp::new().await;
    theirs.activated_link("Theirs Clinic").await;
    let contact = theirs.with_contact(Some(&format!("{}@example.org", unique("pat")))).await;
    let code = theirs.generate(&contact, json!({"portal_id": "main"})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let email = format!("{}@example.org", unique("pat"));
    let on_ours = post(&ours, "/claim", &[("code", &code), ("email", &email), ("tenant", &ours.tenant), ("portal", "main")], None).await;
    let unknown = post(&ours, "/claim", &[("code", "ZZZZZ-ZZZZZ"), ("email", &email), ("tenant", &ours.tenant), ("portal", "main")], None).await;
    assert_eq!((on_ours.status, unknown.status), (400, 400));
    assert_eq!(on_ours.body.replace(&code, "ZZZZZ-ZZZZZ"), unknown.body, "the same page as an unknown code");
    // A tenant that is not there takes nothing either.
    let nowhere = post(&ours, "/claim", &[("code", &code), ("email", &email), ("tenant", "no-such-tenant"), ("portal", "main")], None).await;
    assert_eq!(nowhere.status, 400);
    assert_eq!(state_on_main(&theirs.status(&contact).await.ok(200).clone()), "pending", "the code is untouched");
    // On its own tenant's page the code works.
    let on_theirs = post(&theirs, "/claim", &[("code", &code), ("email", &email), ("tenant", &theirs.tenant), ("portal", "main")], None).await;
    assert!(on_theirs.status == 201 || on_theirs.status == 202, "{}", on_theirs.body);
}

#[tokio::test]
async fn email_me_a_new_link_goes_to_the_address_of_record_only_and_once_an_hour() {
    let t = TestApp::new().await;
    let (contact, email, old_link) = t.activated_link("Renewal Clinic").await;
    // Staff resend: the first link is replaced, the contact still pending.
    let before = ses_messages_to(&email).await.len();
    t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/resend"), WRITE, Some(json!({}))).await.ok(202);
    let resent = emailed_link(&email, before, "/claim?").await;
    assert_ne!(resent, old_link);
    let old_token = old_link.split("token=").nth(1).unwrap();
    let page = get(&t, &format!("/claim?token={old_token}")).await;
    assert!(page.body.contains("replaced") && page.body.contains("Email me a new link"), "{}", page.body);

    let attacker = format!("{}@example.org", unique("mallory"));
    let before = ses_messages_to(&email).await.len();
    // The replaced link asks: the same answer, and nothing changes (a forwarded
    // old link cannot void the newer invitation staff sent since).
    let stale = post(&t, "/claim/new-link", &[("token", old_token)], None).await;
    assert_eq!(stale.status, 200);
    let resent_token = resent.split("token=").nth(1).unwrap();
    assert!(get(&t, &format!("/claim?token={resent_token}")).await.body.contains("Continue"), "the newer link still stands");
    // The newest link asks; a typed address, smuggled into the form, is ignored.
    let asked = post(&t, "/claim/new-link", &[("token", resent_token), ("email", &attacker)], None).await;
    assert_eq!(asked.status, 200);
    let fresh = emailed_link(&email, before, "/claim?").await;
    let fresh_token = fresh.split("token=").nth(1).unwrap();
    assert!(get(&t, &format!("/claim?token={fresh_token}")).await.body.contains("Continue"), "the new link is claimable");
    // The same answer for a second ask within the hour, and for a token nobody issued.
    let again = post(&t, "/claim/new-link", &[("token", fresh_token)], None).await;
    let unknown = post(&t, "/claim/new-link", &[("token", &"A".repeat(43))], None).await;
    let strip = |body: &str| body.replace("Renewal Clinic", "").replace("Portal Access", "");
    assert_eq!(strip(&stale.body), strip(&asked.body));
    assert_eq!(strip(&again.body), strip(&asked.body));
    assert_eq!(strip(&unknown.body), strip(&asked.body), "the page says nothing about the token");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ses_messages_to(&email).await.len(), before + 1, "one new link within the hour");
    assert!(ses_messages_to(&attacker).await.is_empty(), "nothing ever goes to a typed address");
    let audit = t.get(&format!("/v1/contacts/{contact}/audit")).await;
    let asked_for: Vec<&Value> = audit.ok(200)["items"].as_array().unwrap().iter().filter(|a| a["action"] == "new_link_requested").collect();
    assert_eq!(asked_for.len(), 1);
    assert_eq!(asked_for[0]["actor"], "claimant");
}

#[tokio::test]
async fn the_pages_speak_the_contact_s_language_then_the_browser_s_then_the_portal_s() {
    let t = TestApp::new().await;
    t.put_hosted_portal("Clínica Sol", json!([])).await.ok(200);
    let bare = format!("/claim?tenant={}&portal=main", t.tenant);
    // No language asked: English.
    let en = get(&t, &bare).await;
    assert!(en.body.contains("<html lang=\"en\"") && en.body.contains("Set up your account with your code"), "{}", en.body);
    // `lang` (what the emails carry) and the browser's Accept-Language.
    let es = get(&t, &format!("{bare}&lang=es-MX")).await;
    assert!(es.body.contains("<html lang=\"es\"") && es.body.contains("Cree su cuenta con su código"), "{}", es.body);
    assert!(es.body.contains("name=\"lang\" value=\"es\""), "the form carries the language to the next page");
    assert_strict_page(&es, "Clínica Sol", "the Spanish claim page");
    let browser = t.client.get(format!("{}{bare}", t.base())).header("accept-language", "es-ES,es;q=0.9,en;q=0.5").send().await.unwrap();
    assert!(browser.text().await.unwrap().contains("Código de activación"));
    // A Spanish contact's emailed link opens the page in Spanish, and its answers stay Spanish.
    let contact = unique("chart");
    let email = format!("{contact}@example.com");
    let body = json!({"name": "Ana", "kind": "individual", "email": email, "locale": "es"});
    t.call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);
    let before = ses_messages_to(&email).await.len();
    t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/activate"), WRITE, Some(json!({}))).await.ok(202);
    let link = emailed_link(&email, before, "/claim?").await;
    assert!(link.contains("lang=es") && link.ends_with(&link.split("token=").nth(1).map(|t| t.to_owned()).unwrap()), "{link}");
    let page = get(&t, &link[t.base().len()..]).await;
    assert!(page.body.contains("Cree su cuenta") && page.body.contains("Continuar"), "{}", page.body);
    let token = link.split("token=").nth(1).unwrap();
    let done = post(&t, "/claim", &[("token", token), ("email", &email), ("lang", "es"), ("tenant", &t.tenant), ("portal", "main")], None).await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(done.body.contains("Su cuenta está lista"), "{}", done.body);
    // A portal whose default is Spanish: Spanish without any other hint; a browser in a language we do not ship falls through to it.
    let body = json!({"name": "Clínica Sol", "default": true, "default_locale": "es"});
    let other = TestApp::new().await;
    other.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await.ok(200);
    let page = other.client.get(format!("{}/claim?tenant={}&portal=main", other.base(), other.tenant)).header("accept-language", "fr-FR").send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Cree su cuenta con su código"));
}
