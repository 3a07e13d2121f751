//! `GET /v1/contacts/{contact_id}/portal`: the Portal portlet (seed 000).
//! One DynamoDB Query of the contact's partition plus the cached portal list
//! (read after it, on the same connection, when this instance has none).

use super::problem::ApiError;
use super::request::{caller, finish, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::pickup_code::CodeSight;
use crate::domain::{portlet, ContactId, Scope};
use lambda_http::{http::StatusCode, Body, Request, Response};

/// The `status` function.
pub struct Status;

impl Function for Status {
    const NAME: &'static str = "status";
    async fn handle(app: &App, _route: Route, req: Request) -> Response<Body> {
        finish(run(app, &req).await)
    }
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let contact_id = path_param(req, "contact_id", ContactId::parse)?;
    // One after the other, not at once: on a cold instance the portal list
    // (cached 30 s) then reuses the connection the contact's Query opened
    // instead of opening a second one, and an unknown contact reads nothing more.
    let partition = app.store.contact_partition(&caller.tenant_id, &contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
    let portals = app.portals.get(&app.store, &caller.tenant_id).await?;
    let mut view = portlet::build(&partition.contact, &portals, &partition.access, partition.accounts, partition.codes, (app.clock)());
    let sight = CodeSight::of(caller.scopes);
    view.pending_codes.iter_mut().for_each(|c| c.code = sight.show(&c.code));
    Ok(respond(StatusCode::OK, &view))
}
