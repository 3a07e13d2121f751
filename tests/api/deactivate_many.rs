//! Deactivating a contact with many accounts and codes (issue 15, "Smaller
//! holes"): one call ends 150 accounts' access and sends one notice, a call
//! stopped after its first transaction is finished by the next, and access
//! ends with the first transaction whatever is left.
//!
//! In-process handlers (`local::http_app`, as the fault tests do) against
//! DynamoDB Local, through a fault proxy that counts the transactions, with a
//! mail queue of the test's own. The accounts, their access grants and the
//! pending codes are seeded straight into the table in the store's own item
//! shapes (150 claims through the API would take minutes); the deactivation
//! and every check go through the real handlers and store.

use crate::faults::fault_proxy::{Fault, FaultProxy, Rule};
use crate::faults::harness::*;
use crate::helpers::*;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use portal::app::App;
use portal::domain::{invitation, AccessEntry, ContactId, EmailAddress, EmailKind, Method, PickupCode, PortalId, PortalState, TenantId};
use portal::http::HttpFunction;
use portal::queue::MailQueue;
use portal::store::items::{AccessGrantItem, AccountItem, AuditItem};
use portal::store::{keys, Invitation, NewAccount, TxError, TxItem};
use portal_local::local::{self, Endpoints};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";

struct World {
    proxy: FaultProxy,
    lifecycle: App,
    admin: App,
    direct: aws_sdk_dynamodb::Client,
    table: String,
    sqs: aws_sdk_sqs::Client,
    mail_url: String,
    tenant: String,
    contact: String,
    emails: Vec<String>,
    /// Plain pending codes seeded, in order.
    codes: Vec<String>,
}

impl World {
    /// A contact active on `main` with `accounts` accounts (and grants) and `codes` pending codes.
    async fn new(accounts: usize, codes: usize) -> Self {
        let endpoints = Endpoints::from_env().await;
        let proxy = FaultProxy::start(&local::dynamodb_endpoint()).await;
        let proxied = Endpoints { dynamodb: quick_sdk(&proxy.endpoint()).await, moto: endpoints.moto.clone() };
        let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
        let mail_url = sqs.create_queue().queue_name(unique("deactmail")).send().await.unwrap().queue_url.unwrap();
        let t = template();
        let mut lifecycle = local::http_app(&proxied, &t, "lifecycle").await.unwrap();
        lifecycle.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
        let mut admin = local::http_app(&proxied, &t, "admin").await.unwrap();
        admin.mail_queue = MailQueue::new(&endpoints.moto, &mail_url);
        let direct = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
        let table = local::table_name(&t).unwrap();
        let tenant = unique("many");
        let contact = unique("big");
        let mut w = Self { proxy, lifecycle, admin, direct, table, sqs, mail_url, tenant, contact, emails: Vec::new(), codes: Vec::new() };
        ok("portal", &w.call(HttpFunction::Admin, put_portal_event("main", json!({}))).await, 200);
        let email = format!("{}@example.com", w.contact);
        ok("contact", &w.call(HttpFunction::Contacts, put_contact_event(&w.contact, Some(&email))).await, 200);
        w.seed(accounts, codes).await;
        w
    }

    async fn call(&self, f: HttpFunction, e: ApiEvent) -> (u16, String, Value) {
        let app = if matches!(f, HttpFunction::Lifecycle) { &self.lifecycle } else { &self.admin };
        call_full(app, f, &self.tenant, e).await
    }

    fn tenant_id(&self) -> TenantId {
        TenantId::parse(&self.tenant).unwrap()
    }

    fn contact_id(&self) -> ContactId {
        ContactId::parse(&self.contact).unwrap()
    }

    fn portal(&self) -> PortalId {
        PortalId::parse("main").unwrap()
    }

