//! The `reports` function (seed 000):
//!
//! - `GET /v1/reports/activations?q=&portal_id=&from=&to=&limit=&cursor=`: contacts
//!   sent a code or link who activated with it, newest first. `q` matches a
//!   prefix of any word of the contact's name or the account email.
//! - `GET /v1/reports/unused-codes?portal_id=&older_than=&limit=&cursor=`: every
//!   pending, unexpired code, with the stored email's document id (null if
//!   never emailed). Both say which channels the code or link went by
//!   (`sent_by`: `["email", "sms"]`; in CSV `email sms`).
//!
//! JSON by default, one Query per page (`limit` ≤ 500, opaque `next_cursor`).
//! With `Accept: text/csv` or `format=csv`: every page in one CSV file with a
//! header row, RFC 4180 quoting, and formula-like cells neutralised.

use super::problem::ApiError;
use super::request::{caller, finish, open_cursor, respond, sign_cursor};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::page_cursor::Listing;
use crate::domain::pickup_code::CodeSight;
use crate::domain::report::{csv_line, search_needle};
use crate::domain::{invitation, time, PortalId, Scope, TenantId};
use crate::store::reports::{ActivationFilter, Page, ReportError};
use chrono::{DateTime, Utc};
use lambda_http::{http::StatusCode, Body, Request, RequestExt, Response};
use serde_json::{json, Value};

pub const DEFAULT_LIMIT: i32 = 100;
pub const MAX_LIMIT: i32 = 500;
/// Most rows one CSV file holds; narrower filters for more.
pub const MAX_CSV_ROWS: usize = 100_000;

const ACTIVATION_COLUMNS: [&str; 9] =
    ["contact_id", "contact_name", "email", "portal_id", "method", "sent_at", "sent_by", "activated_at", "email_document_id"];
const UNUSED_COLUMNS: [&str; 8] = ["contact_id", "contact_name", "portal_id", "code", "created_at", "expires_at", "sent_by", "email_document_id"];

/// The `reports` function.
pub struct Reports;

impl Function for Reports {
    const NAME: &'static str = "reports";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        finish(match route {
            Route::ActivationsReport => report(app, &req, Report::Activations).await,
            Route::UnusedCodesReport => report(app, &req, Report::UnusedCodes).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

#[derive(Clone, Copy)]
enum Report {
    Activations,
    UnusedCodes,
}

fn time_param(req: &Request, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    req.query_string_parameters()
        .first(name)
        .map(|v| {
            // An unencoded `+` in an offset arrives as a space; read it as meant.
            DateTime::parse_from_rfc3339(v)
                .or_else(|e| if v.contains(' ') { DateTime::parse_from_rfc3339(&v.replace(' ', "+")) } else { Err(e) })
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::validation(&format!("/{name}"), format!("{name} must be an RFC 3339 time, e.g. 2026-11-23T00:00:00Z")))
        })
        .transpose()
}

fn opt_time(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref().map_or(Value::Null, |t| json!(time::format(t)))
}

