//! The code hash key lives in Secrets Manager with versions (`domain::keyring`):
//! rotating it voids nothing pending. A code issued, and a fact of the record
//! stored, under the old key are still claimed and checked after a rotation
//! (the old version is AWSPREVIOUS); new codes use the new key; a second
//! rotation voids what only the first key knew. Against moto's Secrets
//! Manager, with a secret of this test's own (the shared local one stays put).

use crate::helpers::*;
use portal::app::App;
use portal::domain::{PickupCode, TenantId};
use portal::http::HttpFunction;
use portal::secrets::{HashKeys, Secrets};
use portal_local::local::Endpoints;
use serde_json::{json, Value};

/// The handler apps of one tenant, all reading the hash key from `secret`.
async fn apps_on(endpoints: &Endpoints, secret: &str) -> (App, App, App) {
    let keyed = |mut app: App| {
        app.keys = HashKeys::new(Secrets::new(&endpoints.moto), secret);
        app.activation_queue = app.activation_queue.clone().signed_with(app.keys.clone());
        app
    };
    (keyed(app("admin").await), keyed(app("generate").await), keyed(app("claim").await))
}

async fn rotate(sm: &aws_sdk_secretsmanager::Client, secret: &str, value: &str, apps: [&App; 3]) {
    sm.put_secret_value().secret_id(secret).secret_string(value).send().await.unwrap();
    // As every instance does within HASH_KEY_TTL: read the versions again.
    for app in apps {
        app.keys.forget().await;
    }
}