    /// The items a claim would have left, written 25 a BatchWriteItem.
    async fn seed(&mut self, accounts: usize, codes: usize) {
        let (tenant, contact, portal) = (self.tenant_id(), self.contact_id(), self.portal());
        let now = chrono::Utc::now();
        let pk = keys::contact_pk(&tenant, &contact);
        let mut items: Vec<std::collections::HashMap<String, AttributeValue>> = Vec::new();
        for i in 0..accounts {
            let email = EmailAddress::parse(&format!("user{i:03}-{}@example.com", self.contact)).unwrap();
            let account = AccountItem {
                pk: pk.clone(),
                sk: keys::account_sk(&portal, &email),
                email: email.clone(),
                portal_id: portal.clone(),
                activated_at: now,
                method: Method::Code,
                disabled_at: None,
                contact_name: format!("Contact {}", self.contact),
                sent_at: None,
                email_document_id: None,
                sent_by: Vec::new(),
                identity_subject: None,
            };
            let grant = AccessGrantItem {
                pk: keys::grant_pk(&tenant, &email),
                sk: keys::grant_sk(&contact, &portal),
                contact_id: contact.clone(),
                portal_id: portal.clone(),
                identity_subject: None,
            };
            items.push(serde_dynamo::to_item(&account).unwrap());
            items.push(serde_dynamo::to_item(&grant).unwrap());
            self.emails.push(email.to_string());
        }
        let keys = self.lifecycle.keys.get().await.unwrap();
        for _ in 0..codes {
            let code = PickupCode::generate();
            let inv = Invitation {
                tenant_id: tenant.clone(),
                contact_id: contact.clone(),
                portal_id: portal.clone(),
                method: Method::Code,
                code_display: Some(code.display()),
                hash: keys.current.hasher.hash(&code),
                created_at: now,
                expires_at: now + chrono::Duration::hours(24),
                created_by: "staff-test".into(),
                contact_name: format!("Contact {}", self.contact),
                revoke: Vec::new(),
                messages: Vec::new(),
                email_document_id: None,
                job_marker: None,
                access: None,
                unless_active: false,
                audit: AuditItem::contact(&tenant, &contact, Some(&portal), "staff-test", "generate", now, BTreeMap::new()),
            };
            let (lookup, row) = inv.code_items();
            items.push(serde_dynamo::to_item(&lookup).unwrap());
            items.push(serde_dynamo::to_item(&row).unwrap());
            self.codes.push(code.display());
        }
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(i.clone())).build().unwrap()).build())
                .collect();
            while !requests.is_empty() {
                let out = self.direct.batch_write_item().request_items(&self.table, requests).send().await.unwrap();
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            }
        }
        // The contact is active on the portal, as its claims left it.
        let entry = serde_dynamo::to_attribute_value(AccessEntry::new(PortalState::Active, None, now)).unwrap();
        self.direct
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(keys::CONTACT_SK.into()))
            .update_expression("SET #access.#p = :entry")
            .expression_attribute_names("#access", "access")
            .expression_attribute_names("#p", "main")
            .expression_attribute_values(":entry", entry)
            .send()
            .await
            .unwrap();
    }

    async fn deactivate(&self) -> (u16, String, Value) {
        self.call(HttpFunction::Lifecycle, lifecycle_event(&self.contact, "deactivate")).await
    }

    fn transactions(&self) -> usize {
        self.proxy.seen().iter().filter(|s| s.header("x-amz-target") == Some(TRANSACT)).count()
    }

    /// The login check for `email`, through the access handler.
    async fn access(&self, email: &str) -> Vec<Value> {
        let e = staff("GET", "/v1/accounts/{email}/access").param("email", email);
        let body = ok("access", &call_full(&self.admin, HttpFunction::Access, &self.tenant, e).await, 200);
        body["access"].as_array().unwrap().clone()
    }

    /// How many of the emails the login check still lets in.
    async fn still_let_in(&self) -> usize {
        let mut n = 0;
        for email in &self.emails {
            n += usize::from(!self.access(email).await.is_empty());
        }
        n
    }

    /// Access grant items left in the table (whatever the login check says of them).
    async fn grants_left(&self) -> usize {
        let pks: Vec<String> = self.emails.iter().map(|e| keys::grant_pk(&self.tenant_id(), &EmailAddress::parse(e).unwrap())).collect();
        partition_items(&self.direct, &self.table, &pks).await.len()
    }

    /// (accounts still without `disabled_at`, codes still pending) on the contact's partition.
    async fn left_on_partition(&self) -> (usize, usize) {
        let p = self.admin.store.contact_partition(&self.tenant_id(), &self.contact_id()).await.unwrap().unwrap();
        assert_eq!(p.accounts.len(), self.emails.len());
        (
            p.accounts.iter().filter(|a| a.disabled_at.is_none()).count(),
            p.codes.iter().filter(|c| c.state == portal::domain::InvitationState::Pending).count(),
        )
    }

    async fn state(&self) -> String {
        let e = staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", &self.contact);
        let status = ok("status", &call_full(&self.admin, HttpFunction::Status, &self.tenant, e).await, 200);
        status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == "main").unwrap()["state"].as_str().unwrap().to_owned()
    }

    /// Deactivation notices in the email log, and jobs put on the mail queue.
    async fn notices(&self) -> (usize, u64) {
        let log = self.admin.store.list_emails(&self.tenant_id(), &self.contact_id()).await.unwrap();
        (log.iter().filter(|e| e.kind == EmailKind::Deactivation).count(), messages_on(&self.sqs, &self.mail_url).await)
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.admin.store.list_audit(&self.tenant_id(), &self.contact_id()).await.unwrap().into_iter().map(|a| a.action).collect()
    }

    /// The store's claim of a seeded code (what the claim handler's bind does), for `email`.
    async fn claim_store(&self, plain: &str, email: &str) -> Result<(), TxError> {
        let app = &self.lifecycle;
        let hash = app.keys.get().await.unwrap().current.hasher.hash(&PickupCode::parse(plain).unwrap());
        let owner = app.store.find_code(&hash).await.unwrap().expect("the seeded code");
        let now = chrono::Utc::now();
        let expires = chrono::DateTime::from_timestamp_millis(owner.expires_at_ms).unwrap();
        let transition = invitation::claim(owner.state, expires, now).expect("still claimable as far as the code goes");
        let account = NewAccount { email: EmailAddress::parse(email).unwrap(), subject: None };
        let audit = AuditItem::contact(&owner.tenant_id, &owner.contact_id, Some(&owner.portal_id), "claimant", "claimed", now, BTreeMap::new());
        app.store.claim_code(&hash, &owner, transition, &account, &audit, None, now).await
    }
}

