//! The access lifecycle through the gateway (seeds 001 and 002): activation
//! links, resend, deactivate with notice, enable again, the login-time access
//! check, templates, documents, audit and the listing.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

async fn lifecycle(app: &TestApp, contact: &str, op: &str, body: Value) -> Answer {
    app.call(Method::POST, &format!("/v1/contacts/{contact}/portal/{op}"), WRITE, Some(body)).await
}

/// Waits until the email document is sent, and returns it.
async fn sent_document(app: &TestApp, document_id: &str) -> Value {
    eventually(Duration::from_secs(20), || async {
        let doc = app.get(&format!("/v1/emails/{document_id}")).await.body;
        (doc["status"] == "sent").then_some(doc)
    })
    .await
    .unwrap_or_else(|| panic!("document {document_id} was not sent within 20 s"))
}

/// What SES was given to send for a stored email: the text the person reads
/// (the stored document shows its secrets masked).
async fn emailed_text(app: &TestApp, document_id: &str) -> String {
    let doc = sent_document(app, document_id).await;
    ses_message_text(doc["ses_message_id"].as_str().expect("a sent email has SES's message id")).await
}

fn token_in(text: &str) -> String {
    let at = text.find("token=").expect("the email carries an activation link") + "token=".len();
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

fn state_on(status: &Value, portal: &str) -> String {
    status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == portal).expect("portal listed")["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn access_of(app: &TestApp, email: &str) -> Vec<Value> {
    app.get(&format!("/v1/accounts/{email}/access")).await.ok(200)["access"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_activation_link_is_emailed_and_claimed_by_post_only() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("link"));
    let contact = app.with_contact(Some(&email)).await;
    assert_eq!(state_on(&app.status(&contact).await.body, "main"), "none");

    let activated = lifecycle(&app, &contact, "activate", json!({})).await.ok(202).clone();
    assert_eq!(activated["state"], "pending");
    assert!(activated["expires_at"].is_string());
    assert_eq!(state_on(&app.status(&contact).await.body, "main"), "pending");
    let doc = sent_document(&app, activated["email_document_id"].as_str().unwrap()).await;
    assert_eq!(doc["kind"], "activation_link");
    assert_eq!(doc["to"], email.as_str());
    let token = token_in(&emailed_text(&app, activated["email_document_id"].as_str().unwrap()).await);
    assert_eq!(token.len(), 43);
    // The stored document and the log's variables show the link with its token masked.
    let stored = doc["text"].as_str().unwrap();
    assert!(stored.contains("https://portal.example.com/claim?token=[hidden]") && !stored.contains(&token), "{stored}");
    assert!(!doc["html"].as_str().unwrap().contains(&token));

    // A mail scanner following the link with GET reaches nothing that consumes it.
    let scanner = app.raw(Method::GET, &format!("/v1/claim?token={token}"), None, None).await;
    assert_eq!(scanner.status, 405, "POST only (the $default route's 405 with Allow)");
    assert_eq!(state_on(&app.status(&contact).await.body, "main"), "pending");

    let claimed = app.claim(json!({"token": token, "email": email})).await;
    assert_eq!(claimed.ok(201)["contact_id"], contact.as_str());
    let status = app.status(&contact).await.ok(200).clone();
    assert_eq!(state_on(&status, "main"), "active");
    assert_eq!(status["accounts"][0]["email"], email.as_str());
    assert_eq!(access_of(&app, &email).await, [json!({"contact_id": contact, "portal_id": "main"})]);

    assert!(lifecycle(&app, &contact, "activate", json!({})).await.problem(409).contains("already active"));
    lifecycle(&app, &contact, "resend", json!({})).await.problem(409);
    // A token is not a code, and a used token is refused like any other.
    app.claim(json!({"token": token, "email": email})).await.problem(400);
    app.claim(json!({"code": token, "email": email})).await.problem(400);
    app.claim(json!({"code": "ABCDE-FGHJK", "token": token, "email": email})).await.problem(422);

    let audit = app.get(&format!("/v1/contacts/{contact}/audit")).await.ok(200).clone();
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["claimed", "activate"], "the staff action and the claim, newest first");
    assert_eq!(audit["items"][0]["actor"], "claimant");
    assert_eq!(audit["items"][1]["actor"], "staff-test");
    assert_eq!(audit["items"][1]["portal_id"], "main");
}

