//! The `admin` function: portal settings and email templates (Portal
//! Administration), contacts and their listing, the email log and stored
//! documents, and the audit trail. One function, dispatched on the route key.

use super::problem::{ApiError, FieldError};
use super::request::{caller, finish, json_body, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{
    id_token::IdentityProvider,
    identity::{self, FactEdit, FactHasher},
    channel::Channels, portal::valid_name, time, Contact, ContactId, ContactKind, EmailAddress, Fact, Locale, PhoneNumber, Portal, PortalId, Recipient, Scope,
};
use std::collections::BTreeMap;
use crate::store::items::EmailItem;
use chrono::{DateTime, Utc};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    pub name: String,
    pub default: bool,
    /// Absent or null: the deployment's hosted claim page (needs `PUBLIC_BASE_URL`).
    #[serde(default)]
    pub claim_url: Option<String>,
    #[serde(default)]
    pub code_ttl_hours: Option<u32>,
    #[serde(default)]
    pub link_ttl_hours: Option<u32>,
    #[serde(default)]
    pub auto_generate: bool,
    #[serde(default)]
    pub auto_email: bool,
    #[serde(default)]
    pub reminder_days_before_expiry: Option<u32>,
    /// Facts a claim must match (`domain::identity`); none when absent.
    #[serde(default)]
    pub claim_checks: Vec<Fact>,
    /// The identity provider whose ID tokens vouch for addresses (`domain::id_token`).
    #[serde(default)]
    pub identity_issuer: Option<String>,
    #[serde(default)]
    pub identity_audience: Option<String>,
    #[serde(default)]
    pub identity_jwks_url: Option<String>,
    /// Per kind, the channels to use (`{"pickup_code": ["email", "sms"]}`); a kind not named: email.
    #[serde(default)]
    pub channels: BTreeMap<crate::domain::EmailKind, Vec<crate::domain::Channel>>,
    /// BCP 47; absent: `en`.
    #[serde(default)]
    pub default_locale: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// For text messages: E.164 (`+14155550123`).
    #[serde(default)]
    pub phone: Option<String>,
    /// BCP 47 (`es`, `es-MX`); absent or empty: the portal's default.
    #[serde(default)]
    pub locale: Option<String>,
    pub kind: ContactKind,
    #[serde(default)]
    pub portal_ids: Vec<String>,
    /// Facts of the record (write-only): absent keeps the stored fact, `null` erases it.
    #[serde(default, deserialize_with = "present")]
    pub date_of_birth: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub family_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub postal_code: Option<Option<String>>,
}

/// A field that is present (`Some`), with `null` as `Some(None)`; absent is `None` (by `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl ContactRequest {
    fn fact_edits(&self) -> [(Fact, &Option<Option<String>>); 3] {
        [(Fact::DateOfBirth, &self.date_of_birth), (Fact::FamilyName, &self.family_name), (Fact::PostalCode, &self.postal_code)]
    }
}

/// One line of a contact's email log.
#[derive(Debug, Serialize)]
pub struct EmailLogEntry {
    pub document_id: crate::domain::DocumentId,
    pub kind: crate::domain::EmailKind,
    /// An email address, or a phone number for a text (`channel`).
    pub to: Recipient,
    pub channel: crate::domain::Channel,
    /// The language of the template it was sent with (after `sent`).
    pub locale: Option<Locale>,
    pub portal_id: PortalId,
    pub subject: Option<String>,
    pub status: &'static str,
    pub ses_message_id: Option<String>,
    pub failure_reason: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// After `sent`: the furthest of SES's delivery events, and all of them (`domain::delivery`).
    pub delivery_status: Option<crate::domain::delivery::DeliveryStatus>,
    pub delivery_events: Vec<crate::domain::delivery::DeliveryRecord>,
}

impl From<EmailItem> for EmailLogEntry {
    fn from(e: EmailItem) -> Self {
        Self {
            document_id: e.document_id,
            kind: e.kind,
            channel: e.to.channel(),
            locale: e.sent_locale,
            to: e.to,
            portal_id: e.portal_id,
            subject: e.subject,
            status: e.status.public(),
            ses_message_id: e.ses_message_id,
            failure_reason: e.failure_reason,
            created_at: e.created_at,
            sent_at: e.sent_at,
            delivery_status: e.delivery_status,
            delivery_events: e.delivery_events,
        }
    }
}

/// The `admin` function.
pub struct Admin;

