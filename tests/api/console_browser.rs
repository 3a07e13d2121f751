//! The staff console and the embeddable portlet in a real browser (issue 16):
//! Chromium over WebDriver (`crate::browser`), against the local gateway,
//! which serves the console built from `functions/console/web` and signs
//! staff in with its local page. Each screen is checked with axe-core, and
//! the phone-width screens for sideways scrolling.
//!
//! The console keeps its token in memory only, so a page load (after the
//! person's claim, say) signs in again, as a reload does for staff.

use crate::browser::Browser;
use crate::helpers::*;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A JavaScript expression: some `selector` element's text contains `text`.
fn has_text(selector: &str, text: &str) -> String {
    format!("[...document.querySelectorAll({})].some(e => e.innerText.includes({}))", json!(selector), json!(text))
}

/// A JavaScript expression: the portlet's shadow root's text contains `text`.
fn portlet_has(text: &str) -> String {
    format!("(document.querySelector('portal-access-portlet')?.shadowRoot?.textContent ?? '').replace(/\\s+/g, ' ').includes({})", json!(text))
}

/// Signs in on the local stack's page as `scope` of `t`'s tenant, starting at `/console/{at}`.
async fn sign_in(b: &Browser, t: &TestApp, scope: &str, at: &str) {
    b.goto(&format!("{}/console/{at}", t.base())).await;
    b.wait_until("the console's sign-in", WAIT, &has_text("button", "Sign in")).await;
    b.client.find(Locator::XPath("//button[normalize-space()='Sign in']")).await.unwrap().click().await.unwrap();
    b.wait_until("the local sign-in page", WAIT, "document.getElementById('f-tenant')").await;
    b.assert_accessible("the local sign-in page").await;
    b.fill("f-tenant", &t.tenant).await;
    b.fill("f-sub", "front-desk@clinic.test").await;
    b.fill("f-scope", scope).await;
    b.client.find(Locator::XPath("//button[normalize-space()='Sign in']")).await.unwrap().click().await.unwrap();
    b.wait_until("signed in", WAIT, &has_text("header", "front-desk@clinic.test")).await;
    assert!(!b.client.current_url().await.unwrap().as_str().contains("access_token"), "the token leaves the address bar");
}

/// Nothing wider than the window (a phone's 390 px, or the 360 px of a small one).
async fn assert_no_sideways_scroll(b: &Browser, what: &str) {
    let (page, window) = (b.eval("return document.documentElement.scrollWidth", vec![]).await, b.eval("return window.innerWidth", vec![]).await);
    assert!(page.as_u64() <= window.as_u64(), "{what}: {page} px wide in a {window} px window");
}

/// A link that carries a genuine token in its fragment (sent by someone who wants the staff member to
/// act as them, or lifted from a history) signs nobody in: the console takes a fragment's token only
/// for a sign-in this tab started, whose state comes back beside it.
#[tokio::test]
async fn a_token_in_a_link_signs_nobody_in() {
    let t = TestApp::new().await;
    let b = Browser::sized(1024, 800).await;
    let token = t.token_as("attacker@elsewhere.test", ADMIN);
    b.goto(&format!("{}/console/#access_token={token}&back=%23%2Fadmin", t.base())).await;
    b.wait_until("the console's sign-in", WAIT, &has_text("button", "Sign in")).await;
    b.wait_until("the refusal", WAIT, &has_text("[role=alert]", "did not match")).await;
    let header = b.eval("return document.querySelector('header')?.innerText ?? ''", vec![]).await;
    assert!(!header.as_str().unwrap_or_default().contains("attacker@elsewhere.test"), "signed in from a link: {header}");
    assert!(!b.client.current_url().await.unwrap().as_str().contains("access_token"), "the token leaves the address bar");
    // With a state of its own making, but not the tab's: refused too (a fresh document, not a hash change).
    b.goto("about:blank").await;
    b.goto(&format!("{}/console/#access_token={token}&state=guessed&back=%23%2Fadmin", t.base())).await;
    b.wait_until("the refusal", WAIT, &has_text("[role=alert]", "did not match")).await;
    b.close().await;
}

async fn hosted_portal(t: &TestApp, name: &str) {
    t.put_hosted_portal(name, json!([])).await.ok(200);
}