#[tokio::test]
async fn activating_a_contact_without_an_email_address_is_422_and_stores_nothing() {
    let app = TestApp::new().await;
    let contact = app.with_contact(None).await;
    let detail = lifecycle(&app, &contact, "activate", json!({})).await.problem(422);
    assert_eq!(detail, "contact has no email address");
    let status = app.status(&contact).await.ok(200).clone();
    assert_eq!(state_on(&status, "main"), "none");
    assert_eq!(app.emails(&contact).await.ok(200)["items"], json!([]));
    assert_eq!(app.get(&format!("/v1/contacts/{contact}/audit")).await.ok(200)["items"], json!([]));
    lifecycle(&app, &contact, "resend", json!({})).await.problem(409);
}

#[tokio::test]
async fn resending_a_pending_link_revokes_the_old_one() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("resend"));
    let contact = app.with_contact(Some(&email)).await;
    let first = lifecycle(&app, &contact, "activate", json!({"portal_id": "main"})).await.ok(202).clone();
    let old = token_in(&emailed_text(&app, first["email_document_id"].as_str().unwrap()).await);
    let resent = lifecycle(&app, &contact, "resend", json!({})).await.ok(202).clone();
    assert_eq!(resent["action"], "resent");
    assert_eq!(resent["state"], "pending");
    let new = token_in(&emailed_text(&app, resent["email_document_id"].as_str().unwrap()).await);
    assert_ne!(old, new);
    app.claim(json!({"token": old, "email": email})).await.problem(400);
    app.claim(json!({"token": new, "email": email})).await.ok(201);
}

#[tokio::test]
async fn deactivation_ends_access_at_once_sends_one_notice_and_can_be_undone_by_enabling() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("deact"));
    let contact = app.with_contact(Some(&email)).await;
    let code = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    app.claim_confirmed(json!({"code": code, "email": email})).await.ok(201);
    // Staff generate another code later; it is pending while the contact is active.
    let pending = app.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
    assert_eq!(state_on(&app.status(&contact).await.body, "main"), "active");
    assert_eq!(access_of(&app, &email).await.len(), 1);

    let off = lifecycle(&app, &contact, "deactivate", json!({})).await.ok(200).clone();
    assert_eq!(off["state"], "disabled");
    assert!(access_of(&app, &email).await.is_empty(), "the login check forgets the contact at once");
    app.claim(json!({"code": pending, "email": "someone@example.com"})).await.problem(400);
    let status = app.status(&contact).await.ok(200).clone();
    assert_eq!(state_on(&status, "main"), "disabled");
    assert_eq!(status["accounts"], json!([]));
    assert_eq!(status["pending_codes"], json!([]));
    let notice = sent_document(&app, off["email_document_id"].as_str().unwrap()).await;
    assert_eq!(notice["kind"], "deactivation");
    assert!(notice["subject"].as_str().unwrap().contains("access has ended"));

    let emails_before = app.emails(&contact).await.body["items"].as_array().unwrap().len();
    let again = lifecycle(&app, &contact, "deactivate", json!({})).await.ok(200).clone();
    // The whole body (with `accounts_disabled` 0, `complete`) is asserted in-process in deactivate_many.rs.
    assert_eq!((&again["state"], &again["email_document_id"]), (&json!("disabled"), &Value::Null), "{again}");
    assert_eq!(app.emails(&contact).await.body["items"].as_array().unwrap().len(), emails_before, "nothing sent again");

    let enabled = lifecycle(&app, &contact, "resend", json!({})).await.ok(202).clone();
    assert_eq!(enabled["action"], "enabled");
    let doc = sent_document(&app, enabled["email_document_id"].as_str().unwrap()).await;
    assert_eq!(doc["kind"], "reactivation");
    app.claim(json!({"token": token_in(&emailed_text(&app, enabled["email_document_id"].as_str().unwrap()).await), "email": email})).await.ok(201);
    assert_eq!(state_on(&app.status(&contact).await.body, "main"), "active");
    assert_eq!(access_of(&app, &email).await.len(), 1);

    let audit = app.get(&format!("/v1/contacts/{contact}/audit")).await.ok(200).clone();
    let actions: BTreeSet<&str> = audit["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, BTreeSet::from(["generate", "claim_confirmation_sent", "claimed", "deactivate", "enable"]));
}

