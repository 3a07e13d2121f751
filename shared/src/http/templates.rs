//! Email templates per portal (Portal Administration):
//! `GET/PUT /v1/portals/{portal_id}/templates/{kind}` and `POST …/preview`.
//!
//! Kinds: `pickup_code`, `activation_link`, `reactivation`, `deactivation`, `reminder`.
//! Variables: `contact_name`, `portal_name`, `tenant_name`, `code`, `link`,
//! `claim_url`, `expires_at`. A template with a syntax error or an unknown
//! variable is refused at save with 422 naming the part and the line.

use super::problem::{ApiError, FieldError};
use super::request::{caller, json_body, path_param, respond};
use crate::app::App;
use crate::domain::{Caller, PortalId, Scope};
use crate::mail::templates::{default_template, render, validate, EmailTemplate, TemplateVars};
use crate::domain::EmailKind;
use crate::store::{items::AuditItem, TxError};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    /// Values to render with; the rest are sample values.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

fn kind_of(req: &Request) -> Result<EmailKind, ApiError> {
    path_param(req, "kind", |raw: &str| {
        EmailKind::parse(raw).ok_or("must be one of pickup_code, activation_link, reactivation, deactivation, reminder")
    })
}

async fn portal_of(app: &App, caller: &Caller, req: &Request) -> Result<PortalId, ApiError> {
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    app.store.get_portal(&caller.tenant_id, &portal_id).await?.ok_or(ApiError::NotFound("portal"))?;
    Ok(portal_id)
}

/// The template in force: the portal's own, or the default.
async fn current(app: &App, caller: &Caller, portal: &PortalId, kind: EmailKind) -> Result<(EmailTemplate, &'static str), ApiError> {
    Ok(match app.store.get_template(&caller.tenant_id, portal, kind).await? {
        Some(t) => (t, "portal"),
        None => (default_template(kind), "default"),
    })
}

fn check(template: &EmailTemplate) -> Result<(), ApiError> {
    validate(template).map_err(|p| {
        let at = p.line.map(|l| format!(" (line {l})")).unwrap_or_default();
        let detail = format!("{}{at}: {}", p.part, p.detail);
        ApiError::Validation { errors: vec![FieldError::new(format!("/{}", p.part), detail.clone()).at_line(p.line)], detail }
    })
}

pub async fn get(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let kind = kind_of(req)?;
    let portal = portal_of(app, &caller, req).await?;
    let (t, source) = current(app, &caller, &portal, kind).await?;
    Ok(respond(
        StatusCode::OK,
        &json!({"portal_id": portal, "kind": kind, "source": source, "subject": t.subject, "text": t.text, "html": t.html,
                "variables": TemplateVars::NAMES}),
    ))
}

pub async fn put(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let kind = kind_of(req)?;
    let body: TemplateBody = json_body(req, false)?;
    let portal = portal_of(app, &caller, req).await?;
    let template = EmailTemplate { subject: body.subject, text: body.text, html: body.html };
    check(&template)?;
    let now = (app.clock)();
    let detail = BTreeMap::from([("kind".to_owned(), kind.as_str().to_owned())]);
    let audit = AuditItem::tenant(&caller.tenant_id, Some(&portal), &caller.sub, "template_change", now, detail);
    app.store.put_template(&caller.tenant_id, &portal, kind, &template, &audit, now).await.map_err(|e| {
        match e.downcast_ref::<TxError>() {
            // Another save of the same template at the same moment: nothing of this one was written.
            Some(cancelled @ TxError::Cancelled(_)) => {
                tracing::info!(error = %cancelled, "template save cancelled");
                ApiError::Conflict("the template was saved by another request at the same moment; try again".into())
            }
            _ => ApiError::from(e),
        }
    })?;
    Ok(respond(
        StatusCode::OK,
        &json!({"portal_id": portal, "kind": kind, "source": "portal", "subject": template.subject, "text": template.text, "html": template.html}),
    ))
}

pub async fn preview(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    // Admin, as saving is: a preview renders whatever it is given.
    let caller = caller(req, Scope::Admin)?;
    let kind = kind_of(req)?;
    let body: PreviewBody = json_body(req, true)?;
    let portal = portal_of(app, &caller, req).await?;
    let (mut template, _) = current(app, &caller, &portal, kind).await?;
    template.subject = body.subject.unwrap_or(template.subject);
    template.text = body.text.unwrap_or(template.text);
    template.html = body.html.unwrap_or(template.html);
    check(&template)?;
    let mut vars = TemplateVars::sample().to_map();
    for (name, value) in body.vars {
        if !vars.contains_key(&name) {
            return Err(ApiError::validation(&format!("/vars/{name}"), format!("unknown variable `{name}`")));
        }
        vars.insert(name, value);
    }
    let rendered = render(&template, &TemplateVars::from_map(&vars)).map_err(|e| ApiError::validation(&format!("/{}", e.part), e.to_string()))?;
    Ok(respond(StatusCode::OK, &rendered))
}