#[tokio::test]
async fn staff_create_a_contact_generate_and_email_and_the_person_claims() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Riverside Clinic").await;
    let b = Browser::sized(360, 800).await;
    sign_in(&b, &t, ADMIN, "").await;
    b.wait_until("the listing", WAIT, &has_text("h1", "Contacts")).await;
    // Loaded (a new tenant has none), so nothing moves under the next click.
    b.wait_until("the listing loaded", WAIT, &has_text("main", "No contacts match.")).await;

    // A new contact, from the listing.
    let email = format!("{}@example.org", unique("ann"));
    b.client.find(Locator::Css("details.add summary")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::Css("details.add input[name=name]")).await.unwrap().send_keys("Ann Lee").await.unwrap();
    b.client.find(Locator::Css("details.add input[name=email]")).await.unwrap().send_keys(&email).await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Add contact']")).await.unwrap().click().await.unwrap();
    b.wait_until("the contact record", WAIT, &has_text("main h1", "Ann Lee")).await;
    b.wait_until("the portlet", WAIT, &portlet_has("There are no accounts currently with portal-only access to this chart.")).await;
    let contact = b.eval("return decodeURIComponent(location.hash.split('/')[2])", vec![]).await.as_str().unwrap().to_owned();

    // Generate & Email: the pending code in parentheses, and the email in the log.
    b.click_in_shadow("portal-access-portlet", "Generate & Email").await;
    b.wait_until("the pending code", WAIT, "document.querySelector('portal-access-portlet').shadowRoot.querySelector('code')").await;
    let code = b.eval("return document.querySelector('portal-access-portlet').shadowRoot.querySelector('code').textContent", vec![]).await;
    let code = code.as_str().unwrap().to_owned();
    assert_eq!(t.status(&contact).await.ok(200)["pending_codes"][0]["code"], code.as_str(), "the portlet shows the stored code");
    b.wait_until("the log's pickup code email", WAIT, "document.querySelector('#email-log tr[data-kind=pickup_code]')").await;
    b.assert_accessible("the contact record").await;
    assert_no_sideways_scroll(&b, "the contact record at 360 px").await;

    // The person claims it on the hosted page and confirms the address.
    let before = ses_messages_to(&email).await.len();
    b.goto(&format!("{}/claim?tenant={}&portal=main", t.base(), t.tenant)).await;
    b.fill("f-code", &code).await;
    b.fill("f-email", &email).await;
    b.click("Set up my account").await;
    assert_eq!(b.heading().await, "Check your email");
    b.goto(&emailed_link(&email, before, "/claim/confirm?").await).await;
    b.click("Confirm").await;
    assert_eq!(b.heading().await, "Your account is ready");

    // Back in the console (signed in again: the token lived in memory): the account.
    sign_in(&b, &t, ADMIN, &format!("#/contacts/{contact}")).await;
    b.wait_until("the account in the portlet", WAIT, &portlet_has("These accounts have portal-only access to this chart.")).await;
    assert!(b.shadow_text("portal-access-portlet").await.contains(&email), "the account's address is listed");
    b.wait_until("the sent email", WAIT, "document.querySelector('#email-log tr[data-kind=pickup_code][data-status=sent]') || (document.getElementById('refresh-log')?.click(), false)").await;
    b.screenshot("console-contact-record").await;

    // The listing (the same page, still signed in): the green check mark.
    b.goto(&format!("{}/console/#/contacts", t.base())).await;
    b.wait_until("the active row", WAIT, &format!("document.querySelector('tr[data-contact={}] .check')", json!(contact))).await;
    b.assert_accessible("the listing").await;
    assert_no_sideways_scroll(&b, "the listing at 360 px").await;
    b.close().await;
}