#[tokio::test]
async fn templates_are_checked_at_save_escaped_in_html_and_used_for_their_portal_only() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    app.put_portal("side", false).await.ok(200);
    let path = "/v1/portals/main/templates/pickup_code";
    let put = |body: Value| app.call(Method::PUT, path, ADMIN, Some(body));

    let syntax = put(json!({"subject": "Hi", "text": "Hello\n{% if %}", "html": "<p>x</p>"})).await;
    assert!(syntax.problem(422).contains("line 2"), "{:?}", syntax.body);
    assert_eq!(syntax.body["errors"][0]["pointer"], "/text");
    assert_eq!(syntax.body["errors"][0]["line"], 2, "the editor can mark the line");
    let unknown = put(json!({"subject": "Hi {{ password }}", "text": "t", "html": "h"})).await;
    assert!(unknown.problem(422).contains("password"));
    put(json!({"subject": "Hi\nBcc: x@example.com", "text": "t", "html": "h"})).await.problem(422);
    assert_eq!(app.get(path).await.ok(200)["source"], "default", "refused templates were not saved");

    let custom = json!({
        "subject": "Welcome, {{ contact_name }}",
        "text": "Code {{ code }} for {{ contact_name }}",
        "html": "<p>Code <b>{{ code }}</b> for {{ contact_name }}</p>",
    });
    put(custom).await.ok(200);
    assert_eq!(app.get(path).await.ok(200)["source"], "portal");
    assert_eq!(app.get("/v1/portals/side/templates/pickup_code").await.ok(200)["source"], "default");

    let preview = app
        .call(Method::POST, &format!("{path}/preview"), ADMIN, Some(json!({"vars": {"contact_name": "<script>alert(1)</script>"}})))
        .await;
    let preview = preview.ok(200);
    assert_eq!(preview["html"], "<p>Code <b>7K3QD-M9XPT</b> for &lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>");
    assert_eq!(preview["text"], "Code 7K3QD-M9XPT for <script>alert(1)</script>");

    // The mailer uses the portal's template, escaping the contact's name in HTML.
    let email = format!("{}@example.com", unique("tpl"));
    let contact = unique("chart");
    let body = json!({"name": "<script>x</script>", "email": email, "kind": "individual", "portal_ids": ["side"]});
    app.call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);
    let main_doc = app.generate(&contact, json!({"send_email": true})).await.ok(201)["email_document_id"].as_str().unwrap().to_owned();
    let side_doc = app.generate(&contact, json!({"send_email": true, "portal_id": "side"})).await.ok(201)["email_document_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let main = sent_document(&app, &main_doc).await;
    assert_eq!(main["subject"], "Welcome, <script>x</script>");
    assert!(main["html"].as_str().unwrap().contains("&lt;script&gt;x&lt;&#x2f;script&gt;"));
    assert!(!main["html"].as_str().unwrap().contains("<script>"));
    let side = sent_document(&app, &side_doc).await;
    assert_eq!(side["subject"], "Your Portal side activation code", "the other portal keeps the default");
    let sent = ses_messages_to(&email).await;
    assert!(sent.iter().any(|(subject, _)| subject == "Welcome, <script>x</script>"));
}

