//! The `contacts` function: the staff's record of the people a portal is
//! for. A contact's profile (its facts of the record hashed with the code
//! hash key), the listing with the "portal active" mark, the email log,
//! stored email documents, and a contact's audit trail.

use super::problem::{ApiError, FieldError};
use super::routes::{Function, Route};
use super::request::{caller, finish, json_body, open_cursor, path_param, resolve_portal, respond, sign_cursor};
use crate::app::App;
use crate::domain::page_cursor::Listing;
use crate::domain::{
    identity::{self, FactEdit, FactHasher},
    portal::valid_name, time, Contact, ContactId, ContactKind, EmailAddress, Fact, Locale, PhoneNumber, PortalId, PortalState, Recipient, Scope,
};
use crate::store::items::EmailItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use crate::store::listing::{ListError, NameSearch};
use lambda_http::{http::StatusCode, Body, Request, RequestExt, Response};
use serde_json::json;

#[derive(Deserialize)]
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

crate::debug_redacting!(ContactRequest { name, email, phone, locale, kind, portal_ids } hiding { date_of_birth, family_name, postal_code });

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

/// The `contacts` function.
pub struct Contacts;

impl Function for Contacts {
    const NAME: &'static str = "contacts";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        let req = &req;
        finish(match route {
            Route::PutContact => put_contact(app, req).await,
            Route::GetContact => get_contact(app, req).await,
            Route::ListEmails => list_emails(app, req).await,
            Route::ListContacts => list_contacts(app, req).await,
            Route::ContactAudit => contact_audit(app, req).await,
            Route::GetDocument => get_document(app, req).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

/// Default and largest page of the listing.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// The longest name search.
pub const MAX_SEARCH_CHARS: usize = 100;

/// `GET /v1/contacts?q=&portal_status=&email_problem=&portal_id=&limit=&cursor=`
pub async fn list_contacts(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let query = req.query_string_parameters();
    let filter = match query.first("portal_status") {
        None | Some("") => None,
        Some(raw) => Some(PortalState::parse(raw).ok_or_else(|| {
            ApiError::validation("/portal_status", format!("portal_status must be one of none, pending, expired, active, disabled, locked (got {raw:?})"))
        })?),
    };
    let email_problem_only = match query.first("email_problem") {
        None | Some("") => false,
        Some("any") => true,
        Some(raw) => return Err(ApiError::validation("/email_problem", format!("email_problem must be any (got {raw:?})"))),
    };
    let limit = super::request::limit_param(req, DEFAULT_LIMIT, MAX_LIMIT)?;
    let search = match query.first("q") {
        Some(q) if q.chars().count() > MAX_SEARCH_CHARS => {
            return Err(ApiError::validation("/q", format!("q is at most {MAX_SEARCH_CHARS} characters")));
        }
        Some(q) => NameSearch::new(q),
        None => None,
    };
    let portal_id = query
        .first("portal_id")
        .map(|p| PortalId::parse(p).map_err(|e| ApiError::validation("/portal_id", format!("portal_id {e}"))))
        .transpose()?;
    let portal = resolve_portal(app, &caller, portal_id.as_ref()).await?;
    let tenant = caller.tenant_id.as_str();
    let cursor = open_cursor(app, tenant, Listing::Contacts, query.first("cursor")).await?;
    let page = app
        .store
        .list_contacts(&caller.tenant_id, &portal.portal_id, filter, search.as_ref(), email_problem_only, limit, cursor, (app.clock)())
        .await
        .map_err(|e| match e {
            ListError::BadCursor => ApiError::validation("/cursor", e.to_string()),
            ListError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    let items: Vec<_> = page
        .items
        .into_iter()
        .map(|(c, state)| json!({"contact_id": c.contact_id, "name": c.name, "email": c.email, "portal_status": state, "email_problem": c.email_problem}))
        .collect();
    let next_cursor = sign_cursor(app, tenant, Listing::Contacts, page.next_cursor).await?;
    Ok(respond(StatusCode::OK, &json!({"portal_id": portal.portal_id, "items": items, "next_cursor": next_cursor})))
}

/// `GET /v1/emails/{document_id}`: the stored email, as rendered and sent.
pub async fn get_document(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let document_id = path_param(req, "document_id", |raw: &str| {
        uuid::Uuid::parse_str(raw)
            .ok()
            .and_then(|u| crate::domain::DocumentId::parse(&u.to_string()).ok())
            .ok_or("is not a document id")
    })?;
    let doc = app.store.get_document(&caller.tenant_id, &document_id).await?.ok_or(ApiError::NotFound("email document"))?;
    Ok(respond(
        StatusCode::OK,
        &json!({
            "document_id": doc.document_id,
            "contact_id": doc.contact_id,
            "portal_id": doc.portal_id,
            "kind": doc.kind,
            "to": doc.to,
            "status": doc.status.public(),
            "subject": doc.subject,
            "text": doc.body_text,
            "html": doc.body_html,
            "ses_message_id": doc.ses_message_id,
            "failure_reason": doc.failure_reason,
            "created_at": time::format(&doc.created_at),
            "sent_at": doc.sent_at.as_ref().map(time::format),
            "delivery_status": doc.delivery_status,
            "delivery_events": doc.delivery_events,
        }),
    ))
}

/// `GET /v1/contacts/{contact_id}/audit`: every staff action on the contact, newest first.
pub async fn contact_audit(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    let (contact, records) = tokio::try_join!(
        app.store.get_contact(&caller.tenant_id, &contact_id),
        app.store.list_audit(&caller.tenant_id, &contact_id),
    )?;
    contact.ok_or(ApiError::NotFound("contact"))?;
    let items: Vec<_> = records
        .into_iter()
        .map(|r| json!({"actor": r.actor, "action": r.action, "portal_id": r.portal_id, "at": time::format(&r.at), "detail": r.detail}))
        .collect();
    Ok(respond(StatusCode::OK, &json!({"contact_id": contact_id, "items": items})))
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
        Some(raw) => PhoneNumber::parse(raw)
            .map_err(|e| e.to_string())
            // A number the deployment may text: its country is listed, no premium or short range.
            .and_then(|p| app.sms_countries.admit(&p).map(|()| p).map_err(|e| format!("{} {e}", raw.trim())))
            .map_err(|e| errors.push(FieldError::new("/phone", format!("phone {e}"))))
            .ok(),
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
            // `null`, or an emptied field of the form: no fact on record.
            Some(None) => {
                facts.insert(fact, FactEdit::Erase);
            }
            Some(Some(raw)) if raw.trim().is_empty() && raw.chars().count() <= identity::MAX_FACT_LEN => {
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
