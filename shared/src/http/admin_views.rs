//! Read views for staff: the contact listing with the "portal active" mark,
//! stored email documents, and a contact's audit trail.

use super::problem::ApiError;
use super::request::{caller, open_cursor, path_param, resolve_portal, respond, sign_cursor};
use crate::app::App;
use crate::domain::page_cursor::Listing;
use crate::domain::{time, ContactId, PortalId, PortalState, Scope};
use crate::store::listing::{ListError, NameSearch};
use lambda_http::{http::StatusCode, Body, Request, RequestExt, Response};
use serde_json::json;

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