async fn generate(app: &App, tenant: &str, contact: &str) -> String {
    let (status, body) = call(app, HttpFunction::Generate, tenant, staff("POST", "/v1/contacts/{contact_id}/codes").param("contact_id", contact).json(&json!({}))).await;
    assert_eq!(status, 201, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

async fn claim(app: &App, code: &str, postal_code: &str) -> (u16, Value) {
    let resp = HttpFunction::Claim
        .handle(app, fixture("claim.json").json(&json!({"code": code, "email": "claimant@example.com", "postal_code": postal_code})).request())
        .await;
    (resp.status().as_u16(), body(&resp))
}

#[tokio::test]
async fn rotating_the_hash_key_keeps_old_codes_and_facts_claimable_and_new_codes_use_the_new_key() {
    let endpoints = Endpoints::from_env().await;
    let sm = aws_sdk_secretsmanager::Client::new(&endpoints.moto);
    let secret = unique("portal-test/code-hash-key");
    sm.create_secret().name(&secret).secret_string("first-key-of-this-test-0001").send().await.unwrap();
    let (admin, generator, claimer) = apps_on(&endpoints, &secret).await;
    let tenant = unique("t");
    let put_portal = staff("PUT", "/v1/portals/{portal_id}")
        .param("portal_id", "main")
        .json(&json!({"name": "Main", "default": true, "claim_url": "https://portal.example.com/claim", "claim_checks": ["postal_code"]}));
    let (status, body) = call(&admin, HttpFunction::Admin, &tenant, put_portal).await;
    assert_eq!(status, 200, "{body}");
    let mut contacts = Vec::new();
    for _ in 0..3 {
        let id = unique("chart");
        let put = staff("PUT", "/v1/contacts/{contact_id}")
            .param("contact_id", &id)
            .json(&json!({"name": "Ann Lee", "email": format!("{id}@example.com"), "kind": "individual", "postal_code": "SW1A 1AA"}));
        let (status, body) = call(&admin, HttpFunction::Contacts, &tenant, put).await;
        assert_eq!(status, 200, "{body}");
        contacts.push(id);
    }
    // Codes for the first two contacts, and the facts of all three, under the first key.
    let old_code = generate(&generator, &tenant, &contacts[0]).await;
    let oldest_code = generate(&generator, &tenant, &contacts[1]).await;
    let first = admin.keys.get().await.unwrap();
    let first_version = first.current.version.clone();

    rotate(&sm, &secret, "second-key-of-this-test-002", [&admin, &generator, &claimer]).await;
    let second = admin.keys.get().await.unwrap();
    assert_ne!(second.current.version, first_version, "a new current version");
    assert_eq!(second.previous.as_ref().map(|k| k.version.clone()), Some(first_version.clone()), "the old one is previous");

    // The code issued before the rotation is claimed, its fact checked under the old key:
    // 202, a confirmation sent (a wrong postal code is the usual 400).
    assert_eq!(claim(&claimer, &old_code, "SW1A 2AA").await.0, 400, "the fact is still checked");
    let (status, body) = claim(&claimer, &old_code, "sw1a1aa").await;
    assert_eq!(status, 202, "an old code after a rotation: {body}");

    // A new code is stored under the new key only.
    let new_code = generate(&generator, &tenant, &contacts[2]).await;
    let parsed = PickupCode::parse(&new_code).unwrap();
    let store = &claimer.store;
    assert!(store.find_code(&second.current.hasher.hash(&parsed)).await.unwrap().is_some(), "hashed with the current key");
    assert!(store.find_code(&second.previous.as_ref().unwrap().hasher.hash(&parsed)).await.unwrap().is_none(), "not with the old one");
    assert_eq!(claim(&claimer, &new_code, "SW1A 1AA").await.0, 202);

    // A second rotation: the first key is gone, so what only it hashed is void —
    // the reason to rotate no more often than the longest code lifetime.
    rotate(&sm, &secret, "third-key-of-this-test-0003", [&admin, &generator, &claimer]).await;
    assert_eq!(claim(&claimer, &oldest_code, "SW1A 1AA").await.0, 400, "two rotations old: void");
    // Re-saving a contact re-hashes its facts under the current key (and records the version).
    let put = staff("PUT", "/v1/contacts/{contact_id}")
        .param("contact_id", &contacts[1])
        .json(&json!({"name": "Ann Lee", "email": format!("{}@example.com", contacts[1]), "kind": "individual", "postal_code": "SW1A 1AA"}));
    assert_eq!(call(&admin, HttpFunction::Contacts, &tenant, put).await.0, 200);
    let contact = store.get_contact(&TenantId::parse(&tenant).unwrap(), &portal::domain::ContactId::parse(&contacts[1]).unwrap()).await.unwrap().unwrap();
    let third = admin.keys.get().await.unwrap();
    assert_eq!(contact.fact_key_versions.get(&portal::domain::Fact::PostalCode), Some(&third.current.version));
    let fresh = generate(&generator, &tenant, &contacts[1]).await;
    assert_eq!(claim(&claimer, &fresh, "SW1A 1AA").await.0, 202, "a fresh code and re-saved facts under the third key");
}

#[tokio::test]
async fn when_secrets_manager_does_not_answer_concurrent_first_requests_share_one_read_and_get_a_timeout() {
    // A Secrets Manager that takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let keys = HashKeys::new(Secrets::new(&portal_local::local::sdk_config(&endpoint).await), "portal-local/CodeHashKeySecret");
    // Two first requests of a cold instance, a moment apart.
    let started = std::time::Instant::now();
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        keys.get().await
    };
    let (first, second) = tokio::join!(keys.get(), second);
    let waited = started.elapsed();
    held.abort();
    // A dependency that did not answer (the API makes it a 503 with Retry-After), after one
    // read's operation timeout (5 s), not two in a row (which would outlast a 10 s function).
    for err in [first.expect_err("no key without Secrets Manager"), second.expect_err("nor for the second")] {
        assert!(portal::aws::did_not_answer(&err), "{err:#}");
    }
    assert!(waited < std::time::Duration::from_secs(7), "waited {waited:?}");
    println!("key read with Secrets Manager silent: both requests' answers after {waited:?}");
}

/// The key is read by the first request that needs it, not at cold start, so
/// a binary whose routes never hash (status, access; the console's static
/// files never touch the app) links no Secrets Manager client (README,
/// "Binary sizes"): they answer with no Secrets Manager at all, and so does a
/// report's only page; a report's next page (its cursor is signed with the
/// key) cannot.
#[tokio::test]
async fn what_never_hashes_answers_without_secrets_manager() {
    // Nothing listens there: every read of the key fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = portal_local::local::sdk_config(&format!("http://{closed}")).await;
    let keyless = |mut app: App| {
        app.keys = HashKeys::new(Secrets::new(&nowhere), "portal-local/CodeHashKeySecret");
        app
    };
    let admin = app("admin").await;
    let tenant = unique("t");
    let contact = unique("chart");
    let email = format!("{contact}@example.com");
    let put_portal = staff("PUT", "/v1/portals/{portal_id}").param("portal_id", "main").json(&json!({"name": "Main", "default": true, "claim_url": "https://portal.example.com/claim"}));
    assert_eq!(call(&admin, HttpFunction::Admin, &tenant, put_portal).await.0, 200);
    let put_contact = staff("PUT", "/v1/contacts/{contact_id}").param("contact_id", &contact).json(&json!({"name": "Ann Lee", "email": email, "kind": "individual"}));
    assert_eq!(call(&admin, HttpFunction::Contacts, &tenant, put_contact).await.0, 200);

    let status = keyless(app("status").await);
    assert!(status.keys.get().await.is_err(), "the key cannot be read from here");
    let (code, body) = call(&status, HttpFunction::Status, &tenant, staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", &contact)).await;
    assert_eq!(code, 200, "{body}");
    let access = keyless(app("access").await);
    let (code, body) = call(&access, HttpFunction::Access, &tenant, staff("GET", "/v1/accounts/{email}/access").param("email", &email)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["access"], json!([]), "{body}");
    let reports = keyless(app("reports").await);
    let (code, body) = call(&reports, HttpFunction::Reports, &tenant, staff("GET", "/v1/reports/activations")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["next_cursor"], Value::Null, "{body}");
    let (code, body) = call(&reports, HttpFunction::Reports, &tenant, staff("GET", "/v1/reports/activations").query("cursor", "eyJ4IjoxfQ")).await;
    assert_eq!(code, 503, "a cursor is opened with the key: {body}");
    let (code, body) = call(&admin, HttpFunction::Reports, &tenant, staff("GET", "/v1/reports/activations").query("cursor", "eyJ4IjoxfQ")).await;
    assert_eq!(code, 422, "with the key, a forged cursor is refused: {body}");
}
