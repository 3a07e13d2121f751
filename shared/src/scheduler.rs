//! The scheduler (seed 000's automated jobs), hourly by default. For every
//! tenant, in pages, stopping cleanly before the Lambda's deadline:
//!
//! 1. codes and links past expiry become `expired` (row, lookup, contact
//!    state), so the portlet, the listing and the reports agree;
//! 2. `auto_generate` portals: a code for each related contact with neither
//!    a pending code nor an account (state `none` or `expired`);
//! 3. `auto_email` portals: pending codes never emailed are emailed;
//! 4. `reminder_days_before_expiry`: one reminder per code or link.
//!
//! Every step is conditional on what it changes, so a second run (or a run
//! cut short and resumed next hour) does only what is left.

use crate::app::App;
use crate::domain::{
    code_lifecycle::reminder_due, time, Caller, ContactId, Method, Portal, PortalState, Scope, TenantId,
};
use crate::invite::{enqueue_email, invite, Step};
use crate::mail::{templates::TemplateVars, EmailKind};
use crate::store::items::{CodeItem, EmailItem};
use crate::store::scheduling::Expiring;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Stop starting new pages this long before the deadline.
const MARGIN: Duration = Duration::from_secs(10);
const PAGE: i32 = 100;

pub const ACTOR: &str = "scheduler";

/// What a run did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    pub tenants: u32,
    pub expired: u32,
    pub generated: u32,
    pub emailed: u32,
    pub reminded: u32,
    /// False when the run stopped for the deadline; the next run picks up the rest.
    pub complete: bool,
}

pub struct Scheduler {
    pub app: App,
}

struct Budget(Instant);

impl Budget {
    fn left(&self) -> bool {
        Instant::now() + MARGIN < self.0
    }
}

impl Scheduler {
    /// Runs every step for every tenant until done or `deadline` is near.
    pub async fn run(&self, deadline: Instant) -> anyhow::Result<RunSummary> {
        let tenants = self.app.store.list_tenants().await?;
        self.run_for(&tenants, deadline).await
    }

    /// Runs every step for these tenants until done or `deadline` is near.
    pub async fn run_for(&self, tenants: &[TenantId], deadline: Instant) -> anyhow::Result<RunSummary> {
        let budget = Budget(deadline);
        let mut summary = RunSummary::default();
        for tenant in tenants {
            if !budget.left() {
                return Ok(summary);
            }
            summary.tenants += 1;
            if !self.tenant(tenant, &budget, &mut summary).await? {
                return Ok(summary);
            }
        }
        summary.complete = true;
        tracing::info!(?summary, "scheduler run");
        Ok(summary)
    }

    /// One tenant; `false` if the budget ran out.
    async fn tenant(&self, tenant: &TenantId, budget: &Budget, summary: &mut RunSummary) -> anyhow::Result<bool> {
        let store = &self.app.store;
        // 1. Expiry.
        let mut start = None;
        loop {
            if !budget.left() {
                return Ok(false);
            }
            let page = store.pending_page(tenant, Expiring::Before((self.app.clock)()), start, PAGE).await?;
            for row in &page.rows {
                if store.expire(tenant, row, (self.app.clock)()).await? {
                    summary.expired += 1;
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        let portals: HashMap<String, Portal> = store
            .list_portals(tenant)
            .await?
            .into_iter()
            .filter(|p| p.automated())
            .map(|p| (p.portal_id.to_string(), p))
            .collect();
        if portals.is_empty() {
            return Ok(true);
        }
        // 2. Generation.
        for portal in portals.values().filter(|p| p.auto_generate) {
            if !self.generate(tenant, portal, budget, summary).await? {
                return Ok(false);
            }
        }
        // 3 and 4. Emailing and reminders, over the pending invitations.
        let mut start = None;
        loop {
            if !budget.left() {
                return Ok(false);
            }
            let page = store.pending_page(tenant, Expiring::After((self.app.clock)()), start, PAGE).await?;
            for row in &page.rows {
                if let Some(portal) = portals.get(row.portal_id.as_str()) {
                    self.email_and_remind(tenant, portal, row, summary).await?;
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(true),
            }
        }
    }

    async fn generate(&self, tenant: &TenantId, portal: &Portal, budget: &Budget, summary: &mut RunSummary) -> anyhow::Result<bool> {
        let caller = Caller { sub: ACTOR.into(), tenant_id: tenant.clone(), scope: Some(Scope::Admin) };
        for state in [PortalState::None, PortalState::Expired] {
            let mut cursor: Option<String> = None;
            loop {
                if !budget.left() {
                    return Ok(false);
                }
                let now = (self.app.clock)();
                let page = self
                    .app
                    .store
                    .list_contacts(tenant, &portal.portal_id, Some(state), 100, cursor.as_deref(), now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                for (contact, _) in page.items {
                    let related = portal.default || contact.portal_ids.contains(&portal.portal_id);
                    if !related {
                        continue;
                    }
                    let issued = invite(&self.app, &caller, &contact.contact_id, portal, Method::Code, |state| match state {
                        PortalState::None | PortalState::Expired => Ok(Step { email: None, action: "auto_generate" }),
                        _ => Err(crate::http::problem::ApiError::Conflict("no longer needs a code".into())),
                    })
                    .await;
                    match issued {
                        Ok(_) => summary.generated += 1,
                        Err(crate::http::problem::ApiError::Conflict(_) | crate::http::problem::ApiError::NotFound(_)) => {}
                        Err(e) => return Err(anyhow::anyhow!("generating a code: {e}")),
                    }
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(true)
    }

    async fn email_and_remind(&self, tenant: &TenantId, portal: &Portal, row: &CodeItem, summary: &mut RunSummary) -> anyhow::Result<()> {
        let now = (self.app.clock)();
        let wants_email = portal.auto_email && row.method == Method::Code && row.email_document_id.is_none();
        let wants_reminder = row.reminder_sent_at.is_none()
            && portal.reminder_days_before_expiry.is_some_and(|d| reminder_due(row.expires_at, d, now));
        if !wants_email && !wants_reminder {
            return Ok(());
        }
        let Some(contact_id) = row.pk.rsplit("#C#").next().and_then(|c| ContactId::parse(c).ok()) else {
            return Ok(());
        };
        let Some(contact) = self.app.store.get_contact(tenant, &contact_id).await? else {
            return Ok(());
        };
        let Some(to) = contact.email.clone() else {
            return Ok(());
        };
        let vars = TemplateVars {
            contact_name: contact.name.clone(),
            portal_name: portal.name.clone(),
            tenant_name: tenant.to_string(),
            code: row.code.clone().unwrap_or_default(),
            link: String::new(),
            claim_url: portal.claim_url.clone(),
            expires_at: time::format(&row.expires_at),
        };
        let mut jobs = Vec::new();
        if wants_email {
            let email = EmailItem::queued(tenant, &contact_id, &portal.portal_id, EmailKind::PickupCode, &to, vars.to_map(), now);
            if self.app.store.attach_email(row, &email).await? {
                summary.emailed += 1;
                jobs.push(email.document_id);
            }
        }
        if wants_reminder {
            let email = EmailItem::queued(tenant, &contact_id, &portal.portal_id, EmailKind::Reminder, &to, vars.to_map(), now);
            if self.app.store.attach_reminder(row, &email, now).await? {
                summary.reminded += 1;
                jobs.push(email.document_id);
            }
        }
        for doc in jobs {
            enqueue_email(&self.app, tenant.as_str(), contact_id.as_str(), &doc).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}
