//! The `access` function: `GET /v1/accounts/{email}/access`, what the portal
//! asks at every login: which contacts (on which portals) this email may open.
//! One strongly consistent Query of the grants and one of their contacts'
//! states: a grant of a contact `disabled` on its portal counts for nothing
//! (a big deactivation deletes its grants in later chunks), so a deactivated
//! contact is gone from the answer at once.
//! Needs `portal:access` (the portal's own scope, good for nothing else) or any staff scope.

use super::problem::ApiError;
use super::request::{caller, finish, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{EmailAddress, Scope};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde_json::json;

/// The `access` function.
pub struct Access;

impl Function for Access {
    const NAME: &'static str = "access";
    async fn handle(app: &App, _route: Route, req: Request) -> Response<Body> {
        finish(run(app, &req).await)
    }
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Access)?;
    let email = path_param(req, "email", EmailAddress::parse)?;
    let grants = app.store.access_of(&caller.tenant_id, &email).await?;
    let access: Vec<_> = grants
        .into_iter()
        .map(|g| match g.identity_subject {
            Some(sub) => json!({"contact_id": g.contact_id, "portal_id": g.portal_id, "identity_subject": sub}),
            None => json!({"contact_id": g.contact_id, "portal_id": g.portal_id}),
        })
        .collect();
    Ok(respond(StatusCode::OK, &json!({"email": email, "access": access})))
}