#[tokio::test]
async fn fifty_contacts_activated_from_the_listing_follow_the_progress_bar_to_done() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Lakeside Practice").await;
    let tag = unique("bulk").replace('-', "");
    for n in 0..50 {
        let id = format!("chart-{n:02}");
        let body = json!({"name": format!("{tag} Patient {n:02}"), "email": format!("{tag}.{n}@example.org"), "kind": "individual"});
        t.call(Method::PUT, &format!("/v1/contacts/{id}"), WRITE, Some(body)).await.ok(200);
    }
    let b = Browser::start().await;
    sign_in(&b, &t, WRITE, "").await;
    b.wait_until("the listing", WAIT, "document.querySelectorAll('tr[data-contact]').length > 0").await;
    // The name search finds them all (one page of 50).
    let search = b.client.find(Locator::Css("input[name=q]")).await.unwrap();
    search.send_keys(&tag[..8]).await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Search']")).await.unwrap().click().await.unwrap();
    b.wait_until("50 rows", WAIT, "document.querySelectorAll('tr[data-contact]').length === 50").await;
    b.client.find(Locator::Css("input[aria-label='Select every contact on this page']")).await.unwrap().click().await.unwrap();
    b.wait_until("the selection bar", WAIT, &has_text("form.bar", "50 selected")).await;
    b.screenshot("console-contacts").await;
    b.client.find(Locator::XPath("//button[normalize-space()='Activate Portal']")).await.unwrap().click().await.unwrap();
    b.wait_until("the job done", Duration::from_secs(120), "document.querySelector('.counters[data-state=done]')").await;
    let counters = b.client.find(Locator::Css(".counters")).await.unwrap().text().await.unwrap();
    assert!(counters.contains("50 of 50 handled") && counters.contains("50 activated"), "{counters}");
    let value = b.eval("const p = document.querySelector('.job progress'); return [p.value, p.max]", vec![]).await;
    assert_eq!(value, json!([50, 50]), "the bar is full");
    b.assert_accessible("the listing with a finished job").await;
    // The listing after the job: every row pending.
    b.wait_until("pending rows", WAIT, "document.querySelectorAll('tr[data-contact] .badge.pending').length === 50").await;
    b.close().await;
    let listing = t.get("/v1/contacts?portal_status=pending&limit=100").await;
    assert_eq!(listing.ok(200)["items"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn a_contact_deactivated_from_the_record_has_its_notice_in_the_log() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Hillside Clinic").await;
    let contact = unique("chart");
    t.put_contact(&contact, Some(&format!("{contact}@example.com"))).await.ok(200);
    t.generate(&contact, json!({})).await.ok(201);
    let b = Browser::start().await;
    sign_in(&b, &t, WRITE, &format!("#/contacts/{contact}")).await;
    b.wait_until("the pending state", WAIT, &portlet_has("Access-Pending")).await;
    b.click_in_shadow("portal-access-portlet", "Deactivate").await;
    b.wait_until("the confirmation", WAIT, &portlet_has("End this contact's portal access?")).await;
    b.assert_accessible("the deactivation question").await;
    b.click_in_shadow("portal-access-portlet", "Yes, deactivate").await;
    b.wait_until("disabled", WAIT, &portlet_has("Access-Disabled")).await;
    assert!(b.shadow_text("portal-access-portlet").await.contains("Enable"), "a disabled contact's action is Enable");
    b.wait_until(
        "the deactivation notice in the log",
        WAIT,
        "document.querySelector('#email-log tr[data-kind=deactivation]') || (document.getElementById('refresh-log')?.click(), false)",
    )
    .await;
    b.close().await;
    let emails = t.emails(&contact).await;
    assert!(emails.ok(200)["items"].as_array().unwrap().iter().any(|e| e["kind"] == "deactivation"));
}

#[tokio::test]
async fn read_only_staff_see_no_buttons_that_would_be_refused() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Brookside Clinic").await;
    let contact = unique("chart");
    t.put_contact(&contact, Some("ro@example.com")).await.ok(200);
    let b = Browser::start().await;
    sign_in(&b, &t, READ, &format!("#/contacts/{contact}")).await;
    b.wait_until("the portlet", WAIT, &portlet_has("There are no accounts currently")).await;
    let buttons = b.eval("return [...document.querySelector('portal-access-portlet').shadowRoot.querySelectorAll('button')].length", vec![]).await;
    assert_eq!(buttons, json!(0), "no Generate, no state action");
    assert_eq!(b.eval("return document.querySelectorAll('form.stack button[type=submit]').length", vec![]).await, json!(0));
    b.goto(&format!("{}/console/#/contacts", t.base())).await;
    b.wait_until("the listing", WAIT, "document.querySelector('tr[data-contact]')").await;
    assert_eq!(b.eval("return document.querySelectorAll('tbody input[type=checkbox]').length", vec![]).await, json!(0), "no selection");
    b.close().await;
}