#[tokio::test]
async fn the_listing_filters_by_portal_state_and_pages_without_gaps() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let mut by_state: Vec<(&str, Vec<String>)> = vec![("none", vec![]), ("pending", vec![]), ("active", vec![]), ("disabled", vec![])];
    for (i, (state, ids)) in by_state.iter_mut().enumerate() {
        for j in 0..2 {
            let id = format!("c{i}{j}-{}", unique("x"));
            let email = format!("{id}@example.com");
            app.put_contact(&id, Some(&email)).await.ok(200);
            match *state {
                "none" => {}
                "pending" => {
                    app.generate(&id, json!({})).await.ok(201);
                }
                _ => {
                    let code = app.generate(&id, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned();
                    app.claim_confirmed(json!({"code": code, "email": email})).await.ok(201);
                    if *state == "disabled" {
                        lifecycle(&app, &id, "deactivate", json!({})).await.ok(200);
                    }
                }
            }
            ids.push(id);
        }
    }
    for (state, ids) in &by_state {
        let listed = app.get(&format!("/v1/contacts?portal_status={state}")).await.ok(200).clone();
        let got: BTreeSet<String> = listed["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(got, ids.iter().cloned().collect::<BTreeSet<_>>(), "portal_status={state}");
        assert!(listed["items"].as_array().unwrap().iter().all(|c| c["portal_status"] == *state));
    }
    assert_eq!(app.get("/v1/contacts?portal_status=expired").await.ok(200)["items"], json!([]));

    // Pages of 3 cover all 8 contacts once each, in id order.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/v1/contacts?limit=3{q}")).await.ok(200).clone();
        seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "no repeats, id order");
    assert_eq!(seen.len(), 8);

    assert!(app.get("/v1/contacts?portal_status=happy").await.problem(422).contains("portal_status"));
    app.get("/v1/contacts?limit=0").await.problem(422);
    app.get("/v1/contacts?cursor=bm90LWEtY3Vyc29y").await.problem(422);
    // Another tenant's cursor cannot read this tenant.
    let other = TestApp::new().await;
    other.put_portal("main", true).await.ok(200);
    let page = app.get("/v1/contacts?limit=1").await.ok(200).clone();
    other.get(&format!("/v1/contacts?cursor={}", page["next_cursor"].as_str().unwrap())).await.problem(422);

    // Cursors are signed: a cursor we did not issue is 422 before any read, even
    // one that names this tenant's own index partition (it used to reach
    // DynamoDB as an ExclusiveStartKey and answer 500).
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    let issued = page["next_cursor"].as_str().unwrap();
    let (plain, tag) = issued.rsplit_once('.').expect("a signed cursor is plain.tag");
    let mut key: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(plain).unwrap()).unwrap();
    key["sk"] = json!("NOT-A-KEY-WE-WROTE");
    key["gsi1sk"] = json!("~~~~");
    let forged = URL_SAFE_NO_PAD.encode(key.to_string());
    for bad in [plain.to_owned(), forged.clone(), format!("{forged}.{tag}")] {
        let problem = app.get(&format!("/v1/contacts?cursor={bad}")).await.problem(422);
        assert!(problem.contains("cursor"), "{problem}");
    }
    // The issued cursor still pages on.
    app.get(&format!("/v1/contacts?limit=1&cursor={issued}")).await.ok(200);
}

#[tokio::test]
async fn codes_and_tokens_never_reach_the_logs() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("logs"));
    let contact = app.with_contact(Some(&email)).await;
    let code = app.generate(&contact, json!({"send_email": true})).await.ok(201)["code"].as_str().unwrap().to_owned();
    let activated = lifecycle(&app, &contact, "resend", json!({})).await.ok(202).clone();
    let token = token_in(&emailed_text(&app, activated["email_document_id"].as_str().unwrap()).await);
    app.claim(json!({"token": token, "email": email})).await.ok(201);
    let log = std::fs::read_to_string(
        std::env::var("PORTAL_STATE_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| portal_local::repo_root().join(".local")).join("gateway.log"),
    ).expect("the gateway log");
    assert!(log.contains("invitation issued"), "the log is the gateway's");
    assert!(!log.contains(&code) && !log.contains(&code.replace('-', "")), "a code was logged");
    assert!(!log.contains(&token), "a token was logged");
}

#[tokio::test]
async fn no_email_log_entry_or_stored_document_holds_a_code_or_token_in_plain() {
    let app = TestApp::new().await;
    let email = format!("{}@example.com", unique("sealed"));
    let contact = app.with_contact(Some(&email)).await;
    let generated = app.generate(&contact, json!({"send_email": true})).await.ok(201).clone();
    let code = generated["code"].as_str().unwrap().to_owned();
    // Staff still read the pending code in the portlet, as the product does.
    assert!(app.status(&contact).await.ok(200).to_string().contains(&code), "the portlet shows the pending code");
    let linked = lifecycle(&app, &contact, "resend", json!({})).await.ok(202).clone();
    let store = crate::helpers::app("mailer").await.store;
    for (sent, secret_of) in [(&generated, "code"), (&linked, "link")] {
        let document_id = sent["email_document_id"].as_str().unwrap();
        let emailed = emailed_text(&app, document_id).await;
        let secret = if secret_of == "code" { code.clone() } else { token_in(&emailed) };
        assert!(emailed.contains(&secret), "the person's email carries the {secret_of}");
        let doc = sent_document(&app, document_id).await;
        for part in ["subject", "text", "html"] {
            assert!(!doc[part].as_str().unwrap().contains(&secret), "the stored {part} shows the {secret_of}");
        }
        let key = portal::store::EmailKey {
            tenant_id: portal::domain::TenantId::parse(&app.tenant).unwrap(),
            contact_id: portal::domain::ContactId::parse(&contact).unwrap(),
            document_id: serde_json::from_value(json!(document_id)).unwrap(),
        };
        let item = store.get_email(&key).await.unwrap().expect("the log entry");
        let raw = serde_json::to_string(&item.vars).unwrap();
        assert!(!raw.contains(&secret), "the log's variables hold the {secret_of}: {raw}");
        assert!(item.sealed.is_none(), "the sealed copy is erased once sent");
    }
}

