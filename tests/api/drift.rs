//! The local stack and the code must describe the same resources as
//! template.yaml. Each check fails when one side changes without the other.

use crate::helpers::*;
use aws_sdk_sqs::types::QueueAttributeName;
use portal::http::HttpFunction;
use portal_local::local::{self, Endpoints};
use portal_local::setup::table_spec;
use reqwest::Method;

#[tokio::test]
async fn the_local_table_matches_the_template() {
    let t = template();
    let endpoints = Endpoints::from_env().await;
    let def = &t.tables[0];
    let spec = table_spec(def).unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
    let table = ddb.describe_table().table_name(&def.logical_id).send().await.unwrap().table.unwrap();
    assert_eq!(table.key_schema(), spec.keys.as_slice(), "key schema");
    let mut have = table.attribute_definitions().to_vec();
    let mut want = spec.attributes.clone();
    have.sort_by(|a, b| a.attribute_name().cmp(b.attribute_name()));
    want.sort_by(|a, b| a.attribute_name().cmp(b.attribute_name()));
    assert_eq!(have, want, "attribute definitions");
    let mut have_gsi: Vec<(String, Vec<_>)> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| (g.index_name().unwrap_or_default().to_owned(), g.key_schema().to_vec()))
        .collect();
    let mut want_gsi: Vec<(String, Vec<_>)> = spec.indexes.iter().map(|g| (g.index_name().to_owned(), g.key_schema().to_vec())).collect();
    have_gsi.sort_by(|a, b| a.0.cmp(&b.0));
    want_gsi.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(have_gsi, want_gsi, "global secondary indexes");
    let ttl = ddb.describe_time_to_live().table_name(&def.logical_id).send().await.unwrap();
    let ttl_attr = ttl.time_to_live_description().and_then(|d| d.attribute_name()).map(str::to_owned);
    assert_eq!(ttl_attr, spec.ttl_attribute, "TTL attribute on the local table");
    assert_eq!(spec.ttl_attribute.as_deref(), Some(portal::store::items::TTL_ATTRIBUTE), "the code's TTL attribute");
    let key_names: Vec<&str> = spec.keys.iter().map(|k| k.attribute_name()).collect();
    assert_eq!(key_names, ["pk", "sk"], "the store writes pk/sk");
}

#[tokio::test]
async fn the_local_queues_and_identity_match_the_template() {
    let t = template();
    let endpoints = Endpoints::from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    for q in &t.queues {
        let url = local::queue_url(&endpoints, &q.logical_id).await.unwrap();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        if let Some(v) = q.visibility_timeout {
            assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], v.to_string(), "{} visibility", q.logical_id);
        }
        if let Some((dlq, max)) = &q.redrive {
            let policy: serde_json::Value = serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
            assert!(policy["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!(":{dlq}")), "{policy}");
            assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), max.to_string());
        } else {
            assert!(!attrs.contains_key(&QueueAttributeName::RedrivePolicy), "{} has no redrive in the template", q.logical_id);
        }
    }
    // The mailer's idea of the last receive is the queue's maxReceiveCount.
    let mailer_env = local::function_env(&endpoints, &t, "mailer").await.unwrap();
    let source = &t.function("mailer").unwrap().sqs[0];
    let (_, max) = t.queue(&source.queue_logical_id).unwrap().redrive.clone().expect("the mail queue has a DLQ");
    assert_eq!(mailer_env["MAIL_MAX_RECEIVE_COUNT"], max.to_string());
    assert!(source.report_batch_item_failures);

    let ses = aws_sdk_sesv2::Client::new(&endpoints.moto);
    let identities = ses.list_email_identities().send().await.unwrap();
    let from = local::parameter_value(&t, "MailFrom").unwrap();
    assert!(identities.email_identities().iter().any(|i| i.identity_name() == Some(from.as_str())), "SES identity {from}");
}

