//! A demo tenant for the walk-through: one default portal and two contacts
//! (one with an email address, one without).

use crate::local::{self, Endpoints};
use crate::template::Template;
use portal::app::App;
use portal::domain::{Contact, ContactId, ContactKind, EmailAddress, Portal, PortalId, TenantId};

pub const DEMO_TENANT: &str = "demo";
/// The demo contact with an email address (the one events/*.json name).
pub const DEMO_CONTACT: &str = "chart-1001";

pub async fn run(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    let app = local::http_app(endpoints, t, "admin").await?;
    let tenant = TenantId::parse(DEMO_TENANT)?;
    let now = (app.clock)();
    let portal = Portal::new(PortalId::parse("main")?, "Demo Clinic Portal", true, Some("https://portal.example.com/claim"), None, None, portal::domain::web_url::Deployment::Local)?;
    app.store.put_portal(&tenant, &portal, "seed", now).await?;
    let contacts = [
        (DEMO_CONTACT, "Ann Lee", Some("ann.lee@example.com")),
        ("chart-1002", "Bo Chen", None),
    ];
    for (id, name, email) in contacts {
        contact(&app, id, name, email, "seed").await?;
    }
    println!("seeded tenant {DEMO_TENANT}: portal main (default), contacts chart-1001 (with email), chart-1002 (no email)");
    Ok(())
}

/// Puts an individual contact `id` in the demo tenant.
pub async fn contact(app: &App, id: &str, name: &str, email: Option<&str>, actor: &str) -> anyhow::Result<()> {
    let contact = Contact {
        contact_id: ContactId::parse(id)?,
        name: name.into(),
        email: email.map(EmailAddress::parse).transpose()?,
        kind: ContactKind::Individual,
        portal_ids: vec![],
        facts: Default::default(),
        fact_key_versions: Default::default(),
        email_problem: None,
        phone: None,
        locale: None,
    };
    app.store.put_contact(&TenantId::parse(DEMO_TENANT)?, &contact, actor, (app.clock)()).await
}
