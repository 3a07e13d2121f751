//! Text messages and languages (issue 17), against the local stack: the
//! real gateway, the real mail queue and mailer, moto's SNS (which records
//! every SMS it accepts under `sns.SMS` in `/moto-api/data.json`, and says a
//! number ending in 99 has opted out) and moto's SES.

use crate::helpers::*;
use portal_local::local;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A number of our own (moto's SNS keeps every SMS of every test): `+1555` and 7 random digits, never ending in 99.
fn phone() -> String {
    let n = (uuid::Uuid::new_v4().as_u128() % 9_000_000) as u32 + 1_000_000;
    let n = if n % 100 == 99 { n - 1 } else { n };
    // Exchange 976 is a premium range (`domain::number_plan`).
    let n = if n / 10_000 == 976 { n - 10_000 } else { n };
    format!("+1555{n}")
}

/// The texts moto's SNS accepted for `to`.
async fn texts_to(to: &str) -> Vec<String> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", local::moto_endpoint())).await.expect("moto answers").json().await.unwrap_or(Value::Null);
    data["sns"]["SMS"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["phone_number"] == to)
        .filter_map(|m| m["message"].as_str().map(str::to_owned))
        .collect()
}

async fn put_contact(t: &TestApp, id: &str, body: Value) -> Answer {
    t.call(Method::PUT, &format!("/v1/contacts/{id}"), WRITE, Some(body)).await
}