#[tokio::test]
async fn a_contact_with_150_accounts_is_deactivated_by_one_call_with_one_notice() {
    let w = World::new(150, 5).await;
    assert_eq!(w.access(&w.emails[0]).await, [json!({"contact_id": w.contact, "portal_id": "main"})], "the seeded grants let in");
    assert_eq!(w.still_let_in().await, 150);
    assert_eq!(w.left_on_partition().await, (150, 5));

    let before = w.transactions();
    let started = Instant::now();
    let off = ok("deactivate", &w.deactivate().await, 200);
    let took = started.elapsed();
    let used = w.transactions() - before;
    println!("deactivating 150 accounts and 5 pending codes in-process: {took:?}, {used} TransactWriteItems");
    assert!(off["email_document_id"].is_string(), "{off}");
    assert_eq!(off, json!({"state": "disabled", "email_document_id": off["email_document_id"], "accounts_disabled": 150, "complete": true}));
    // 155 accounts and codes: 48 beside the switch, then 49, 49 and 9.
    assert_eq!(used, 4);

    assert_eq!(w.state().await, "disabled");
    assert_eq!(w.still_let_in().await, 0, "no email of the contact is let in any more");
    for email in [&w.emails[0], &w.emails[77], &w.emails[149]] {
        assert_eq!(w.access(email).await, Vec::<Value>::new(), "{email}");
    }
    assert_eq!(w.grants_left().await, 0, "every grant is deleted");
    assert_eq!(w.left_on_partition().await, (0, 0), "every account disabled, every code revoked");
    assert_eq!(w.notices().await, (1, 1), "one notice logged and one job queued");
    assert_eq!(w.audit_actions().await, ["deactivate"]);

    // Repeated: nothing written, nothing sent.
    let before = w.transactions();
    let again = ok("again", &w.deactivate().await, 200);
    assert_eq!(again, json!({"state": "disabled", "email_document_id": null, "accounts_disabled": 0, "complete": true}));
    assert_eq!(w.transactions(), before, "no transaction");
    assert_eq!(w.notices().await, (1, 1));
    assert_eq!(w.audit_actions().await, ["deactivate"]);
}

