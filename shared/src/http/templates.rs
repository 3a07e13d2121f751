//! The `templates` function: email and text templates per portal and locale (Portal Administration):
//! `GET/PUT /v1/portals/{portal_id}/templates/{kind}?locale=es` and `POST …/preview`.
//! Without `locale`: the portal's `default_locale`. GET shows what a contact
//! of that locale gets (`domain::locale`'s fallback, `source` and `locale`
//! say which); PUT saves the portal's own for exactly that locale.
//!
//! Kinds: `pickup_code`, `activation_link`, `reactivation`, `deactivation`,
//! `reminder`, `claim_confirmation`, `account_added`. Parts: `subject`,
//! `text`, `html` and `sms` (the text message; the preview counts its
//! length and segments, GSM-7 or UCS-2).
//! Variables: `contact_name`, `portal_name`, `tenant_name`, `code`, `link`,
//! `claim_url`, `expires_at`. A template with a syntax error or an unknown
//! variable is refused at save with 422 naming the part and the line.
//!
//! A function of its own: the template engine (minijinja) is linked here and
//! in the mailer only, and a tenant's renders, each within its fuel budget,
//! run on this function's instances, never on those answering contacts.

use super::problem::{ApiError, FieldError};
use super::request::{caller, finish, json_body, path_param, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::channel::sms_info;
use crate::domain::email::OwnTemplate;
use crate::domain::locale::{self, BuiltIn};
use crate::domain::{Caller, EmailKind, Locale, Portal, PortalId, Scope};
use crate::mail::templates::{built_in, choose, render, render_sms, validate, Chosen, EmailTemplate, Source, TemplateVars, MAX_LOCALES_PER_KIND};
use crate::store::{items::AuditItem, TxError};
use lambda_http::{http::StatusCode, Body, Request, RequestExt as _, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The text message; absent: the built-in one of the template's language.
    #[serde(default)]
    pub sms: Option<String>,
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
    #[serde(default)]
    pub sms: Option<String>,
    /// Values to render with; the rest are sample values.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// The `templates` function.
pub struct Templates;

impl Function for Templates {
    const NAME: &'static str = "templates";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        let req = &req;
        finish(match route {
            Route::GetTemplate => get(app, req).await,
            Route::PutTemplate => put(app, req).await,
            Route::PreviewTemplate => preview(app, req).await,
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

fn kind_of(req: &Request) -> Result<EmailKind, ApiError> {
    path_param(req, "kind", |raw: &str| {
        EmailKind::parse(raw).ok_or("must be one of pickup_code, activation_link, reactivation, deactivation, reminder, claim_confirmation, account_added")
    })
}

async fn portal_of(app: &App, caller: &Caller, req: &Request) -> Result<Portal, ApiError> {
    let portal_id = path_param(req, "portal_id", PortalId::parse)?;
    app.store.get_portal(&caller.tenant_id, &portal_id).await?.ok_or(ApiError::NotFound("portal"))
}

/// `?locale=`: the locale asked about; absent, the portal's default.
fn locale_of(req: &Request, portal: &Portal) -> Result<Locale, ApiError> {
    match req.query_string_parameters_ref().and_then(|q| q.first("locale")).map(str::trim) {
        None | Some("") => Ok(portal.default_locale.clone()),
        Some(raw) => Locale::parse(raw).map_err(|e| ApiError::validation("/locale", format!("locale {e}"))),
    }
}

/// The template in force for a contact of `locale`, and the locales the portal has its own in.
async fn current(app: &App, caller: &Caller, portal: &Portal, kind: EmailKind, locale: &Locale) -> Result<(Chosen, Vec<OwnTemplate>), ApiError> {
    let own = app.store.templates_of(&caller.tenant_id, &portal.portal_id, kind, &portal.default_locale).await?;
    let chosen = choose(kind, &locale::chain(Some(locale), &portal.default_locale), &own);
    Ok((chosen, own))
}

fn check(template: &EmailTemplate) -> Result<(), ApiError> {
    validate(template).map_err(|p| {
        let at = p.line.map(|l| format!(" (line {l})")).unwrap_or_default();
        let detail = format!("{}{at}: {}", p.part, p.detail);
        ApiError::Validation { errors: vec![FieldError::new(format!("/{}", p.part), detail.clone()).at_line(p.line)], detail }
    })
}

fn view(portal: &Portal, kind: EmailKind, requested: &Locale, chosen: &Chosen, own: &[OwnTemplate]) -> serde_json::Value {
    let t = &chosen.template;
    let sample = render_sms(t, &TemplateVars::sample()).unwrap_or_default();
    json!({"portal_id": portal.portal_id, "kind": kind, "requested_locale": requested, "locale": chosen.locale, "source": chosen.source,
           "subject": t.subject, "text": t.text, "html": t.html, "sms": t.sms, "sms_sample": sms_info(&sample),
           "locales": own.iter().map(|o| o.locale.clone()).collect::<Vec<_>>(), "default_locale": portal.default_locale,
           "variables": TemplateVars::NAMES})
}

pub async fn get(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Read)?;
    let kind = kind_of(req)?;
    let portal = portal_of(app, &caller, req).await?;
    let locale = locale_of(req, &portal)?;
    let (chosen, own) = current(app, &caller, &portal, kind, &locale).await?;
    Ok(respond(StatusCode::OK, &view(&portal, kind, &locale, &chosen, &own)))
}

pub async fn put(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req, Scope::Admin)?;
    let kind = kind_of(req)?;
    let body: TemplateBody = json_body(req, false)?;
    let portal = portal_of(app, &caller, req).await?;
    let locale = locale_of(req, &portal)?;
    let language = BuiltIn::for_chain(std::slice::from_ref(&locale));
    let sms = body.sms.clone().unwrap_or_else(|| built_in(kind, language).sms);
    let template = EmailTemplate { subject: body.subject.clone(), text: body.text.clone(), html: body.html.clone(), sms };
    check(&template)?;
    let mut own = app.store.templates_of(&caller.tenant_id, &portal.portal_id, kind, &portal.default_locale).await?;
    if own.len() >= MAX_LOCALES_PER_KIND && !own.iter().any(|o| o.locale == locale) {
        return Err(ApiError::validation("/locale", format!("a portal may have its own {kind} template in at most {MAX_LOCALES_PER_KIND} locales", kind = kind.as_str())));
    }
    let saved = OwnTemplate { locale: locale.clone(), subject: body.subject, text: body.text, html: body.html, sms: body.sms };
    let now = (app.clock)();
    let detail = BTreeMap::from([("kind".to_owned(), kind.as_str().to_owned()), ("locale".to_owned(), locale.to_string())]);
    let audit = AuditItem::tenant(&caller.tenant_id, Some(&portal.portal_id), &caller.sub, "template_change", now, detail);
    app.store.put_template(&caller.tenant_id, &portal.portal_id, kind, &saved, &audit, now).await.map_err(|e| {
        match e.downcast_ref::<TxError>() {
            // Another save of the same template at the same moment: nothing of this one was written.
            Some(cancelled @ TxError::Cancelled(_)) => {
                tracing::info!(error = %cancelled, "template save cancelled");
                ApiError::Conflict("the template was saved by another request at the same moment; try again".into())
            }
            _ => ApiError::from(e),
        }
    })?;
    own.retain(|o| o.locale != locale);
    own.push(saved);
    let chosen = Chosen { template, locale: locale.clone(), source: Source::Portal };
    Ok(respond(StatusCode::OK, &view(&portal, kind, &locale, &chosen, &own)))
}

pub async fn preview(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    // Admin, as saving is: a preview renders whatever it is given.
    let caller = caller(req, Scope::Admin)?;
    let kind = kind_of(req)?;
    let body: PreviewBody = json_body(req, true)?;
    let portal = portal_of(app, &caller, req).await?;
    let locale = locale_of(req, &portal)?;
    let (chosen, _) = current(app, &caller, &portal, kind, &locale).await?;
    let mut template = chosen.template;
    template.subject = body.subject.unwrap_or(template.subject);
    template.text = body.text.unwrap_or(template.text);
    template.html = body.html.unwrap_or(template.html);
    template.sms = body.sms.unwrap_or(template.sms);
    check(&template)?;
    let mut vars = TemplateVars::sample().to_map();
    for (name, value) in body.vars {
        if !vars.contains_key(&name) {
            return Err(ApiError::validation(&format!("/vars/{name}"), format!("unknown variable `{name}`")));
        }
        vars.insert(name, value);
    }
    let vars = TemplateVars::from_map(&vars);
    let rendered = render(&template, &vars).map_err(|e| ApiError::validation(&format!("/{}", e.part), e.to_string()))?;
    let sms = render_sms(&template, &vars).map_err(|e| ApiError::validation(&format!("/{}", e.part), e.to_string()))?;
    let info = sms_info(&sms);
    Ok(respond(
        StatusCode::OK,
        &json!({"locale": chosen.locale, "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
                "sms": {"text": sms, "length": info.length, "segments": info.segments, "encoding": info.encoding}}),
    ))
}