/// A hosted-less portal `main` whose pickup codes and deactivation notices go by email and text.
async fn portal_with_texts(t: &TestApp, extra: Value) {
    let mut body = json!({"name": "Main", "default": true, "claim_url": "https://portal.example.com/claim",
                          "channels": {"pickup_code": ["email", "sms"], "deactivation": ["email", "sms"]}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await.ok(200);
}

/// The log's entries once `n` of them are no longer queued.
async fn settled_log(t: &TestApp, contact: &str, n: usize) -> Vec<Value> {
    let found = eventually(WAIT, || async {
        let items = t.emails(contact).await.body["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= n && items.iter().all(|e| e["status"] != "queued")).then_some(items)
    })
    .await;
    match found {
        Some(items) => items,
        None => panic!("the log never settled: {:?}", t.emails(contact).await),
    }
}

#[tokio::test]
async fn phones_and_locales_are_checked_and_kept() {
    let t = TestApp::new().await;
    t.put_portal("main", true).await.ok(200);
    for (field, bad) in [("phone", "555-0100"), ("phone", "+0123456789"), ("phone", "+1 415 555 0100"), ("locale", "english"), ("locale", "es-")] {
        let a = put_contact(&t, "c1", json!({"name": "Ann", "kind": "individual", field: bad})).await;
        a.ok(422);
        assert_eq!(a.body["errors"][0]["pointer"], format!("/{field}"), "{field}={bad}: {a:?}");
    }
    let a = put_contact(&t, "c1", json!({"name": "Ann", "kind": "individual", "phone": " +14155550123 ", "locale": "ES-mx"})).await;
    let c = a.ok(200);
    assert_eq!((c["phone"].as_str(), c["locale"].as_str()), (Some("+14155550123"), Some("es-MX")));
    assert_eq!(t.get("/v1/contacts/c1").await.ok(200)["locale"], "es-MX");
    // Both can be taken away again.
    let c = put_contact(&t, "c1", json!({"name": "Ann", "kind": "individual"})).await;
    assert_eq!((c.body["phone"].clone(), c.body["locale"].clone()), (Value::Null, Value::Null));
    // Portal settings: channels per kind, and the default language.
    for (body, pointer) in [
        (json!({"channels": {"pickup_code": []}}), "/channels"),
        (json!({"channels": {"pickup_code": ["fax"]}}), ""),
        (json!({"channels": {"claim_confirmation": ["sms"]}}), "/channels"),
        (json!({"channels": {"reminder": ["sms", "sms"]}}), "/channels"),
        (json!({"default_locale": "nope-"}), "/default_locale"),
    ] {
        let mut portal = json!({"name": "Main", "default": true, "claim_url": "https://portal.example.com/claim"});
        for (k, v) in body.as_object().unwrap() {
            portal[k] = v.clone();
        }
        let a = t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(portal)).await;
        assert!(a.status == 422 || a.status == 400, "{body}: {a:?}");
        if !pointer.is_empty() {
            assert_eq!(a.body["errors"][0]["pointer"], pointer, "{body}: {a:?}");
        }
    }
    let p = t.get("/v1/portals/main").await;
    assert_eq!(p.ok(200)["default_locale"], "en", "the default language is English");
}

#[tokio::test]
async fn generate_and_email_texts_the_code_too_and_the_log_shows_both() {
    let t = TestApp::new().await;
    portal_with_texts(&t, json!({})).await;
    let (contact, to, email) = (unique("sms"), phone(), format!("{}@example.com", unique("sms")));
    put_contact(&t, &contact, json!({"name": "Ann Lee", "kind": "individual", "email": email, "phone": to})).await.ok(200);
    // The portlet says what "Generate & Email" would do.
    assert_eq!(t.status(&contact).await.ok(200)["portals"][0]["sends_by"], json!(["email", "sms"]));
    let issued = t.generate(&contact, json!({"send_email": true})).await;
    let code = issued.ok(201)["code"].as_str().unwrap().to_owned();
    let log = settled_log(&t, &contact, 2).await;
    let by = |channel: &str| log.iter().find(|e| e["channel"] == channel).cloned().unwrap_or_else(|| panic!("no {channel} entry: {log:?}"));
    let (sms, mail) = (by("sms"), by("email"));
    assert_eq!((sms["status"].as_str(), sms["to"].as_str()), (Some("sent"), Some(to.as_str())), "{sms}");
    assert_eq!(mail["status"], "sent", "{mail}");
    assert_eq!(sms["subject"], Value::Null, "a text has no subject");
    // The text reached SNS with the rendered code; the log keeps it masked.
    let texts = texts_to(&to).await;
    assert_eq!(texts.len(), 1, "one text, sent once: {texts:?}");
    assert!(texts[0].contains(&code) && texts[0].contains("activation code"), "{texts:?}");
    let doc = t.get(&format!("/v1/emails/{}", sms["document_id"].as_str().unwrap())).await;
    let kept = doc.ok(200)["text"].as_str().unwrap_or_default().to_owned();
    assert!(!kept.contains(&code), "the stored text shows the code masked: {kept}");
    // The code's row names the first of the send's messages; both are on the one log.
    let doc = issued.body["email_document_id"].as_str().unwrap();
    assert!(log.iter().any(|e| e["document_id"] == doc), "{doc} in {log:?}");
    // The reports say how it went out.
    let unused = t.get("/v1/reports/unused-codes").await;
    let row = unused.ok(200)["items"].as_array().unwrap().iter().find(|r| r["contact_id"] == contact.as_str()).cloned().unwrap();
    assert_eq!(row["sent_by"], json!(["email", "sms"]), "{row}");
}

#[tokio::test]
async fn a_contact_with_only_a_phone_gets_only_the_text_and_one_with_neither_is_refused() {
    let t = TestApp::new().await;
    portal_with_texts(&t, json!({})).await;
    let (contact, to) = (unique("sms"), phone());
    put_contact(&t, &contact, json!({"name": "Ann", "kind": "individual", "phone": to})).await.ok(200);
    assert_eq!(t.status(&contact).await.ok(200)["portals"][0]["sends_by"], json!(["sms"]));
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let log = settled_log(&t, &contact, 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0]["channel"].as_str(), log[0]["status"].as_str()), (Some("sms"), Some("sent")));
    // Texts only, and no phone: refused, nothing stored. (Another tenant: each function caches its portals for a while.)
    let t = TestApp::new().await;
    t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(json!({"name": "Main", "default": true, "claim_url": "https://portal.example.com/claim", "channels": {"pickup_code": ["sms"]}})))
        .await
        .ok(200);
    let other = unique("sms");
    put_contact(&t, &other, json!({"name": "Bo", "kind": "individual", "email": "bo@example.com"})).await.ok(200);
    assert_eq!(t.status(&other).await.ok(200)["portals"][0]["sends_by"], json!([]), "nothing to send by: the portlet offers no send");
    let refused = t.generate(&other, json!({"send_email": true})).await;
    assert!(refused.problem(422).contains("phone number"), "{refused:?}");
    assert_eq!(t.emails(&other).await.ok(200)["items"], json!([]));
}