#[tokio::test]
async fn the_portlet_embedded_in_a_host_page_works_with_the_hosts_token_and_styles_kept_apart() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Summit Clinic").await;
    let contact = unique("chart");
    t.put_contact(&contact, Some("host@example.com")).await.ok(200);
    let token = t.token(WRITE);
    let b = Browser::start().await;
    b.goto(&format!("{}/console/demo/?contact={contact}&token={token}", t.base())).await;
    b.wait_until("the embedded portlet", WAIT, &portlet_has("Summit Clinic")).await;
    // The host's `button { background: hotpink }` does not reach the portlet's buttons.
    let bg = b
        .eval("return getComputedStyle(document.querySelector('portal-access-portlet').shadowRoot.querySelector('button')).backgroundColor", vec![])
        .await;
    assert_ne!(bg, json!("rgb(255, 105, 180)"), "host styles leaked into the portlet");
    b.assert_accessible("the demo host page").await;
    b.click_in_shadow("portal-access-portlet", "Generate").await;
    b.wait_until("the host heard the event", WAIT, &has_text("#events", "portal-access-code-generated")).await;
    let log = b.client.find(Locator::Id("events")).await.unwrap().text().await.unwrap();
    let code = t.status(&contact).await.ok(200)["pending_codes"][0]["code"].as_str().unwrap().to_owned();
    assert!(log.contains(&code), "the event carries the code: {log}");
    b.screenshot("portlet-demo").await;
    b.close().await;
}

#[tokio::test]
async fn a_template_saved_with_a_syntax_error_shows_it_at_its_line_then_fixed_and_previewed() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Harbour Clinic").await;
    let b = Browser::sized(1280, 1000).await;
    sign_in(&b, &t, ADMIN, "#/admin").await;
    b.wait_until("the template editor", WAIT, "document.getElementById('tpl-text') && document.getElementById('preview-text')").await;
    let text = b.client.find(Locator::Id("tpl-text")).await.unwrap();
    text.clear().await.unwrap();
    text.send_keys("Hello {{ contact_name }},\n{% if %}\nYour code is {{ code }}.").await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Save template']")).await.unwrap().click().await.unwrap();
    b.wait_until("the error at its line", WAIT, "document.querySelector('.template-error[data-line=\"2\"]')").await;
    let shown = b.client.find(Locator::Css(".template-error")).await.unwrap().text().await.unwrap();
    assert!(shown.starts_with("Line 2:"), "{shown}");
    // The cursor is on the refused line.
    let selected = b.eval("const a = document.getElementById('tpl-text'); return a.value.slice(a.selectionStart, a.selectionEnd)", vec![]).await;
    assert_eq!(selected, json!("{% if %}"));
    assert_eq!(b.eval("return document.activeElement.id", vec![]).await, json!("tpl-text"));
    b.assert_accessible("the editor with an error").await;
    let stored = t.get("/v1/portals/main/templates/pickup_code").await;
    assert_eq!(stored.ok(200)["source"], "default", "the refused template was not saved");

    // Fixed: the preview renders the sample values live, and it saves.
    text.clear().await.unwrap();
    text.send_keys("Hello {{ contact_name }},\nYour code for {{ portal_name }} is {{ code }}.").await.unwrap();
    b.wait_until("the live preview", WAIT, &has_text("#preview-text", "Your code for")).await;
    assert!(b.client.find(Locator::Css(".template-error")).await.is_err(), "the error is gone");
    b.client.find(Locator::XPath("//button[normalize-space()='Save template']")).await.unwrap().click().await.unwrap();
    b.wait_until("saved", WAIT, &has_text(".notice", "Template saved (en).")).await;
    let stored = t.get("/v1/portals/main/templates/pickup_code").await;
    assert_eq!(stored.ok(200)["text"], "Hello {{ contact_name }},\nYour code for {{ portal_name }} is {{ code }}.");

    // The organisation's name, which the claim pages and emails use.
    let name = b.client.find(Locator::Css("#profile-h ~ form input[name=display_name]")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("Harbour Family Clinic").await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Save profile']")).await.unwrap().click().await.unwrap();
    b.wait_until("profile saved", WAIT, &has_text(".notice", "Profile saved.")).await;
    assert_eq!(t.get("/v1/tenant/profile").await.ok(200)["display_name"], "Harbour Family Clinic");
    b.assert_accessible("Portal Administration").await;
    b.eval("window.scrollTo(0, 0)", vec![]).await;
    b.screenshot("console-portal-administration").await;
    b.close().await;
}