#[tokio::test]
async fn a_deactivation_stopped_after_its_first_transaction_has_ended_access_and_the_next_call_finishes_it() {
    // 60 codes: the switch revokes 48 of them and no account yet.
    let w = World::new(150, 60).await;
    let later_chunks = w.proxy.inject(
        Rule::dynamodb("TransactWriteItems")
            .body_contains("ConditionCheck")
            .answer(Fault::Rest { status: 500, error_type: "InternalServerError".into(), message: "injected".into() }),
    );
    let (status, _, body) = w.deactivate().await;
    assert_eq!(status, 500, "the call dies after its first transaction: {body}");
    assert!(later_chunks.get() >= 1, "the second transaction was tried");

    // Access ended with the switch, though no grant is deleted yet.
    assert_eq!(w.state().await, "disabled");
    assert_eq!(w.grants_left().await, 150);
    assert_eq!(w.left_on_partition().await, (150, 12));
    assert_eq!(w.still_let_in().await, 0, "the login check honours `disabled` at once");
    // A claim of a code the chunks have not reached is refused by the contact's state; nothing is written.
    let mut still_pending = None;
    for code in &w.codes {
        let hash = w.lifecycle.keys.get().await.unwrap().current.hasher.hash(&PickupCode::parse(code).unwrap());
        let owner = w.lifecycle.store.find_code(&hash).await.unwrap().unwrap();
        if owner.state == portal::domain::InvitationState::Pending {
            still_pending = Some(code.clone());
            break;
        }
    }
    let claim = w.claim_store(&still_pending.expect("a code the switch did not reach"), "newcomer@example.com").await;
    assert!(matches!(&claim, Err(e) if e.condition_failed(TxItem::Contact)), "{claim:?}");
    assert_eq!(w.access("newcomer@example.com").await, Vec::<Value>::new());
    assert_eq!(w.left_on_partition().await, (150, 12));
    // The notice went out with the switch.
    assert_eq!(w.notices().await, (1, 1));

    w.proxy.clear();
    let before = w.transactions();
    let done = ok("retry", &w.deactivate().await, 200);
    assert_eq!(done, json!({"state": "disabled", "email_document_id": null, "accounts_disabled": 150, "complete": true}));
    // 12 codes and 150 accounts: 49, 49, 49, 15.
    assert_eq!(w.transactions() - before, 4);
    assert_eq!(w.grants_left().await, 0);
    assert_eq!(w.left_on_partition().await, (0, 0));
    assert_eq!(w.still_let_in().await, 0);
    assert_eq!(w.notices().await, (1, 1), "still exactly one notice");
    assert_eq!(w.audit_actions().await, ["deactivate"]);

    let before = w.transactions();
    let again = ok("again", &w.deactivate().await, 200);
    assert_eq!(again, json!({"state": "disabled", "email_document_id": null, "accounts_disabled": 0, "complete": true}));
    assert_eq!(w.transactions(), before);
}

#[tokio::test]
async fn enabling_a_contact_whose_deactivation_stopped_finishes_it_first() {
    let w = World::new(100, 0).await;
    w.proxy.inject(
        Rule::dynamodb("TransactWriteItems")
            .body_contains("ConditionCheck")
            .answer(Fault::Rest { status: 500, error_type: "InternalServerError".into(), message: "injected".into() }),
    );
    assert_eq!(w.deactivate().await.0, 500);
    assert_eq!(w.left_on_partition().await, (52, 0), "48 ended with the switch");
    w.proxy.clear();

    // Resend on `disabled` enables again with a new link: the old accounts stay out.
    let enabled = ok("resend", &w.call(HttpFunction::Lifecycle, lifecycle_event(&w.contact, "resend")).await, 202);
    assert_eq!(enabled["action"], "enabled");
    assert_eq!(w.state().await, "pending");
    assert_eq!(w.left_on_partition().await, (0, 1), "every old account ended; the one pending code is the new link");
    assert_eq!(w.grants_left().await, 0);
    assert_eq!(w.still_let_in().await, 0);
}