#[tokio::test]
async fn an_opted_out_number_gets_nothing_and_the_log_says_why() {
    let t = TestApp::new().await;
    portal_with_texts(&t, json!({})).await;
    let contact = unique("sms");
    // moto's SNS: numbers ending in 99 opted out (and it would still take a Publish to them).
    let to = format!("{}99", &phone()[..10]);
    put_contact(&t, &contact, json!({"name": "Ann", "kind": "individual", "email": format!("{contact}@example.com"), "phone": to})).await.ok(200);
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let log = settled_log(&t, &contact, 2).await;
    let sms = log.iter().find(|e| e["channel"] == "sms").unwrap();
    assert_eq!(sms["status"], "failed", "{sms}");
    assert!(sms["failure_reason"].as_str().unwrap().contains("opted out"), "{sms}");
    assert!(texts_to(&to).await.is_empty(), "nothing was published to an opted-out number");
    assert_eq!(log.iter().find(|e| e["channel"] == "email").unwrap()["status"], "sent", "the email still went");
}

#[tokio::test]
async fn texts_have_their_own_hourly_quota() {
    let t = TestApp::new().await;
    portal_with_texts(&t, json!({})).await;
    let settings = t.call(Method::PUT, "/v1/settings", ADMIN, Some(json!({"emails_per_hour": 500, "sms_per_hour": 1}))).await;
    assert_eq!(settings.ok(200)["sms_per_hour"], 1);
    let too_many = t.call(Method::PUT, "/v1/settings", ADMIN, Some(json!({"emails_per_hour": 500, "sms_per_hour": 1_000_000}))).await;
    assert!(too_many.problem(422).contains("sms_per_hour"), "{too_many:?}");
    let mut contacts = Vec::new();
    for _ in 0..2 {
        let (c, to) = (unique("sms"), phone());
        put_contact(&t, &c, json!({"name": "Ann", "kind": "individual", "phone": to})).await.ok(200);
        t.generate(&c, json!({"send_email": true})).await.ok(201);
        contacts.push((c, to));
    }
    let statuses = eventually(WAIT, || async {
        let mut s = Vec::new();
        for (c, _) in &contacts {
            s.push(t.emails(c).await.body["items"][0]["status"].as_str().unwrap_or_default().to_owned());
        }
        let mut sorted = s.clone();
        sorted.sort();
        (sorted == ["sent", "throttled"]).then_some(s)
    })
    .await;
    if statuses.is_none() {
        let mut logs = Vec::new();
        for (c, _) in &contacts {
            logs.push(t.emails(c).await.body);
        }
        panic!("one text sent, one held back by the quota: {logs:?}");
    }
    let s = t.get("/v1/settings").await;
    assert_eq!((s.ok(200)["sms_sent_this_hour"].as_u64(), s.body["sent_this_hour"].as_u64()), (Some(1), Some(0)), "{:?}", s.body);
}

