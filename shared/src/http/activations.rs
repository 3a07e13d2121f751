//! The `activations` function: bulk activation (seed 002).
//!
//! - `POST /v1/activations` `{"contact_ids":[..≤10000],"portal_id"?,"method":"code"|"link","send_email"?}` → 202 `{"job_id","total"}`
//! - `PUT /v1/groups/{group_id}` `{"name","contact_ids":[..≤10000]}`, `GET /v1/groups/{group_id}`
//! - `POST /v1/groups/{group_id}/activate` `{"portal_id"?,"method","send_email"?}` → 202 `{"job_id","total"}`:
//!   the members as they are now; contacts added later are not activated.
//! - `GET /v1/jobs/{job_id}` → progress.
//! - `PUT/GET/DELETE /v1/integrations/{integration_id}`: who may send to the
//!   activation queue directly ([`super::integrations`]).

use super::problem::{ApiError, FieldError};
use super::request::{caller, finish, resolve_portal, json_body, json_body_up_to, optional_portal_id, path_param, respond, MAX_BULK_BODY_BYTES};
use super::routes::{Function, Route};
use crate::app::App;
use crate::usecase::bulk_submit::{submit, JobRequest};
use crate::domain::job::MAX_CONTACTS_PER_JOB;
use crate::domain::{portal::valid_name, time, Caller, ContactId, GroupId, JobId, Method, Scope};
use crate::store::TxError;
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationsRequest {
    pub contact_ids: Vec<String>,
    #[serde(default)]
    pub portal_id: Option<String>,
    pub method: Method,
    #[serde(default = "yes")]
    pub send_email: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    pub name: String,
    pub contact_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupActivateRequest {
    #[serde(default)]
    pub portal_id: Option<String>,
    pub method: Method,
    #[serde(default = "yes")]
    pub send_email: bool,
}

/// Parses and de-duplicates up to 10,000 contact ids, naming each bad one.
fn contact_ids(raw: &[String]) -> Result<Vec<ContactId>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_CONTACTS_PER_JOB {
        return Err(ApiError::validation("/contact_ids", format!("contact_ids must hold 1 to {MAX_CONTACTS_PER_JOB} ids")));
    }
    let mut errors = Vec::new();
    let mut ids = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        match ContactId::parse(r) {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(FieldError::new(format!("/contact_ids/{i}"), format!("contact id {e}"))),
        }
    }
    if !errors.is_empty() {
        errors.truncate(20);
        return Err(ApiError::Validation { detail: format!("{} contact ids are invalid", errors.len()), errors });
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.retain(|id| seen.insert(id.clone()));
    Ok(ids)
}

/// The `activations` function.
pub struct Activations;