#[tokio::test]
async fn a_report_searched_and_downloaded_as_csv() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Valley Clinic").await;
    let mut codes = Vec::new();
    for name in ["Grace Hopper", "Alan Turing"] {
        let contact = unique("chart");
        let body = json!({"name": name, "email": format!("{contact}@example.com"), "kind": "individual"});
        t.call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);
        codes.push(t.generate(&contact, json!({})).await.ok(201)["code"].as_str().unwrap().to_owned());
    }
    let b = Browser::start().await;
    sign_in(&b, &t, READ, "#/reports").await;
    b.client.find(Locator::XPath("//button[normalize-space()='Unused Activation Codes report']")).await.unwrap().click().await.unwrap();
    b.wait_until("both unused codes", WAIT, "document.querySelectorAll('#report[data-kind=unused-codes] tbody tr').length === 2").await;
    let table = b.client.find(Locator::Id("report")).await.unwrap().text().await.unwrap();
    // Signed in with portal:read alone: each code's last three characters, never the whole code.
    let masked: Vec<String> = codes.iter().map(|c| format!("•••••-••{}", &c[8..])).collect();
    assert!(masked.iter().all(|c| table.contains(c.as_str())), "{table}");
    assert!(!codes.iter().any(|c| table.contains(c.as_str())), "{table}");
    b.assert_accessible("the unused codes report").await;
    b.client.find(Locator::XPath("//button[normalize-space()='Download CSV']")).await.unwrap().click().await.unwrap();
    b.wait_until("the CSV", WAIT, "document.querySelector('a.download')").await;
    // The file the browser saved.
    let csv = b.downloaded("unused-codes.csv", WAIT).await;
    assert_eq!(csv.lines().count(), 3, "a header and two rows: {csv}");
    assert!(masked.iter().all(|c| csv.contains(c.as_str())) && csv.contains("Grace Hopper"), "{csv}");
    assert!(!codes.iter().any(|c| csv.contains(c.as_str())), "{csv}");
    assert_eq!(b.eval("return document.querySelector('a.download').getAttribute('download')", vec![]).await, json!("unused-codes.csv"));

    // The activation report's search: nothing activated yet, so nothing found.
    b.client.find(Locator::XPath("//button[normalize-space()='Portal Activation Code report']")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::Css("input[name=q]")).await.unwrap().send_keys("grace").await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Search']")).await.unwrap().click().await.unwrap();
    b.wait_until("the empty report", WAIT, &has_text("main", "Nothing to report.")).await;
    b.close().await;
}

#[tokio::test]
async fn a_group_created_and_activated_follows_its_job_to_done() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Meadow Clinic").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let contact = unique("chart");
        let email = (n < 2).then(|| format!("{contact}@example.com"));
        t.put_contact(&contact, email.as_deref()).await.ok(200);
        ids.push(contact);
    }
    let b = Browser::start().await;
    sign_in(&b, &t, WRITE, "#/groups").await;
    b.wait_until("the groups screen", WAIT, &has_text("button", "New group")).await;
    b.client.find(Locator::XPath("//button[normalize-space()='New group']")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::Css("#group-form input[name=name]")).await.unwrap().send_keys("Diabetes clinic").await.unwrap();
    b.client.find(Locator::Css("#group-form textarea[name=contact_ids]")).await.unwrap().send_keys(&ids.join("\n")).await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Save group']")).await.unwrap().click().await.unwrap();
    b.wait_until("the saved group", WAIT, "document.querySelector('#groups tr[data-group]')").await;
    assert!(b.client.find(Locator::Id("groups")).await.unwrap().text().await.unwrap().contains("Diabetes clinic"));
    b.assert_accessible("the groups screen").await;
    b.client.find(Locator::XPath("//button[normalize-space()='Activate Portal']")).await.unwrap().click().await.unwrap();
    b.wait_until("the job done", Duration::from_secs(60), "document.querySelector('.counters[data-state=done]')").await;
    let counters = b.client.find(Locator::Css(".counters")).await.unwrap().text().await.unwrap();
    assert!(counters.contains("2 activated") && counters.contains("1 skipped without email"), "{counters}");
    b.close().await;
}

