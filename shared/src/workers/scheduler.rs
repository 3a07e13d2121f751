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
//! cut short and resumed next hour) does only what is left. The scheduler
//! calls the use cases as itself (actor `scheduler`); a contact a step no
//! longer applies to (it changed meanwhile) is skipped, not an error.

use crate::app::{App, Settings};
use crate::domain::{
    access_state::check_auto_generate, invitation::reminder_due, time, EmailKind, MailJob, Method, Portal, PortalState,
    TenantId,
};
use crate::mail::templates::TemplateVars;
use crate::store::items::CodeItem;
use crate::store::scheduling::Expiring;
use crate::usecase::expire::expire_due;
use crate::usecase::issue::{issue, recipients, IssueError, Step};
use crate::usecase::outbox::{queue_email, sealed_messages, Actor};
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
    /// Contacts auto-generate left alone: the portal checks facts they lack.
    pub skipped_missing_facts: u32,
    /// False when the run stopped for the deadline; the next run picks up the rest.
    pub complete: bool,
}

pub struct Scheduler {
    pub app: App,
}

impl Scheduler {
    /// Cold start: settings and AWS configuration from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self { app: App::new(&sdk, &settings) })
    }
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
        let expired = expire_due(&self.app, tenant, || budget.left()).await?;
        summary.expired += expired.expired;
        if !expired.complete {
            return Ok(false);
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
        let actor = Actor { tenant, name: ACTOR };
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
                    .list_contacts(tenant, &portal.portal_id, Some(state), None, false, 100, cursor.as_deref(), now)
                    .await
                    .map_err(|e| anyhow::anyhow!(e).context("listing contacts to auto-generate for"))?;
                for (contact, _) in page.items {
                    let related = portal.default || contact.portal_ids.contains(&portal.portal_id);
                    if !related {
                        continue;
                    }
                    let issued = issue(&self.app, actor, &contact.contact_id, portal, Method::Code, |state| {
                        check_auto_generate(state)?;
                        Ok(Step { email: None, action: "auto_generate" })
                    })
                    .await;
                    match issued {
                        Ok(_) => summary.generated += 1,
                        // It changed meanwhile: nothing to do for it any more.
                        Err(IssueError::Refused(_) | IssueError::ContactNotFound | IssueError::KeptChanging(_)) => {}
                        // A code nobody could claim is not issued; staff see the missing facts when they try.
                        Err(IssueError::MissingFacts(_)) => summary.skipped_missing_facts += 1,
                        Err(e) => return Err(anyhow::Error::new(e).context("generating a code")),
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
        let Some(contact_id) = row.contact_id() else {
            return Ok(());
        };
        let Some(contact) = self.app.store.get_contact(tenant, &contact_id).await? else {
            return Ok(());
        };
        // By the portal's channels; a bounced or complained-about address gets nothing more (`domain::delivery`).
        let to = |kind| recipients(&contact, portal, kind).ok().filter(|r| !r.is_empty());
        let vars = TemplateVars {
            contact_name: contact.name.clone(),
            portal_name: portal.name.clone(),
            tenant_name: self.app.tenant_name(tenant).await,
            code: row.code.clone().unwrap_or_default(),
            link: Default::default(),
            claim_url: self.app.claim_url_for(tenant, portal, contact.locale.as_ref()),
            expires_at: time::format(&row.expires_at),
            account_email: String::new(),
        };
        let mut jobs = Vec::new();
        let keys = self.app.keys.get().await?;
        if let Some(to) = to(EmailKind::PickupCode).filter(|_| wants_email) {
            let messages = sealed_messages(&keys.current.sealer, tenant, &contact, portal, EmailKind::PickupCode, to, &vars, now);
            if self.app.store.attach_email(row, &messages).await? {
                summary.emailed += 1;
                jobs.push(messages[0].document_id.clone());
            }
        }
        if let Some(to) = to(EmailKind::Reminder).filter(|_| wants_reminder) {
            let messages = sealed_messages(&keys.current.sealer, tenant, &contact, portal, EmailKind::Reminder, to, &vars, now);
            if self.app.store.attach_reminder(row, &messages, now).await? {
                summary.reminded += 1;
                jobs.push(messages[0].document_id.clone());
            }
        }
        for document_id in jobs {
            let job = MailJob { tenant_id: tenant.clone(), contact_id: contact_id.clone(), document_id };
            queue_email(&self.app, job).await.map_err(|e| anyhow::Error::new(e).context("queueing a scheduled email"))?;
        }
        Ok(())
    }
}