impl Function for Activations {
    const NAME: &'static str = "activations";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        finish(match route {
            Route::SubmitActivations => activate_selection(app, &req).await,
            Route::PutGroup => put_group(app, &req).await,
            Route::GetGroup => get_group(app, &req).await,
            Route::ListGroups => list_groups(app, &req).await,
            Route::ActivateGroup => activate_group(app, &req).await,
            Route::GetJob => get_job(app, &req).await,
            Route::PutIntegration => super::integrations::put_integration(app, &req).await,
            Route::GetIntegration => super::integrations::get_integration(app, &req).await,
            Route::DeleteIntegration => super::integrations::delete_integration(app, &req).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

async fn start(
    app: &App,
    caller: &Caller,
    portal_id: Option<&str>,
    method: Method,
    send_email: bool,
    contacts: &[ContactId],
    source: String,
) -> Result<Response<Body>, ApiError> {
    let portal_id = optional_portal_id(portal_id)?;
    let portal = resolve_portal(app, caller, portal_id.as_ref()).await?;
    let request = JobRequest { tenant: &caller.tenant_id, actor: &caller.sub, portal: &portal, method, send_email, contacts, source };
    let job_id = submit(app, request).await?;
    Ok(respond(StatusCode::ACCEPTED, &json!({"job_id": job_id, "total": contacts.len()})))
}

async fn activate_selection(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let body: ActivationsRequest = json_body_up_to(req, false, MAX_BULK_BODY_BYTES)?;
    let ids = contact_ids(&body.contact_ids)?;
    start(app, &caller, body.portal_id.as_deref(), body.method, body.send_email, &ids, "http".into()).await
}

async fn put_group(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let group_id = path_param(req, "group_id", GroupId::parse)?;
    let body: GroupRequest = json_body_up_to(req, false, MAX_BULK_BODY_BYTES)?;
    let name = valid_name(&body.name).ok_or_else(|| ApiError::validation("/name", "name: must be 1 to 200 characters"))?;
    let ids = if body.contact_ids.is_empty() { Vec::new() } else { contact_ids(&body.contact_ids)? };
    match app.store.put_group(&caller.tenant_id, &group_id, &name, &ids, &caller.sub, (app.clock)()).await {
        Ok(()) => {}
        Err(e @ TxError::Cancelled(_)) => {
            tracing::info!(error = %e, "group change cancelled");
            return Err(ApiError::Conflict("the group was changed by another request at the same moment; try again".into()));
        }
        Err(TxError::Unexpected(e)) => return Err(e.into()),
    }
    Ok(respond(StatusCode::OK, &json!({"group_id": group_id, "name": name, "size": ids.len()})))
}

async fn get_group(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let group_id = path_param(req, "group_id", GroupId::parse)?;
    let g = app.store.get_group(&caller.tenant_id, &group_id).await?.ok_or(ApiError::NotFound("group"))?;
    Ok(respond(
        StatusCode::OK,
        &json!({"group_id": g.group_id, "name": g.name, "contact_ids": g.contact_ids, "size": g.contact_ids.len(),
                "updated_at": time::format(&g.updated_at)}),
    ))
}

/// `GET /v1/groups?limit=&cursor=`: the tenant's groups (SmartGroups and Lists) in id order.
async fn list_groups(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    use crate::domain::page_cursor::Listing;
    let caller = caller(req, Scope::Read)?;
    let limit = super::request::limit_param(req, 50, 200)? as i32;
    let tenant = caller.tenant_id.as_str();
    let keys = app.keys.get().await?;
    let foreign = || ApiError::validation("/cursor", crate::domain::page_cursor::ForeignCursor.to_string());
    let query = lambda_http::RequestExt::query_string_parameters(req);
    let cursor = query.first("cursor").map(|raw| keys.open_cursor(tenant, Listing::Groups, raw).map_err(|_| foreign())).transpose()?;
    let (groups, next) = app.store.list_groups(&caller.tenant_id, limit, cursor).await?.ok_or_else(foreign)?;
    let items: Vec<_> = groups
        .into_iter()
        .map(|g| json!({"group_id": g.group_id, "name": g.name, "size": g.size, "updated_at": time::format(&g.updated_at)}))
        .collect();
    let next_cursor = next.map(|plain| keys.sign_cursor(tenant, Listing::Groups, &plain));
    Ok(respond(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
}

async fn activate_group(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Write)?;
    let group_id = path_param(req, "group_id", GroupId::parse)?;
    let body: GroupActivateRequest = json_body(req, false)?;
    // The members as they are at this moment: a one-time action (seed 002).
    let group = app.store.get_group(&caller.tenant_id, &group_id).await?.ok_or(ApiError::NotFound("group"))?;
    if group.contact_ids.is_empty() {
        return Err(ApiError::Conflict("the group has no members".into()));
    }
    start(app, &caller, body.portal_id.as_deref(), body.method, body.send_email, &group.contact_ids, format!("group:{group_id}")).await
}

async fn get_job(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let job_id = path_param(req, "job_id", JobId::parse)?;
    let j = app.store.get_job(&caller.tenant_id, &job_id).await?.ok_or(ApiError::NotFound("job"))?;
    Ok(respond(
        StatusCode::OK,
        &json!({
            "job_id": j.job_id,
            "state": j.state,
            "total": j.total,
            "activated": j.activated,
            "skipped_no_email": j.skipped_no_email,
            "skipped_already_active": j.skipped_already_active,
            "skipped_missing_facts": j.skipped_missing_facts,
            "skipped_suppressed": j.skipped_suppressed,
            "failed": j.failed,
            "portal_id": j.portal_id,
            "method": j.method,
            "source": j.source,
            "created_at": time::format(&j.created_at),
            "finished_at": j.finished_at.as_ref().map(time::format),
        }),
    ))
}