#[tokio::test]
async fn the_keyboard_alone_generates_a_code_and_confirms_an_action() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Northside Clinic").await;
    let contact = unique("chart");
    t.put_contact(&contact, Some(&format!("{contact}@example.com"))).await.ok(200);
    let b = Browser::sized(360, 800).await;
    sign_in(&b, &t, WRITE, &format!("#/contacts/{contact}")).await;
    b.wait_until("the portlet", WAIT, &portlet_has("Northside Clinic")).await;
    assert_eq!(b.eval("return window.innerWidth", vec![]).await, json!(360), "a small phone's width");
    b.tab_to("Generate", 40).await;
    b.press_enter().await;
    b.wait_until("the code", WAIT, "document.querySelector('portal-access-portlet').shadowRoot.querySelector('code')").await;
    // The state's action, then its confirmation, where the focus has gone by itself.
    b.tab_to("Resend", 10).await;
    b.press_enter().await;
    b.wait_until("the question", WAIT, &portlet_has("Email the pending invitation again?")).await;
    let focused = b.eval("return document.querySelector('portal-access-portlet').shadowRoot.activeElement.textContent.trim()", vec![]).await;
    assert_eq!(focused, json!("Yes, resend"), "the confirmation has the focus");
    b.press_enter().await;
    b.wait_until("resent", WAIT, &portlet_has("Resend: done.")).await;
    assert_no_sideways_scroll(&b, "the contact record at 360 px").await;
    b.close().await;
}