#[tokio::test]
async fn the_text_template_is_previewed_with_its_length_and_segments() {
    let t = TestApp::new().await;
    t.put_portal("main", true).await.ok(200);
    let path = "/v1/portals/main/templates/pickup_code";
    let p = t.call(Method::POST, &format!("{path}/preview"), ADMIN, Some(json!({}))).await;
    let sms = &p.ok(200)["sms"];
    assert!(sms["text"].as_str().unwrap().contains("7K3QD-M9XPT"), "{sms}");
    assert_eq!((sms["encoding"].as_str(), sms["segments"].as_u64()), (Some("GSM-7"), Some(1)), "{sms}");
    let p = t.call(Method::POST, &format!("{path}/preview"), ADMIN, Some(json!({"sms": "Código {{ code }} ✓"}))).await;
    let sms = &p.ok(200)["sms"];
    assert_eq!((sms["encoding"].as_str(), sms["length"].as_u64(), sms["segments"].as_u64()), (Some("UCS-2"), Some(20), Some(1)), "{sms}");
    let long = "{{ contact_name }} ".repeat(200);
    let p = t.call(Method::POST, &format!("{path}/preview"), ADMIN, Some(json!({"sms": "x".repeat(1600)}))).await;
    assert_eq!(p.ok(422)["errors"][0]["pointer"], "/sms", "{p:?}");
    // 1,599 GSM-7 characters with the sample name: 11 segments, one too many.
    let saved = t.call(Method::PUT, path, ADMIN, Some(json!({"subject": "Hi", "text": "t", "html": "h", "sms": long}))).await;
    assert!(saved.problem(422).contains("segments"), "{saved:?}");
    // Saved without an sms part: the built-in text stays in force.
    let saved = t.call(Method::PUT, path, ADMIN, Some(json!({"subject": "Hi", "text": "t", "html": "h"}))).await;
    assert!(saved.ok(200)["sms"].as_str().unwrap().contains("{{ code }}"), "{saved:?}");
}

#[tokio::test]
async fn a_spanish_contact_gets_the_spanish_template_and_others_fall_back() {
    let t = TestApp::new().await;
    t.put_portal("main", true).await.ok(200);
    let path = "/v1/portals/main/templates/pickup_code";
    // The portal's own Spanish template; none for French.
    let es = json!({"subject": "Código para {{ contact_name }}", "text": "Hola, su código: {{ code }}", "html": "<p>Hola {{ code }}</p>"});
    let saved = t.call(Method::PUT, &format!("{path}?locale=es"), ADMIN, Some(es)).await;
    assert_eq!((saved.ok(200)["locale"].as_str(), saved.body["source"].as_str()), (Some("es"), Some("portal")));
    // GET tells what a contact of each locale would get.
    let mx = t.get(&format!("{path}?locale=es-MX")).await;
    assert_eq!((mx.ok(200)["locale"].as_str(), mx.body["source"].as_str()), (Some("es"), Some("portal")), "es-MX → es");
    let fr = t.get(&format!("{path}?locale=fr")).await;
    assert_eq!((fr.ok(200)["locale"].as_str(), fr.body["source"].as_str()), (Some("en"), Some("default")), "fr → the portal's default, built in");
    assert_eq!(t.get(path).await.ok(200)["locales"], json!(["es"]));
    let bad = t.get(&format!("{path}?locale=!!")).await;
    assert_eq!(bad.ok(422)["errors"][0]["pointer"], "/locale");
    // Real sends: es-MX gets the portal's Spanish; fr falls back to English; pt-BR on a
    // Spanish-default portal would get the built-in Spanish (checked below with `deactivation`).
    let mut sent = Vec::new();
    for locale in ["es-MX", "fr"] {
        let contact = unique("lang");
        let to = format!("{contact}@example.com");
        put_contact(&t, &contact, json!({"name": "Ana", "kind": "individual", "email": to, "locale": locale})).await.ok(200);
        let code = t.generate(&contact, json!({"send_email": true})).await.ok(201)["code"].as_str().unwrap().to_owned();
        let log = settled_log(&t, &contact, 1).await;
        assert_eq!(log[0]["status"], "sent", "{log:?}");
        let body = ses_message_text(log[0]["ses_message_id"].as_str().unwrap()).await;
        assert!(body.contains(&code), "{body}");
        sent.push((locale, log[0]["subject"].as_str().unwrap().to_owned(), log[0]["locale"].clone(), body));
    }
    assert_eq!(sent[0].1, "Código para Ana");
    assert_eq!(sent[0].2, "es");
    assert!(sent[0].3.contains("Hola"), "{}", sent[0].3);
    assert_eq!(sent[1].1, "Your Portal main activation code");
    assert_eq!(sent[1].2, "en");
}

