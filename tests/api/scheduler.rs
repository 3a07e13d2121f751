//! The scheduler: runs twice give the same state as once, reminders go out
//! once, expiry shows in the portlet, the listing and the reports, and a run
//! out of time stops cleanly and the next picks up the rest.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use portal::app::App;
use portal::domain::{InvitationState, ContactId, TenantId};
use portal::http::HttpFunction;
use portal::workers::scheduler::{RunSummary, Scheduler};
use serde_json::{json, Value};
use std::time::Instant;

struct World {
    tenant: String,
    admin: App,
    status: App,
    reports: App,
    scheduler: Scheduler,
    clocks: Vec<Clock>,
}

impl World {
    async fn new(t0: DateTime<Utc>, portal: Value) -> Self {
        let tenant = unique("sch");
        let (mut admin, mut status, mut reports) = (app("admin").await, app("status").await, app("reports").await);
        let mut sched = app("scheduler").await;
        let clocks = vec![
            Clock::install(&mut admin, t0),
            Clock::install(&mut status, t0),
            Clock::install(&mut reports, t0),
            Clock::install(&mut sched, t0),
        ];
        let e = staff("PUT", "/v1/portals/{portal_id}").param("portal_id", "main").json(&portal);
        let (code, body) = call(&admin, HttpFunction::Admin, &tenant, e).await;
        assert_eq!(code, 200, "{body}");
        Self { tenant, admin, status, reports, scheduler: Scheduler { app: sched }, clocks }
    }

    fn at(&self, t: DateTime<Utc>) {
        for c in &self.clocks {
            c.set(t);
        }
    }

    async fn contact(&self, id: &str, email: Option<&str>) {
        let body = json!({"name": format!("Contact {id}"), "email": email, "kind": "individual"});
        let e = staff("PUT", "/v1/contacts/{contact_id}").param("contact_id", id).json(&body);
        assert_eq!(call(&self.admin, HttpFunction::Contacts, &self.tenant, e).await.0, 200);
    }

    async fn run(&self) -> RunSummary {
        let tenant = TenantId::parse(&self.tenant).unwrap();
        self.scheduler.run_for(&[tenant], Instant::now() + std::time::Duration::from_secs(120)).await.unwrap()
    }

    async fn portlet(&self, id: &str) -> Value {
        let e = staff("GET", "/v1/contacts/{contact_id}/portal").param("contact_id", id);
        call(&self.status, HttpFunction::Status, &self.tenant, e).await.1
    }

    async fn emails(&self, id: &str) -> Vec<Value> {
        let e = staff("GET", "/v1/contacts/{contact_id}/emails").param("contact_id", id);
        call(&self.admin, HttpFunction::Contacts, &self.tenant, e).await.1["items"].as_array().unwrap().clone()
    }

    async fn listed(&self, state: &str) -> Vec<String> {
        let e = staff("GET", "/v1/contacts").query("portal_status", state);
        let body = call(&self.admin, HttpFunction::Contacts, &self.tenant, e).await.1;
        let mut ids: Vec<String> = body["items"].as_array().unwrap().iter().map(|c| c["contact_id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    }
}

async fn unused(w: &World) -> usize {
    let e = staff("GET", "/v1/reports/unused-codes");
    call(&w.reports, HttpFunction::Reports, &w.tenant, e).await.1["items"].as_array().unwrap().len()
}

fn summary(expired: u32, generated: u32, emailed: u32, reminded: u32) -> RunSummary {
    RunSummary { tenants: 1, expired, generated, emailed, reminded, skipped_missing_facts: 0, complete: true }
}

#[tokio::test]
async fn automation_runs_once_and_a_second_run_changes_nothing() {
    let t0: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let portal = json!({"name": "Main", "default": true, "claim_url": "https://p.example/claim", "code_ttl_hours": 72,
                        "auto_generate": true, "auto_email": true, "reminder_days_before_expiry": 2});
    let w = World::new(t0, portal).await;
    w.contact("a", Some("a@example.com")).await;
    w.contact("b", None).await;
    w.contact("c", Some("c@example.com")).await;

    assert_eq!(w.run().await, summary(0, 3, 2, 0), "codes for all three, emails for the two with addresses");
    assert_eq!(w.run().await, summary(0, 0, 0, 0), "the same hour again: nothing");
    assert_eq!(w.portlet("a").await["pending_codes"].as_array().unwrap().len(), 1);
    assert_eq!(w.emails("a").await.len(), 1);
    assert_eq!(w.emails("b").await.len(), 0);

    // 48 h before expiry the reminders go out, once.
    w.at(t0 + Duration::hours(25));
    assert_eq!(w.run().await, summary(0, 0, 0, 2));
    w.at(t0 + Duration::hours(26));
    assert_eq!(w.run().await, summary(0, 0, 0, 0), "one reminder per code");
    let kinds: Vec<String> = w.emails("a").await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "reminder").count(), 1);
    assert_eq!(kinds.len(), 2);
}

#[tokio::test]
async fn expiry_is_visible_in_the_portlet_the_listing_and_the_reports() {
    let t0: DateTime<Utc> = "2026-04-01T00:00:00Z".parse().unwrap();
    let w = World::new(t0, json!({"name": "Main", "default": true, "claim_url": "https://p.example/claim", "code_ttl_hours": 24})).await;
    w.contact("old", Some("old@example.com")).await;
    let mut gen = app("generate").await;
    let _gen_clock = Clock::install(&mut gen, t0);
    let e = staff("POST", "/v1/contacts/{contact_id}/codes").param("contact_id", "old").json(&json!({}));
    assert_eq!(call(&gen, HttpFunction::Generate, &w.tenant, e).await.0, 201);
    assert_eq!(unused(&w).await, 1);
    assert_eq!(w.listed("pending").await, ["old"]);

    w.at(t0 + Duration::hours(25));
    assert_eq!(w.run().await, summary(1, 0, 0, 0));
    assert_eq!(w.run().await, summary(0, 0, 0, 0), "expiry happens once");
    let view = w.portlet("old").await;
    assert_eq!(view["portals"][0]["state"], "expired");
    assert_eq!(view["pending_codes"], json!([]));
    assert_eq!(w.listed("expired").await, ["old"]);
    assert!(w.listed("pending").await.is_empty());
    assert_eq!(unused(&w).await, 0);
    // The row itself is expired and its plain code erased.
    let tenant = TenantId::parse(&w.tenant).unwrap();
    let p = w.admin.store.contact_partition(&tenant, &ContactId::parse("old").unwrap()).await.unwrap().unwrap();
    assert_eq!(p.codes[0].state, InvitationState::Expired);
    assert_eq!(p.codes[0].code, None);
}

#[tokio::test]
async fn a_run_out_of_time_stops_cleanly_and_the_next_picks_up() {
    let t0: DateTime<Utc> = "2026-05-01T00:00:00Z".parse().unwrap();
    let w = World::new(t0, json!({"name": "Main", "default": true, "claim_url": "https://p.example/claim", "auto_generate": true})).await;
    for id in ["a", "b", "c"] {
        w.contact(id, None).await;
    }
    let tenant = TenantId::parse(&w.tenant).unwrap();
    let no_time = w.scheduler.run_for(&[tenant.clone()], Instant::now()).await.unwrap();
    assert_eq!(no_time, RunSummary { complete: false, ..Default::default() });
    assert!(w.listed("pending").await.is_empty(), "nothing half done");
    assert_eq!(w.run().await, summary(0, 3, 0, 0));
    assert_eq!(w.listed("pending").await, ["a", "b", "c"]);
}