/// A contact whose email bounced: the listing's badge and filter, the portlet's notice without
/// "Generate & Email", and the log's delivery status.
#[tokio::test]
async fn a_bounced_address_shows_in_the_listing_the_portlet_and_the_log() {
    use crate::deliveries::{publish, sent_email, ses_event};
    let t = TestApp::new().await;
    let email = format!("{}@example.org", unique("bounced"));
    let contact = t.with_contact(Some(&email)).await;
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let (document, message_id, _) = sent_email(&t, &contact).await;
    publish(&ses_event("bounce", &t, &contact, &document, &message_id, &email)).await;
    crate::helpers::eventually(WAIT, || async { (t.status(&contact).await.body["email_problem"] == "bounced").then_some(()) })
        .await
        .expect("the bounce recorded");
    t.with_contact(Some(&format!("{}@example.org", unique("fine")))).await;

    let b = Browser::sized(390, 844).await;
    sign_in(&b, &t, WRITE, "").await;
    b.wait_until("the listing", WAIT, &has_text("#contacts-table", &email)).await;
    b.client.find(Locator::Css("input[name=problems]")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Search']")).await.unwrap().click().await.unwrap();
    b.wait_until("only the bounced contact", WAIT, "document.querySelectorAll('#contacts-table tbody tr').length === 1").await;
    b.wait_until("its badge", WAIT, &has_text("#contacts-table .email-problem", "Bounced")).await;
    b.assert_accessible("the listing filtered by email problems").await;

    // The contact's record, in the same document (a hash route): still signed in.
    b.goto(&format!("{}/console/#/contacts/{contact}", t.base())).await;
    b.wait_until("the portlet's notice", WAIT, &portlet_has("This contact's email address bounced")).await;
    let buttons = b.eval("return [...document.querySelector('portal-access-portlet').shadowRoot.querySelectorAll('button')].map(b => b.textContent.trim())", vec![]).await;
    let buttons: Vec<&str> = buttons.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(buttons.contains(&"Generate") && !buttons.contains(&"Generate & Email"), "{buttons:?}");
    b.wait_until("the log's delivery status", WAIT, "document.querySelector('#email-log td[data-delivery=bounced]')").await;
    assert!(b.eval("return document.querySelector('#email-log').innerText", vec![]).await.as_str().unwrap().contains("550 5.1.1"));
    assert_no_sideways_scroll(&b, "the contact record of a bounced contact").await;
    b.assert_accessible("the contact record of a bounced contact").await;
    b.close().await;
}

/// Issue 17's screens: the portal sends pickup codes by text too (ticked in Portal Administration),
/// the template editor counts the text message's segments and keeps a Spanish template apart, and
/// the contact's Email/Text Log shows the text beside the email, in the contact's language.
#[tokio::test]
async fn texts_and_languages_from_portal_administration_to_the_email_text_log() {
    let t = TestApp::new().await;
    hosted_portal(&t, "Harbour Clinic").await;
    let b = Browser::sized(1280, 1000).await;
    sign_in(&b, &t, ADMIN, "#/admin").await;
    b.wait_until("the portal form", WAIT, "document.querySelector('#channels input[name=sms_pickup_code]')").await;
    b.client.find(Locator::Css("#channels input[name=sms_pickup_code]")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Save portal']")).await.unwrap().click().await.unwrap();
    b.wait_until("portal saved", WAIT, &has_text(".notice", "saved")).await;
    assert_eq!(t.get("/v1/portals/main").await.ok(200)["channels"], json!({"pickup_code": ["email", "sms"]}));

    // The text message's preview counts it; a character outside GSM-7 makes it UCS-2.
    b.wait_until("the text message preview", WAIT, &has_text("#preview-sms-info", "GSM-7")).await;
    let sms = b.client.find(Locator::Id("tpl-sms")).await.unwrap();
    sms.clear().await.unwrap();
    sms.send_keys("{{ tenant_name }}: código {{ code }}").await.unwrap();
    b.wait_until("UCS-2 counted", WAIT, &has_text("#preview-sms-info", "UCS-2")).await;
    b.wait_until("one segment", WAIT, &has_text("#preview-sms-info", "1 segment ")).await;
    // A Spanish template, saved apart from the default language's.
    let locale = b.client.find(Locator::Id("tpl-locale")).await.unwrap();
    locale.send_keys("es\n").await.unwrap();
    b.wait_until("the built-in Spanish", WAIT, &has_text("#tpl-source", "built-in default in es")).await;
    let subject = b.client.find(Locator::Id("tpl-subject")).await.unwrap();
    subject.clear().await.unwrap();
    subject.send_keys("Su código de {{ portal_name }}").await.unwrap();
    b.client.find(Locator::XPath("//button[normalize-space()='Save template']")).await.unwrap().click().await.unwrap();
    b.wait_until("saved in es", WAIT, &has_text(".notice", "Template saved (es).")).await;
    assert_eq!(t.get("/v1/portals/main/templates/pickup_code?locale=es").await.ok(200)["subject"], "Su código de {{ portal_name }}");
    assert_eq!(t.get("/v1/portals/main/templates/pickup_code").await.ok(200)["source"], "default", "English untouched");
    b.assert_accessible("Portal Administration with texts and languages").await;

    // A Spanish contact with a phone: Generate & Email sends both, the log shows both.
    let contact = unique("chart");
    let body = json!({"name": "Ana Ruiz", "kind": "individual", "email": format!("{contact}@example.com"), "phone": "+15550001234", "locale": "es"});
    t.call(Method::PUT, &format!("/v1/contacts/{contact}"), WRITE, Some(body)).await.ok(200);
    b.goto(&format!("{}/console/#/contacts/{contact}", t.base())).await;
    b.wait_until("the portlet", WAIT, &portlet_has("Generate & Email")).await;
    b.click_in_shadow("portal-access-portlet", "Generate & Email").await;
    b.wait_until("the text in the log", WAIT, "document.querySelector('#email-log tr[data-channel=sms][data-status=sent]') && document.querySelector('#email-log tr[data-channel=email][data-status=sent]')").await;
    let log = b.eval("return document.querySelector('#email-log').innerText", vec![]).await;
    assert!(log.as_str().unwrap().contains("Text") && log.as_str().unwrap().contains("+15550001234") && log.as_str().unwrap().contains("Su código de Harbour Clinic"), "{log}");
    assert_eq!(t.get(&format!("/v1/contacts/{contact}")).await.ok(200)["phone"], "+15550001234");
    b.assert_accessible("the Email/Text Log with a text").await;
    b.screenshot("console-email-text-log").await;
    b.close().await;
}