impl Function for Admin {
    const NAME: &'static str = "admin";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        let req = &req;
        finish(match route {
            Route::PutPortal => put_portal(app, req).await,
            Route::GetPortal => get_portal(app, req).await,
            Route::ListPortals => list_portals(app, req).await,
            Route::PutContact => put_contact(app, req).await,
            Route::GetContact => get_contact(app, req).await,
            Route::ListEmails => list_emails(app, req).await,
            Route::ListContacts => super::admin_views::list_contacts(app, req).await,
            Route::ContactAudit => super::admin_views::contact_audit(app, req).await,
            Route::GetDocument => super::admin_views::get_document(app, req).await,
            Route::GetTemplate => super::templates::get(app, req).await,
            Route::PutTemplate => super::templates::put(app, req).await,
            Route::PreviewTemplate => super::templates::preview(app, req).await,
            Route::GetSettings => super::settings::get(app, req).await,
            Route::PutSettings => super::settings::put(app, req).await,
            Route::GetTenantProfile => super::settings::get_profile(app, req).await,
            Route::PutTenantProfile => super::settings::put_profile(app, req).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

async fn put_portal(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    let body: PortalRequest = json_body(req, false)?;
    let identity = IdentityProvider::from_settings(body.identity_issuer.as_deref(), body.identity_audience.as_deref(), body.identity_jwks_url.as_deref())
        .map_err(|e| ApiError::validation(e.pointer(), e.to_string()))?;
    let channels = Channels::new(body.channels).map_err(|e| ApiError::validation("/channels", e.to_string()))?;
    let default_locale = match body.default_locale.as_deref().map(str::trim) {
        None | Some("") => Locale::english(),
        Some(raw) => Locale::parse(raw).map_err(|e| ApiError::validation("/default_locale", format!("default_locale {e}")))?,
    };
    let portal = Portal::new(portal_id, &body.name, body.default, body.claim_url.as_deref(), body.code_ttl_hours, body.link_ttl_hours)
        .map(|p| p.with_messages(channels, default_locale))
        .and_then(|p| p.with_automation(body.auto_generate, body.auto_email, body.reminder_days_before_expiry))
        .map(|p| p.with_claim_checks(body.claim_checks.iter().copied()).with_identity(identity))
        .map_err(|e| ApiError::validation(e.pointer(), e.to_string()))?;
    if portal.claim_url.is_none() && app.public_base_url.is_none() {
        return Err(ApiError::validation(
            "/claim_url",
            "claim_url: required, as this deployment hosts no claim page (its PublicBaseUrl parameter is empty)",
        ));
    }
    app.store.put_portal(&caller.tenant_id, &portal, &caller.sub, (app.clock)()).await?;
    app.portals.forget(&caller.tenant_id);
    Ok(respond(StatusCode::OK, &portal))
}

async fn get_portal(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    let portal = app.store.get_portal(&caller.tenant_id, &portal_id).await?.ok_or(ApiError::NotFound("portal"))?;
    Ok(respond(StatusCode::OK, &portal))
}

async fn list_portals(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let portals = app.store.list_portals(&caller.tenant_id).await?;
    Ok(respond(StatusCode::OK, &serde_json::json!({ "items": portals })))
}

async fn put_contact(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let body: ContactRequest = json_body(req, false)?;
    let mut errors = Vec::new();
    let name = valid_name(&body.name);
    if name.is_none() {
        errors.push(FieldError::new("/name", "name: must be 1 to 200 characters, without control characters"));
    }
    let email = match body.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => EmailAddress::parse(raw)
            .map_err(|e| errors.push(FieldError::new("/email", format!("email {e}"))))
            .ok(),
    };
    let phone = match body.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => PhoneNumber::parse(raw).map_err(|e| errors.push(FieldError::new("/phone", format!("phone {e}")))).ok(),
    };
    let locale = match body.locale.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Locale::parse(raw).map_err(|e| errors.push(FieldError::new("/locale", format!("locale {e}")))).ok(),
    };
    let known = app.store.list_portals(&caller.tenant_id).await?;
    let mut portal_ids = Vec::new();
    for (i, raw) in body.portal_ids.iter().enumerate() {
        match PortalId::parse(raw) {
            Ok(id) if known.iter().any(|p| p.portal_id == id) => portal_ids.push(id),
            Ok(id) => errors.push(FieldError::new(format!("/portal_ids/{i}"), format!("no portal {id} in this tenant"))),
            Err(e) => errors.push(FieldError::new(format!("/portal_ids/{i}"), format!("portal id {e}"))),
        }
    }
    // Facts are normalised and hashed here; the value never leaves this function.
    let keys = app.keys.get().await?;
    let hasher = FactHasher(&keys.current.hasher);
    let mut facts = BTreeMap::new();
    for (fact, edit) in body.fact_edits() {
        match edit {
            None => {}
            Some(None) => {
                facts.insert(fact, FactEdit::Erase);
            }
            Some(Some(raw)) => match identity::normalise(fact, raw) {
                Ok(normal) => {
                    facts.insert(fact, FactEdit::Set(hasher.hash(&caller.tenant_id, &contact_id, fact, &normal), keys.current.version.clone()));
                }
                Err(e) => errors.push(FieldError::new(format!("/{fact}"), e.to_string())),
            },
        }
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        let detail = errors.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>().join("; ");
        return Err(ApiError::Validation { detail, errors });
    };
    portal_ids.dedup();
    let contact = Contact {
        contact_id,
        name,
        email,
        phone,
        locale,
        kind: body.kind,
        portal_ids,
        facts: Default::default(),
        fact_key_versions: Default::default(),
        email_problem: None,
    };
    let stored = app.store.put_contact_with_facts(&caller.tenant_id, &contact, &facts, &caller.sub, (app.clock)()).await?;
    Ok(respond(StatusCode::OK, &stored))
}

async fn get_contact(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let contact = app.store.get_contact(&caller.tenant_id, &contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
    Ok(respond(StatusCode::OK, &contact))
}

async fn list_emails(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let emails = app.store.contact_emails(&caller.tenant_id, &contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
    let items: Vec<EmailLogEntry> = emails.into_iter().map(Into::into).collect();
    Ok(respond(StatusCode::OK, &serde_json::json!({ "contact_id": contact_id, "items": items })))
}