#[tokio::test]
async fn the_listing_finds_contacts_by_a_prefix_of_any_word_of_their_name_or_email() {
    let app = TestApp::new().await;
    app.put_portal("main", true).await.ok(200);
    let people = [("Ann-Marie Lee", "aml@example.com"), ("Anna Smith", "asmith@example.org"), ("Bob Stone", "bob@example.net"), ("Dana Annson", "dana@example.com")];
    let mut ids = BTreeMap::new();
    for (name, email) in people {
        let id = unique("c");
        app.call(Method::PUT, &format!("/v1/contacts/{id}"), WRITE, Some(json!({"name": name, "email": email, "kind": "individual"}))).await.ok(200);
        ids.insert(name, id);
    }
    let found = |q: &str| {
        let app = &app;
        let q = q.to_owned();
        async move {
            let page = app.get(&format!("/v1/contacts?q={}", q.replace(' ', "%20"))).await.ok(200).clone();
            page["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>()
        }
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(found("ann").await, names(&["Ann-Marie Lee", "Anna Smith", "Dana Annson"]), "a prefix of any word");
    assert_eq!(found("ANN").await, found("ann").await, "case does not matter");
    assert_eq!(found("marie").await, names(&["Ann-Marie Lee"]), "a word after a dash");
    assert_eq!(found("stone").await, names(&["Bob Stone"]));
    assert_eq!(found("asmith").await, names(&["Anna Smith"]), "the email's words too");
    assert!(found("nna").await.is_empty(), "not a prefix of a word");
    assert_eq!(found("").await.len(), 4, "an empty q lists everyone");
    // With the state filter: Bob gets a code, so only he is pending.
    app.generate(&ids["Bob Stone"], json!({})).await.ok(201);
    let pending = app.get("/v1/contacts?q=s&portal_status=pending").await.ok(200).clone();
    let pending: Vec<&str> = pending["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(pending, ["Bob Stone"], "Anna Smith matches q but is not pending");
    assert!(app.get(&format!("/v1/contacts?q={}", "a".repeat(101))).await.problem(422).contains("q"));
}

#[tokio::test]
async fn the_tenant_profile_names_the_organisation_in_emails_and_on_the_claim_page() {
    let app = TestApp::new().await;
    // Before a profile: the defaults, the tenant's id.
    let before = app.get("/v1/tenant/profile").await.ok(200).clone();
    assert_eq!((before["display_name"].as_str(), before["is_default"].as_bool()), (Some(app.tenant.as_str()), Some(true)));
    let bad = app.call(Method::PUT, "/v1/tenant/profile", ADMIN, Some(json!({"display_name": " ", "brand_color": "blue", "logo_url": "http://x.example/l.png"}))).await;
    let pointers: Vec<&str> = bad.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!((bad.status.as_u16(), pointers), (422, vec!["/display_name", "/logo_url", "/brand_color"]), "{:?}", bad.body);
    app.call(Method::PUT, "/v1/tenant/profile", WRITE, Some(json!({"display_name": "Riverside Clinic"}))).await.problem(403);
    let set = app
        .call(Method::PUT, "/v1/tenant/profile", ADMIN, Some(json!({"display_name": "Riverside Clinic", "support_email": "help@riverside.example", "brand_color": "#0B5CAD"})))
        .await
        .ok(200)
        .clone();
    assert_eq!((set["brand_color"].as_str(), set["is_default"].as_bool()), (Some("#0b5cad"), Some(false)), "{set}");

    // The emailed code says who gives access; the tenant's id appears nowhere in it.
    let email = format!("{}@example.com", unique("profile"));
    let contact = app.with_contact(Some(&email)).await;
    app.generate(&contact, json!({"send_email": true})).await.ok(201);
    let body = eventually(Duration::from_secs(60), || async { ses_messages_to(&email).await.into_iter().next().map(|(_, body)| body) })
        .await
        .expect("the code's email was sent");
    assert!(body.contains("Riverside Clinic has invited you"), "{body}");
    assert!(!body.contains(&app.tenant), "{body}");
    // The hosted claim page carries the name beside the portal's.
    let page = app.client.get(format!("{}/claim?tenant={}&portal=main", app.base, app.tenant)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Riverside Clinic · "), "{page}");
}