#[test]
fn every_function_crate_is_in_the_template_and_every_http_function_has_a_handler() {
    let t = template();
    let dirs: Vec<String> = std::fs::read_dir(portal_local::repo_root().join("functions"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for dir in &dirs {
        assert!(t.function(dir).is_some(), "functions/{dir} has no template function");
    }
    for f in &t.functions {
        assert!(dirs.contains(&f.binary), "{} builds binary {} which has no crate", f.logical_id, f.binary);
        if !f.routes.is_empty() {
            assert!(HttpFunction::from_binary(&f.binary).is_some(), "{} has no HTTP handler", f.binary);
        }
    }
}

#[tokio::test]
async fn the_gateway_serves_every_template_route_and_the_events_use_them() {
    let t = template();
    let app = TestApp::new().await;
    let mut route_keys = Vec::new();
    for f in &t.functions {
        for r in &f.routes {
            route_keys.push(format!("{} {}", r.method, r.path));
            if r.path == "$default" {
                // What no route takes: a routed path under another method is 405 with Allow, else 404.
                let wrong = app.call(Method::DELETE, "/v1/settings", ADMIN, None).await;
                assert_eq!(wrong.status.as_u16(), 405, "{wrong:?}");
                let unknown = app.call(Method::PATCH, "/v1/nothing-here", ADMIN, None).await;
                assert_eq!((unknown.status.as_u16(), unknown.body.clone()), (404, serde_json::json!({"message": "Not Found"})));
                continue;
            }
            let path = r.path.replace("{contact_id}", "c1").replace("{portal_id}", "p1");
            let method = Method::from_bytes(r.method.as_bytes()).unwrap();
            let answer = app.call(method, &path, ADMIN, Some(serde_json::json!({}))).await;
            assert_ne!(answer.body, serde_json::json!({"message": "Not Found"}), "{} {} is not served", r.method, r.path);
            assert!(answer.status.as_u16() < 500, "{} {}: {:?}", r.method, r.path, answer);
        }
    }
    for entry in std::fs::read_dir(portal_local::repo_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        // events/schemas/: the JSON Schemas of events out, not fixtures.
        if path.is_dir() {
            continue;
        }
        let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if let Some(key) = e["routeKey"].as_str() {
            assert!(route_keys.iter().any(|k| k == key), "event route {key} is not in the template");
        }
    }
}

/// The route table ([`portal::http::routes::Route`]) is the one list of routes
/// in code: template.yaml must route exactly those, each to the function the
/// table names, and openapi.yaml must document exactly those; an effectful
/// route documents the `Idempotency-Key` header.
#[test]
fn the_route_table_is_what_the_template_routes_and_the_contract_documents() {
    use portal::http::routes::{Effect, Route};
    use std::collections::BTreeSet;
    let t = template();
    let table: BTreeSet<(String, String)> = Route::ALL.iter().map(|r| (r.key(), r.function().to_owned())).collect();
    let routed: BTreeSet<(String, String)> =
        t.functions.iter().flat_map(|f| f.routes.iter().map(|r| (format!("{} {}", r.method, r.path), f.binary.clone()))).collect();
    assert_eq!(table, routed, "template.yaml's routes (and the function of each) against the route table");

    let text = std::fs::read_to_string(portal_local::repo_root().join("openapi.yaml")).unwrap();
    let doc: serde_json::Value = serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                let key = format!("{} {path}", method.to_uppercase());
                let route = Route::from_key(&key).unwrap_or_else(|| panic!("openapi.yaml documents {key}, which the route table lacks"));
                let params = serde_json::to_string(&op["parameters"]).unwrap();
                let takes_key = params.contains("Idempotency") || params.contains("idempotency");
                assert_eq!(takes_key, route.effect() == Effect::Effectful, "{key}: Idempotency-Key documented iff the route is effectful");
                documented.insert(key);
            }
        }
    }
    // The `$default` route is no operation: it answers what the document does not route.
    let keys: BTreeSet<String> = Route::ALL.iter().filter(|r| **r != Route::Unrouted).map(|r| r.key()).collect();
    assert_eq!(keys, documented, "openapi.yaml's operations against the route table");
    for f in HttpFunction::ALL {
        assert!(!f.routes().is_empty(), "{} serves no route", f.name());
    }
}
