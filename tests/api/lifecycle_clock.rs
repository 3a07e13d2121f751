//! Lifecycle rules that need time to pass: expired links are reset, and the
//! listing's `expired` filter, status and the claim agree on expiry. Driven
//! in process with the functions' handlers and a clock the test controls.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use portal::app::App;

use portal::store::EmailKey;
use serde_json::{json, Value};

async fn op(app: &App, tenant: &str, contact: &str, name: &str) -> (u16, Value) {
    let route = format!("/v1/contacts/{{contact_id}}/portal/{name}");
    let e = staff("POST", &route).param("contact_id", contact).json(&json!({}));
    call(app, portal::http::HttpFunction::Lifecycle, tenant, e).await
}

/// The activation link's token, read from the stored email entry.
async fn token_of(app: &App, tenant: &str, contact: &str, document_id: &str) -> String {
    let key = EmailKey {
        tenant_id: portal::domain::TenantId::parse(tenant).unwrap(),
        contact_id: portal::domain::ContactId::parse(contact).unwrap(),
        document_id: portal::domain::DocumentId::parse(document_id).unwrap(),
    };
    // Not sent in process: the link is still sealed for the mailer (the log shows it masked).
    let entry = app.store.get_email(&key).await.unwrap().unwrap();
    assert!(entry.vars["link"].ends_with("token=[hidden]"), "{:?}", entry.vars);
    let secrets: serde_json::Value = serde_json::from_str(&app.keys.get().await.unwrap().open_sealed(&key.document_id, entry.sealed.as_deref().unwrap()).unwrap()).unwrap();
    secrets["link"].as_str().unwrap().rsplit("token=").next().unwrap().to_owned()
}

async fn claim_token(app: &App, token: &str, email: &str) -> u16 {
    let resp = portal::http::HttpFunction::Claim.handle(app, fixture("claim.json").json(&json!({"token": token, "email": email})).request()).await;
    resp.status().as_u16()
}

async fn listed(app: &App, tenant: &str, state: &str) -> Vec<String> {
    let e = staff("GET", "/v1/contacts").query("portal_status", state);
    let (code, page) = call(app, portal::http::HttpFunction::Contacts, tenant, e).await;
    assert_eq!(code, 200, "{page}");
    let mut ids: Vec<String> = page["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

async fn put_contact(admin_app: &App, tenant: &str, id: &str, email: &str) {
    let e = staff("PUT", "/v1/contacts/{contact_id}").param("contact_id", id).json(&json!({"name": id, "email": email, "kind": "individual"}));
    assert_eq!(portal::http::HttpFunction::Contacts.handle(admin_app, e.tenant(tenant).request()).await.status(), 200);
}

#[tokio::test]
async fn an_expired_link_is_reset_by_resend_and_only_the_new_link_works() {
    let tenant = unique("exp");
    let t0: DateTime<Utc> = "2026-05-01T08:00:00Z".parse().unwrap();
    let mut admin_app = app("admin").await;
    let admin_clock = Clock::install(&mut admin_app, t0);
    let mut life = app("lifecycle").await;
    let life_clock = Clock::install(&mut life, t0);
    let mut claim_app = app("claim").await;
    let claim_clock = Clock::install(&mut claim_app, t0);
    let mut status_app = app("status").await;
    let status_clock = Clock::install(&mut status_app, t0);
    assert_eq!(portal::http::HttpFunction::Admin.handle(&admin_app, fixture("admin-put-portal.json").tenant(&tenant).request()).await.status(), 200);

    // Four contacts: one never invited, one invited long ago (expired), one invited now (pending), one active.
    for id in ["a-none", "b-expired", "c-pending", "d-active"] {
        put_contact(&admin_app, &tenant, id, &format!("{id}@example.com")).await;
    }
    life_clock.set(t0 - Duration::hours(200));
    let (code, old) = op(&life, &tenant, "b-expired", "activate").await;
    assert_eq!(code, 202, "{old}");
    let old_token = token_of(&life, &tenant, "b-expired", old["email_document_id"].as_str().unwrap()).await;
    life_clock.set(t0);
    op(&life, &tenant, "c-pending", "activate").await;
    let (_, d) = op(&life, &tenant, "d-active", "activate").await;
    let d_token = token_of(&life, &tenant, "d-active", d["email_document_id"].as_str().unwrap()).await;
    assert_eq!(claim_token(&claim_app, &d_token, "d-active@example.com").await, 201);

    // The listing, the portlet and the claim agree on expiry at t0.
    assert_eq!(listed(&admin_app, &tenant, "none").await, ["a-none"]);
    assert_eq!(listed(&admin_app, &tenant, "expired").await, ["b-expired"]);
    assert_eq!(listed(&admin_app, &tenant, "pending").await, ["c-pending"]);
    assert_eq!(listed(&admin_app, &tenant, "active").await, ["d-active"]);
    assert!(listed(&admin_app, &tenant, "disabled").await.is_empty());
    let e = staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", "b-expired");
    let (_, view) = call(&status_app, portal::http::HttpFunction::Status, &tenant, e).await;
    assert_eq!(view["portals"][0]["state"], "expired");
    assert_eq!(claim_token(&claim_app, &old_token, "b@example.com").await, 400, "an expired link is refused");

    // Resend on an expired invitation resets it: a new expiry and a new link.
    let (code, reset) = op(&life, &tenant, "b-expired", "resend").await;
    assert_eq!(code, 202, "{reset}");
    assert_eq!(reset["action"], "reset");
    assert_eq!(reset["expires_at"], "2026-05-08T08:00:00.000Z");
    let new_token = token_of(&life, &tenant, "b-expired", reset["email_document_id"].as_str().unwrap()).await;
    assert_eq!(listed(&admin_app, &tenant, "pending").await, ["b-expired", "c-pending"]);
    claim_clock.set(t0 + Duration::hours(1));
    assert_eq!(claim_token(&claim_app, &old_token, "b@example.com").await, 400, "the old link stays dead");
    assert_eq!(claim_token(&claim_app, &new_token, "b-expired@example.com").await, 201, "the link, for the address it was emailed to");

    // Later still, the pending one expires without anyone writing anything.
    admin_clock.set(t0 + Duration::hours(168));
    status_clock.set(t0 + Duration::hours(168));
    assert_eq!(listed(&admin_app, &tenant, "expired").await, ["c-pending"]);
    assert_eq!(listed(&admin_app, &tenant, "active").await, ["b-expired", "d-active"]);
}