#[tokio::test]
async fn a_spanish_default_portal_sends_the_built_in_spanish_for_every_kind_asked() {
    let t = TestApp::new().await;
    let body = json!({"name": "Clínica", "default": true, "claim_url": "https://portal.example.com/claim", "default_locale": "es"});
    t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await.ok(200);
    let contact = unique("lang");
    let to = format!("{contact}@example.com");
    // No locale of its own: the portal's Spanish; and a locale we ship nothing for (pt-BR) falls back to it too.
    put_contact(&t, &contact, json!({"name": "Ana", "kind": "individual", "email": to, "locale": "pt-BR"})).await.ok(200);
    t.generate(&contact, json!({"send_email": true})).await.ok(201);
    let log = settled_log(&t, &contact, 1).await;
    assert_eq!(log[0]["subject"], "Su código de activación de Clínica", "{log:?}");
    assert_eq!(log[0]["locale"], "es");
    // The deactivation notice too.
    let deactivated = t.call(Method::POST, &format!("/v1/contacts/{contact}/portal/deactivate"), WRITE, Some(json!({}))).await;
    assert!(deactivated.status.is_success(), "{deactivated:?}");
    let log = settled_log(&t, &contact, 2).await;
    let notice = log.iter().find(|e| e["kind"] == "deactivation").unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(notice["subject"], "Su acceso a Clínica ha terminado");
}

/// `sms_per_hour` counts segments, as SNS bills them: with room for 4, one
/// text of 3 segments goes and a second waits for the next hour.
#[tokio::test]
async fn the_text_quota_counts_segments_not_messages() {
    let t = TestApp::new().await;
    portal_with_texts(&t, json!({})).await;
    let long = format!("{{{{ tenant_name }}}}: your code is {{{{ code }}}}. {}", "Please keep it safe. ".repeat(16));
    let template = json!({"subject": "Your code", "text": "{{ code }}", "html": "<p>{{ code }}</p>", "sms": long});
    t.call(Method::PUT, "/v1/portals/main/templates/pickup_code", ADMIN, Some(template)).await.ok(200);
    t.call(Method::PUT, "/v1/settings", ADMIN, Some(json!({"emails_per_hour": 500, "sms_per_hour": 4}))).await.ok(200);
    let mut contacts = Vec::new();
    for _ in 0..2 {
        let (c, to) = (unique("seg"), phone());
        put_contact(&t, &c, json!({"name": "Ann", "kind": "individual", "phone": to})).await.ok(200);
        t.generate(&c, json!({"send_email": true})).await.ok(201);
        contacts.push(c);
    }
    let statuses = eventually(WAIT, || async {
        let mut s = Vec::new();
        for c in &contacts {
            s.push(t.emails(c).await.body["items"][0]["status"].as_str().unwrap_or_default().to_owned());
        }
        s.sort();
        (s == ["sent", "throttled"]).then_some(s)
    })
    .await;
    assert!(statuses.is_some(), "one text of 3 segments sent, the next held back by a quota of 4 segments");
    let s = t.get("/v1/settings").await;
    assert_eq!(s.ok(200)["sms_sent_this_hour"].as_u64(), Some(3), "{:?}", s.body);
}

/// A contact's phone must be one this deployment texts: in its `SmsCountries`
/// (default US, CA, GB) and outside the premium and short ranges; else 422 at `/phone`.
#[tokio::test]
async fn phones_outside_the_deployment_s_countries_or_in_premium_ranges_are_refused() {
    let t = TestApp::new().await;
    t.put_portal("main", true).await.ok(200);
    for (phone, why) in [("+33612345678", "country"), ("+18765550123", "country"), ("+19005550123", "premium"), ("+449098790123", "premium"), ("+1415555012", "short")] {
        let c = unique("cc");
        let refused = put_contact(&t, &c, json!({"name": "Ann", "kind": "individual", "phone": phone})).await;
        let detail = refused.problem(422).to_owned();
        assert_eq!(refused.body["errors"][0]["pointer"], "/phone", "{phone}");
        assert!(detail.contains(why) && detail.contains(phone), "{phone}: {detail}");
        t.get(&format!("/v1/contacts/{c}")).await.problem(404);
    }
    for phone in ["+14165550123", "+447700900123", "+14155550123"] {
        put_contact(&t, &unique("cc"), json!({"name": "Ann", "kind": "individual", "phone": phone})).await.ok(200);
    }
}