struct Params {
    tenant: TenantId,
    /// How much of each pending code the caller sees.
    sight: CodeSight,
    filter: ActivationFilter,
    older_than: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// One page of rows (as JSON objects in column order).
async fn page(app: &App, which: Report, p: &Params, limit: i32, cursor: Option<&str>) -> Result<Page<Value>, ApiError> {
    let map_err = |e: ReportError| match e {
        ReportError::BadCursor => ApiError::validation("/cursor", e.to_string()),
        ReportError::Unexpected(e) => ApiError::Unexpected(e),
    };
    Ok(match which {
        Report::Activations => {
            let page = app.store.activations_page(&p.tenant, &p.filter, limit, cursor).await.map_err(map_err)?;
            let rows = page
                .rows
                .into_iter()
                .map(|a| {
                    json!({"contact_id": a.contact_id(), "contact_name": a.contact_name, "email": a.email, "portal_id": a.portal_id,
                           "method": a.method, "sent_at": opt_time(&a.sent_at), "sent_by": a.sent_by, "activated_at": time::format(&a.activated_at),
                           "email_document_id": a.email_document_id})
                })
                .collect();
            Page { rows, next_cursor: page.next_cursor }
        }
        Report::UnusedCodes => {
            let page = app
                .store
                .unused_codes_page(&p.tenant, p.filter.portal.as_ref(), p.older_than, p.now, limit, cursor)
                .await
                .map_err(map_err)?;
            // The index holds only pending codes by expiry; the life cycle says which are unused now.
            let rows = page
                .rows
                .into_iter()
                .filter(|c| invitation::is_listed_as_pending(c.state, c.expires_at, p.now))
                .map(|c| {
                    json!({"contact_id": c.contact_id(), "contact_name": c.contact_name, "portal_id": c.portal_id, "code": c.code.map(|code| p.sight.show(&code.into_inner())),
                           "created_at": time::format(&c.created_at), "expires_at": time::format(&c.expires_at),
                           "sent_by": c.sent_by, "email_document_id": c.email_document_id})
                })
                .collect();
            Page { rows, next_cursor: page.next_cursor }
        }
    })
}

async fn report(app: &App, req: &Request, which: Report) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let query = req.query_string_parameters();
    let limit = super::request::limit_param(req, DEFAULT_LIMIT as usize, MAX_LIMIT as usize)? as i32;
    let portal = query
        .first("portal_id")
        .map(|p| PortalId::parse(p).map_err(|e| ApiError::validation("/portal_id", format!("portal_id {e}"))))
        .transpose()?;
    let (from, to) = (time_param(req, "from")?, time_param(req, "to")?);
    if matches!((from, to), (Some(f), Some(t)) if f > t) {
        return Err(ApiError::validation("/from", "from must not be after to"));
    }
    let params = Params {
        tenant: caller.tenant_id.clone(),
        sight: CodeSight::of(caller.scopes),
        filter: ActivationFilter { needle: query.first("q").and_then(search_needle), portal, from, to },
        older_than: time_param(req, "older_than")?,
        now: (app.clock)(),
    };
    let wants_csv = match query.first("format") {
        None => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::validation("/format", "format may only be csv (absent: JSON)")),
    } || req.headers().get("accept").and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/csv"));
    // Cursors handed out are signed for this tenant and report (`domain::page_cursor`);
    // the pages read here take and give the store's plain ones.
    let listing = match which {
        Report::Activations => Listing::ActivationsReport,
        Report::UnusedCodes => Listing::UnusedCodesReport,
    };
    let tenant = caller.tenant_id.as_str();
    let start = open_cursor(app, tenant, listing, query.first("cursor")).await?;
    if !wants_csv {
        let p = page(app, which, &params, limit, start).await?;
        let next_cursor = sign_cursor(app, tenant, listing, p.next_cursor).await?;
        return Ok(respond(StatusCode::OK, &json!({"items": p.rows, "next_cursor": next_cursor})));
    }
    let (columns, name): (&[&str], &str) = match which {
        Report::Activations => (&ACTIVATION_COLUMNS, "activations.csv"),
        Report::UnusedCodes => (&UNUSED_COLUMNS, "unused-codes.csv"),
    };
    let mut csv = csv_line(columns);
    let (mut cursor, mut rows) = (start.map(str::to_owned), 0usize);
    loop {
        let p = page(app, which, &params, MAX_LIMIT, cursor.as_deref()).await?;
        for row in &p.rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match &row[*c] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    // `sent_by`: the channels, space-separated.
                    Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
                    other => other.to_string(),
                })
                .collect();
            csv.push_str(&csv_line(&cells));
        }
        rows += p.rows.len();
        if rows > MAX_CSV_ROWS {
            return Err(ApiError::validation("", format!("more than {MAX_CSV_ROWS} rows; narrow the report with from/to or portal_id")));
        }
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/csv; charset=utf-8")
        .header("content-disposition", format!("attachment; filename=\"{name}\""))
        .body(Body::Text(csv))
        .expect("a valid response"))
}
