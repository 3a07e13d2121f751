//! Email templates (minijinja) and the built-in default for each kind.
//!
//! Templates see a fixed set of variables ([`TemplateVars`]); an unknown one
//! is an error, not an empty string. HTML bodies are auto-escaped, so a
//! contact named `<script>` arrives as text. A subject never carries a line
//! break (it would let content inject headers).
//!
//! Rendering is bounded, at save, preview and send alike. At save a template
//! is read with minijinja's own parser and refused unless every value it
//! can build stays small for the longest inputs a contact may have
//! ([`super::bounds`]: no `set`, macros, includes, `*` or method calls;
//! filters from [`FILTERS`]; the one function `range` over written numbers).
//! The renderer's environment holds only those filters, tests and that
//! function (`Environment::empty()`), so what the check refuses does not
//! exist at send either. Each part has an instruction budget ([`RENDER_FUEL`],
//! minijinja's fuel) and at most [`MAX_RENDERED_BYTES`] of output. Fuel is
//! the time limit: it counts instructions, so a render stops after the same
//! work whatever the machine. A template over budget is refused at save; at
//! send it fails only its own email.

use crate::domain::channel::MAX_SMS_SEGMENTS;
use crate::domain::email::OwnTemplate;
use crate::domain::locale::{self, BuiltIn, Locale};
use crate::domain::portal::MAX_NAME_LEN;
use crate::domain::web_url::MAX_URL_LEN;
use crate::domain::EmailKind;
use super::bounds;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use crate::domain::redacted::Redacted;
use std::collections::BTreeMap;

/// The variables every template may use. All are strings; absent ones are empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateVars {
    pub contact_name: String,
    pub portal_name: String,
    pub tenant_name: String,
    /// The pickup code and the link carry the secret: never printed (`Redacted`).
    pub code: Redacted<String>,
    pub link: Redacted<String>,
    pub claim_url: String,
    pub expires_at: String,
    /// The address an account was bound to (`account_added`; empty elsewhere).
    pub account_email: String,
}

impl TemplateVars {
    pub const NAMES: [&'static str; 8] =
        ["contact_name", "portal_name", "tenant_name", "code", "link", "claim_url", "expires_at", "account_email"];

    pub fn to_map(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).expect("strings serialise");
        serde_json::from_value(value).expect("a map of strings")
    }

    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        Self {
            contact_name: get("contact_name"),
            portal_name: get("portal_name"),
            tenant_name: get("tenant_name"),
            code: get("code").into(),
            link: get("link").into(),
            claim_url: get("claim_url"),
            expires_at: get("expires_at"),
            account_email: get("account_email"),
        }
    }
}

pub use crate::domain::email::{EmailTemplate, RenderedEmail};

#[derive(Debug, thiserror::Error)]
#[error("template {part}: {source}")]
pub struct TemplateError {
    pub part: &'static str,
    #[source]
    pub source: minijinja::Error,
}

/// The built-in template for a kind in English; a portal's own template replaces it for that portal.
pub fn default_template(kind: EmailKind) -> EmailTemplate {
    built_in(kind, BuiltIn::English)
}

/// The built-in template for a kind in one of the languages we ship (`domain::locale`).
pub fn built_in(kind: EmailKind, language: BuiltIn) -> EmailTemplate {
    let (subject, text, html, sms) = match language {
        BuiltIn::English => english(kind),
        BuiltIn::Spanish => spanish(kind),
    };
    EmailTemplate { subject: subject.into(), text: text.into(), html: html.into(), sms: sms.into() }
}

type Parts = (&'static str, &'static str, &'static str, &'static str);

fn english(kind: EmailKind) -> Parts {
    match kind {
        EmailKind::PickupCode => (
            "Your {{ portal_name }} activation code",
            "Hello {{ contact_name }},\n\n\
             {{ tenant_name }} has invited you to {{ portal_name }}.\n\n\
             Your pickup/activation code is: {{ code }}\n\n\
             Go to {{ claim_url }}, enter the code and create your account.\n\
             The code can be used once and expires at {{ expires_at }}.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>{{ tenant_name }} has invited you to {{ portal_name }}.</p>\n\
             <p>Your pickup/activation code is: <strong>{{ code }}</strong></p>\n\
             <p>Go to <a href=\"{{ claim_url }}\">{{ claim_url }}</a>, enter the code and create your account.\n\
             The code can be used once and expires at {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: your {{ portal_name }} activation code is {{ code }}. Enter it at {{ claim_url }} before {{ expires_at }}.",
        ),
        EmailKind::ActivationLink => (
            "Activate your {{ portal_name }} account",
            "Hello {{ contact_name }},\n\n\
             {{ tenant_name }} has given you access to {{ portal_name }}.\n\
             Open this link to create your account:\n\n{{ link }}\n\n\
             The link can be used once and expires at {{ expires_at }}.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>{{ tenant_name }} has given you access to {{ portal_name }}.</p>\n\
             <p><a href=\"{{ link }}\">Create your account</a></p>\n\
             <p>The link can be used once and expires at {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: create your {{ portal_name }} account: {{ link }} (one use, until {{ expires_at }})",
        ),
        EmailKind::Reactivation => (
            "Your {{ portal_name }} access has been enabled",
            "Hello {{ contact_name }},\n\n\
             {{ tenant_name }} has enabled your access to {{ portal_name }} again.\n\
             Open this link to create your account:\n\n{{ link }}\n\n\
             The link can be used once and expires at {{ expires_at }}.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>{{ tenant_name }} has enabled your access to {{ portal_name }} again.</p>\n\
             <p><a href=\"{{ link }}\">Create your account</a></p>\n\
             <p>The link can be used once and expires at {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: your {{ portal_name }} access is enabled again. Create your account: {{ link }}",
        ),
        EmailKind::Deactivation => (
            "Your {{ portal_name }} access has ended",
            "Hello {{ contact_name }},\n\n\
             {{ tenant_name }} has ended your access to {{ portal_name }}.\n\
             If you think this is a mistake, please contact {{ tenant_name }}.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>{{ tenant_name }} has ended your access to {{ portal_name }}.</p>\n\
             <p>If you think this is a mistake, please contact {{ tenant_name }}.</p>\n",
            "{{ tenant_name }}: your access to {{ portal_name }} has ended. If this is a mistake, please contact us.",
        ),
        EmailKind::Reminder => (
            "Reminder: your {{ portal_name }} invitation expires soon",
            "Hello {{ contact_name }},\n\n\
             Your invitation to {{ portal_name }} from {{ tenant_name }} expires at {{ expires_at }}.\n\
             {% if code %}Your pickup/activation code is: {{ code }}\n\
             Go to {{ claim_url }}, enter the code and create your account.\n\
             {% else %}Use the link in the email we sent you earlier to create your account.\n{% endif %}",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>Your invitation to {{ portal_name }} from {{ tenant_name }} expires at {{ expires_at }}.</p>\n\
             {% if code %}<p>Your pickup/activation code is: <strong>{{ code }}</strong></p>\n\
             <p>Go to <a href=\"{{ claim_url }}\">{{ claim_url }}</a>, enter the code and create your account.</p>\n\
             {% else %}<p>Use the link in the email we sent you earlier to create your account.</p>\n{% endif %}",
            "{{ tenant_name }}: your {{ portal_name }} invitation expires at {{ expires_at }}.{% if code %} Code: {{ code }} at {{ claim_url }}{% endif %}",
        ),
        EmailKind::AccountAdded => (
            "A new account can open your {{ portal_name }} access",
            "Hello {{ contact_name }},\n\n\
             An account for {{ account_email }} was just added to your access to {{ portal_name }} from {{ tenant_name }}.\n\
             If you did not expect this, please contact {{ tenant_name }} now.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>An account for {{ account_email }} was just added to your access to {{ portal_name }} from {{ tenant_name }}.</p>\n\
             <p>If you did not expect this, please contact {{ tenant_name }} now.</p>\n",
            "{{ tenant_name }}: an account for {{ account_email }} was added to your {{ portal_name }} access. Not you? Contact us now.",
        ),
        // To whatever address was typed at claim: nothing of the chart (not even the name).
        EmailKind::ClaimConfirmation => (
            "Confirm your email for {{ portal_name }}",
            "Someone (we hope you) used an activation code for {{ portal_name }} from {{ tenant_name }}\n\
             and asked for the account to be created for this email address.\n\n\
             Open this link to confirm and finish:\n\n{{ link }}\n\n\
             The link can be used once and expires at {{ expires_at }}. If this was not you, ignore this email.\n",
            "<p>Someone (we hope you) used an activation code for {{ portal_name }} from {{ tenant_name }}\n\
             and asked for the account to be created for this email address.</p>\n\
             <p><a href=\"{{ link }}\">Confirm and finish</a></p>\n\
             <p>The link can be used once and expires at {{ expires_at }}. If this was not you, ignore this email.</p>\n",
            // Never sent (the confirmation goes by email only, `domain::channel`); kept so every kind has every part.
            "{{ portal_name }}: confirm your email: {{ link }}",
        ),
    }
}

/// The Spanish texts leave out the accents GSM-7 lacks (á, í, ó, ú): with
/// them a text is sent as UCS-2, in 70-character segments, and costs two to
/// three times as much. The emails keep every accent.
fn spanish(kind: EmailKind) -> Parts {
    match kind {
        EmailKind::PickupCode => (
            "Su código de activación de {{ portal_name }}",
            "Hola {{ contact_name }}:\n\n\
             {{ tenant_name }} le ha invitado a {{ portal_name }}.\n\n\
             Su código de activación es: {{ code }}\n\n\
             Vaya a {{ claim_url }}, introduzca el código y cree su cuenta.\n\
             El código se puede usar una sola vez y caduca el {{ expires_at }}.\n",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>{{ tenant_name }} le ha invitado a {{ portal_name }}.</p>\n\
             <p>Su código de activación es: <strong>{{ code }}</strong></p>\n\
             <p>Vaya a <a href=\"{{ claim_url }}\">{{ claim_url }}</a>, introduzca el código y cree su cuenta.\n\
             El código se puede usar una sola vez y caduca el {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: su codigo de activacion de {{ portal_name }} es {{ code }}. Introduzcalo en {{ claim_url }} antes del {{ expires_at }}.",
        ),
        EmailKind::ActivationLink => (
            "Active su cuenta de {{ portal_name }}",
            "Hola {{ contact_name }}:\n\n\
             {{ tenant_name }} le ha dado acceso a {{ portal_name }}.\n\
             Abra este enlace para crear su cuenta:\n\n{{ link }}\n\n\
             El enlace se puede usar una sola vez y caduca el {{ expires_at }}.\n",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>{{ tenant_name }} le ha dado acceso a {{ portal_name }}.</p>\n\
             <p><a href=\"{{ link }}\">Cree su cuenta</a></p>\n\
             <p>El enlace se puede usar una sola vez y caduca el {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: cree su cuenta de {{ portal_name }}: {{ link }} (un solo uso, hasta el {{ expires_at }})",
        ),
        EmailKind::Reactivation => (
            "Su acceso a {{ portal_name }} se ha habilitado",
            "Hola {{ contact_name }}:\n\n\
             {{ tenant_name }} ha vuelto a habilitar su acceso a {{ portal_name }}.\n\
             Abra este enlace para crear su cuenta:\n\n{{ link }}\n\n\
             El enlace se puede usar una sola vez y caduca el {{ expires_at }}.\n",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>{{ tenant_name }} ha vuelto a habilitar su acceso a {{ portal_name }}.</p>\n\
             <p><a href=\"{{ link }}\">Cree su cuenta</a></p>\n\
             <p>El enlace se puede usar una sola vez y caduca el {{ expires_at }}.</p>\n",
            "{{ tenant_name }}: su acceso a {{ portal_name }} se ha habilitado de nuevo. Cree su cuenta: {{ link }}",
        ),
        EmailKind::Deactivation => (
            "Su acceso a {{ portal_name }} ha terminado",
            "Hola {{ contact_name }}:\n\n\
             {{ tenant_name }} ha terminado su acceso a {{ portal_name }}.\n\
             Si cree que es un error, póngase en contacto con {{ tenant_name }}.\n",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>{{ tenant_name }} ha terminado su acceso a {{ portal_name }}.</p>\n\
             <p>Si cree que es un error, póngase en contacto con {{ tenant_name }}.</p>\n",
            "{{ tenant_name }}: su acceso a {{ portal_name }} ha terminado. Si es un error, contacte con nosotros.",
        ),
        EmailKind::Reminder => (
            "Recordatorio: su invitación a {{ portal_name }} caduca pronto",
            "Hola {{ contact_name }}:\n\n\
             Su invitación a {{ portal_name }} de {{ tenant_name }} caduca el {{ expires_at }}.\n\
             {% if code %}Su código de activación es: {{ code }}\n\
             Vaya a {{ claim_url }}, introduzca el código y cree su cuenta.\n\
             {% else %}Use el enlace del correo que le enviamos para crear su cuenta.\n{% endif %}",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>Su invitación a {{ portal_name }} de {{ tenant_name }} caduca el {{ expires_at }}.</p>\n\
             {% if code %}<p>Su código de activación es: <strong>{{ code }}</strong></p>\n\
             <p>Vaya a <a href=\"{{ claim_url }}\">{{ claim_url }}</a>, introduzca el código y cree su cuenta.</p>\n\
             {% else %}<p>Use el enlace del correo que le enviamos para crear su cuenta.</p>\n{% endif %}",
            "{{ tenant_name }}: su invitacion a {{ portal_name }} caduca el {{ expires_at }}.{% if code %} Codigo: {{ code }} en {{ claim_url }}{% endif %}",
        ),
        EmailKind::AccountAdded => (
            "Una cuenta nueva puede abrir su acceso a {{ portal_name }}",
            "Hola {{ contact_name }}:\n\n\
             Se acaba de añadir una cuenta para {{ account_email }} a su acceso a {{ portal_name }} de {{ tenant_name }}.\n\
             Si no lo esperaba, póngase en contacto con {{ tenant_name }} ahora.\n",
            "<p>Hola {{ contact_name }}:</p>\n\
             <p>Se acaba de añadir una cuenta para {{ account_email }} a su acceso a {{ portal_name }} de {{ tenant_name }}.</p>\n\
             <p>Si no lo esperaba, póngase en contacto con {{ tenant_name }} ahora.</p>\n",
            "{{ tenant_name }}: se ha añadido una cuenta para {{ account_email }} a su acceso a {{ portal_name }}. ¿No fue usted? Contacte con nosotros.",
        ),
        EmailKind::ClaimConfirmation => (
            "Confirme su correo para {{ portal_name }}",
            "Alguien (esperamos que usted) usó un código de activación de {{ portal_name }} de {{ tenant_name }}\n\
             y pidió crear la cuenta para esta dirección de correo.\n\n\
             Abra este enlace para confirmar y terminar:\n\n{{ link }}\n\n\
             El enlace se puede usar una sola vez y caduca el {{ expires_at }}. Si no fue usted, ignore este correo.\n",
            "<p>Alguien (esperamos que usted) usó un código de activación de {{ portal_name }} de {{ tenant_name }}\n\
             y pidió crear la cuenta para esta dirección de correo.</p>\n\
             <p><a href=\"{{ link }}\">Confirmar y terminar</a></p>\n\
             <p>El enlace se puede usar una sola vez y caduca el {{ expires_at }}. Si no fue usted, ignore este correo.</p>\n",
            "{{ portal_name }}: confirme su correo: {{ link }}",
        ),
    }
}

/// Most locales a portal may have its own template of one kind in.
pub const MAX_LOCALES_PER_KIND: usize = 20;

/// Where the template in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The portal's own.
    Portal,
    /// The built-in one.
    Default,
}

/// The template a message gets, and its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub template: EmailTemplate,
    pub locale: Locale,
    pub source: Source,
}

/// The template in force for a chain of locales (`domain::locale::chain`):
/// the portal's own for the first locale it has one for, else the built-in
/// one in the first language we ship. An own template without a text
/// message takes the built-in text of its language.
pub fn choose(kind: EmailKind, chain: &[Locale], own: &[OwnTemplate]) -> Chosen {
    match locale::choose(chain, |l| own.iter().find(|o| &o.locale == l)) {
        Some((locale, o)) => {
            let sms = o.sms.clone().unwrap_or_else(|| built_in(kind, BuiltIn::for_chain(std::slice::from_ref(&locale))).sms);
            Chosen { template: EmailTemplate { subject: o.subject.clone(), text: o.text.clone(), html: o.html.clone(), sms }, locale, source: Source::Portal }
        }
        None => {
            let language = BuiltIn::for_chain(chain);
            Chosen { template: built_in(kind, language), locale: language.locale(), source: Source::Default }
        }
    }
}

/// Instructions one part's render may execute.
pub const RENDER_FUEL: u64 = 50_000;
/// Most bytes one rendered part may hold.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;
pub use super::bounds::FILTERS;

/// A writer that refuses to grow past [`MAX_RENDERED_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other(format!("the rendered text is longer than {MAX_RENDERED_BYTES} bytes")));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders one part within the budget.
fn render_part(env: &Environment<'_>, name: &str, source: &str, vars: &TemplateVars) -> Result<String, minijinja::Error> {
    let template = env.template_from_named_str(name, source)?;
    let mut out = Capped(Vec::new());
    #[allow(deprecated)] // render_captured_to needs a minijinja Output; this writer is the cap.
    template.render_to_write(vars, &mut out).map_err(|e| match e.kind() {
        minijinja::ErrorKind::WriteFailure => {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("the rendered text is longer than {MAX_RENDERED_BYTES} bytes"))
        }
        _ => e,
    })?;
    // What minijinja writes is text: no copy (the lossy reading is never taken).
    Ok(String::from_utf8(out.0).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The renderer: nothing but what [`bounds`] allows (no other filter, test or function exists in it).
fn environment() -> Environment<'static> {
    use minijinja::{filters, functions, tests};
    let mut env = Environment::empty();
    env.set_fuel(Some(RENDER_FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.add_filter("upper", filters::upper);
    env.add_filter("lower", filters::lower);
    env.add_filter("title", filters::title);
    env.add_filter("capitalize", filters::capitalize);
    env.add_filter("trim", filters::trim);
    env.add_filter("default", filters::default);
    env.add_filter("d", filters::default);
    env.add_filter("escape", filters::escape);
    env.add_filter("e", filters::escape);
    env.add_filter("length", filters::length);
    env.add_filter("count", filters::length);
    env.add_filter("first", filters::first);
    env.add_filter("last", filters::last);
    env.add_test("defined", tests::is_defined);
    env.add_test("undefined", tests::is_undefined);
    env.add_test("none", tests::is_none);
    env.add_test("odd", tests::is_odd);
    env.add_test("even", tests::is_even);
    env.add_test("divisibleby", tests::is_divisibleby);
    env.add_test("number", tests::is_number);
    env.add_test("string", tests::is_string);
    env.add_test("true", tests::is_true);
    env.add_test("false", tests::is_false);
    env.add_test("startingwith", tests::is_startingwith);
    env.add_test("endingwith", tests::is_endingwith);
    env.add_test("eq", tests::is_eq);
    env.add_test("ne", tests::is_ne);
    env.add_function("range", functions::range);
    env
}

const PARTS: [(&str, &str); 3] = [("subject", "subject.txt"), ("text", "body.txt"), ("html", "body.html")];

/// Renders a template with the given variables.
pub fn render(template: &EmailTemplate, vars: &TemplateVars) -> Result<RenderedEmail, TemplateError> {
    let env = environment();
    let one = |part: &'static str, name: &str, source: &str| render_part(&env, name, source, vars).map_err(|source| TemplateError { part, source });
    let subject = one(PARTS[0].0, PARTS[0].1, &template.subject)?;
    Ok(RenderedEmail {
        subject: subject.replace(['\r', '\n'], " ").trim().to_owned(),
        text: one(PARTS[1].0, PARTS[1].1, &template.text)?,
        html: one(PARTS[2].0, PARTS[2].1, &template.html)?,
    })
}

/// Renders a template's text message (plain text, no escaping).
pub fn render_sms(template: &EmailTemplate, vars: &TemplateVars) -> Result<String, TemplateError> {
    let env = environment();
    render_part(&env, "sms.txt", &template.sms, vars).map(|t| t.trim().to_owned()).map_err(|source| TemplateError { part: "sms", source })
}

/// Why a template was refused at save: which part, which line, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateProblem {
    pub part: &'static str,
    pub line: Option<usize>,
    pub detail: String,
}


/// The most bytes a variable can hold at send ([`TemplateVars::longest`]),
/// with room for what the stored copy shows in the secrets' place.
pub fn longest_bytes(name: &str) -> Option<usize> {
    // Built once: the check asks for every variable it meets.
    static LONGEST: std::sync::LazyLock<BTreeMap<String, usize>> =
        std::sync::LazyLock::new(|| TemplateVars::longest().to_map().into_iter().map(|(k, v)| (k, v.len().max(64))).collect());
    LONGEST.get(name).copied()
}

/// Longest template part we store.
pub const MAX_PART_BYTES: usize = 20 * 1024;

/// Checks a template before it is saved: syntax, only the documented
/// variables, a one-line subject, a sane size.
pub fn validate(template: &EmailTemplate) -> Result<(), TemplateProblem> {
    if template.subject.contains(['\r', '\n']) {
        return Err(TemplateProblem { part: "subject", line: Some(1), detail: "the subject must be a single line".into() });
    }
    if template.subject.trim().is_empty() {
        return Err(TemplateProblem { part: "subject", line: None, detail: "the subject must not be empty".into() });
    }
    let env = environment();
    let sources = [&template.subject, &template.text, &template.html, &template.sms];
    for ((part, name), source) in PARTS.into_iter().chain([("sms", "sms.txt")]).zip(sources) {
        if source.len() > MAX_PART_BYTES {
            return Err(TemplateProblem { part, line: None, detail: format!("longer than {MAX_PART_BYTES} bytes") });
        }
        bounds::check(source, &longest_bytes).map_err(|r| TemplateProblem { part, line: r.line, detail: r.detail })?;
        let parsed = env
            .template_from_named_str(name, source)
            .map_err(|e| TemplateProblem { part, line: e.line(), detail: e.to_string() })?;
        let mut unknown: Vec<String> = parsed
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !TemplateVars::NAMES.contains(&v.as_str()) && !bounds::FUNCTIONS.contains(&v.as_str()))
            .collect();
        unknown.sort();
        if let Some(var) = unknown.first() {
            let line = source.lines().position(|l| l.contains(var.as_str())).map(|i| i + 1);
            return Err(TemplateProblem {
                part,
                line,
                detail: format!("unknown variable `{var}`; templates may use {}", TemplateVars::NAMES.join(", ")),
            });
        }
        if part == "sms" {
            if let Ok(text) = render_part(&env, name, source, &TemplateVars::sample()) {
                let info = crate::domain::channel::sms_info(text.trim());
                if info.segments > MAX_SMS_SEGMENTS {
                    return Err(TemplateProblem {
                        part,
                        line: None,
                        detail: format!("the text message takes {} segments with sample values; at most {MAX_SMS_SEGMENTS}", info.segments),
                    });
                }
            }
        }
        // Within the budget for the sample, and for the longest values a contact may have.
        for vars in [TemplateVars::sample(), TemplateVars::longest()] {
            if let Err(e) = render_part(&env, name, source, &vars) {
                return Err(TemplateProblem { part, line: e.line(), detail: e.to_string() });
            }
        }
    }
    Ok(())
}

impl TemplateVars {
    /// Values as long as the service lets them be: names of 200 characters
    /// of four bytes each, URLs of 2048 bytes, addresses of 254 characters.
    pub fn longest() -> Self {
        let wide = |n: usize| "\u{1D4B2}".repeat(n);
        let url = |path: &str| format!("https://{}{path}", "w".repeat(MAX_URL_LEN - "https://".len() - path.len()));
        Self {
            contact_name: wide(200),
            portal_name: wide(MAX_NAME_LEN),
            tenant_name: wide(MAX_NAME_LEN),
            code: "7K3QD-M9XPT".into(),
            link: format!("{}?token={}", url("/claim"), "w".repeat(43)).into(),
            claim_url: url("/claim"),
            expires_at: "2026-12-31T12:00:00.000Z".into(),
            account_email: format!("{}@example.net", wide(242)),
        }
    }

    /// Example values for previews and checks.
    pub fn sample() -> Self {
        Self {
            contact_name: "Ann Lee".into(),
            portal_name: "Example Portal".into(),
            tenant_name: "Example Clinic".into(),
            code: "7K3QD-M9XPT".into(),
            link: "https://portal.example.com/claim?token=EXAMPLE".into(),
            claim_url: "https://portal.example.com/claim".into(),
            expires_at: "2026-12-31T12:00:00.000Z".into(),
            account_email: "ann.lee@example.net".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            contact_name: "<script>alert(1)</script>".into(),
            portal_name: "Clinic Portal".into(),
            tenant_name: "Acme Clinic".into(),
            code: "ABCDE-FGHJK".into(),
            claim_url: "https://portal.example/claim".into(),
            expires_at: "2026-01-08T00:00:00.000Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_pickup_email_carries_the_code_and_escapes_html() {
        let email = render(&default_template(EmailKind::PickupCode), &vars()).unwrap();
        assert_eq!(email.subject, "Your Clinic Portal activation code");
        assert!(email.text.contains("ABCDE-FGHJK") && email.html.contains("ABCDE-FGHJK"));
        assert!(email.html.contains("&lt;script&gt;"), "{}", email.html);
        assert!(!email.html.contains("<script>"));
        assert!(email.text.contains("<script>"), "plain text is not HTML-escaped");
    }

    #[test]
    fn unknown_variables_are_errors_not_blanks() {
        let t = EmailTemplate { subject: "{{ nope }}".into(), text: String::new(), html: String::new(), sms: String::new() };
        assert_eq!(render(&t, &vars()).unwrap_err().part, "subject");
    }

    #[test]
    fn subjects_lose_line_breaks() {
        let mut v = vars();
        v.portal_name = "Evil\r\nBcc: x@example.org".into();
        let email = render(&default_template(EmailKind::PickupCode), &v).unwrap();
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
    }

    #[test]
    fn every_kind_has_a_valid_default_in_every_language() {
        for language in BuiltIn::ALL {
            for kind in EmailKind::ALL {
                assert_eq!(validate(&built_in(kind, language)), Ok(()), "{kind:?} {language:?}");
            }
        }
    }

    #[test]
    fn built_in_texts_fit_one_or_two_gsm7_segments() {
        use crate::domain::channel::{sms_info, SmsEncoding};
        for language in BuiltIn::ALL {
            for kind in EmailKind::ALL {
                let text = render_sms(&built_in(kind, language), &TemplateVars::sample()).unwrap();
                let info = sms_info(&text);
                assert_eq!(info.encoding, SmsEncoding::Gsm7, "{kind:?} {language:?}: {text}");
                assert!(info.segments <= 2, "{kind:?} {language:?}: {info:?} {text}");
            }
        }
        let es = render_sms(&built_in(EmailKind::PickupCode, BuiltIn::Spanish), &TemplateVars::sample()).unwrap();
        assert!(es.contains("7K3QD-M9XPT") && es.contains("codigo"), "{es}");
    }

    #[test]
    fn the_template_falls_back_locale_language_portal_default_built_in() {
        let own = |l: &str, subject: &str| OwnTemplate { locale: Locale::parse(l).unwrap(), subject: subject.into(), text: String::new(), html: String::new(), sms: None };
        let chain = |c: Option<&str>, d: &str| locale::chain(c.map(|c| Locale::parse(c).unwrap()).as_ref(), &Locale::parse(d).unwrap());
        let saved = [own("es-MX", "mx"), own("es", "es"), own("en", "en")];
        let pick = |c, d, saved: &[OwnTemplate]| {
            let chosen = choose(EmailKind::PickupCode, &chain(c, d), saved);
            (chosen.locale.to_string(), chosen.template.subject, chosen.source)
        };
        assert_eq!(pick(Some("es-MX"), "en", &saved), ("es-MX".into(), "mx".into(), Source::Portal));
        assert_eq!(pick(Some("es-AR"), "en", &saved), ("es".into(), "es".into(), Source::Portal));
        assert_eq!(pick(Some("fr"), "en", &saved), ("en".into(), "en".into(), Source::Portal));
        assert_eq!(pick(None, "en", &saved), ("en".into(), "en".into(), Source::Portal));
        // Nothing of the portal's: the built-in Spanish for Spanish, English for the rest.
        let es = pick(Some("es-AR"), "en", &[]);
        assert_eq!((es.0.as_str(), es.2), ("es", Source::Default));
        assert!(es.1.contains("Su código"), "{}", es.1);
        assert_eq!(pick(Some("fr"), "de", &[]).0, "en");
        // An own template without a text message takes its language's built-in one.
        let chosen = choose(EmailKind::PickupCode, &chain(Some("es"), "en"), &saved);
        assert_eq!(chosen.template.sms, built_in(EmailKind::PickupCode, BuiltIn::Spanish).sms);
    }

    #[test]
    fn a_long_text_message_is_refused_at_save() {
        let mut t = default_template(EmailKind::PickupCode);
        t.sms = "x".repeat(1600);
        assert_eq!(validate(&t).unwrap_err().part, "sms");
        t.sms = "{{ nope }}".into();
        assert!(validate(&t).unwrap_err().detail.contains("nope"));
    }

    #[test]
    fn templates_with_errors_are_refused_with_the_line() {
        let syntax = EmailTemplate { subject: "Hi".into(), text: "line one\n{% if %}\n".into(), html: String::new(), sms: String::new() };
        let p = validate(&syntax).unwrap_err();
        assert_eq!((p.part, p.line), ("text", Some(2)));
        let unknown = EmailTemplate { subject: "Hi".into(), text: String::new(), html: "<p>\n{{ password }}</p>".into(), sms: String::new() };
        let p = validate(&unknown).unwrap_err();
        assert_eq!((p.part, p.line), ("html", Some(2)));
        assert!(p.detail.contains("password"));
        let two_lines = EmailTemplate { subject: "Hi\nBcc: x".into(), text: String::new(), html: String::new(), sms: String::new() };
        assert_eq!(validate(&two_lines).unwrap_err().part, "subject");
    }

    #[test]
    fn template_bombs_are_refused_at_save_and_stopped_at_render() {
        let t = |text: &str| EmailTemplate { subject: "Hi".into(), text: text.into(), html: String::new(), sms: String::new() };
        // Nested loops: out of fuel (the sample render at save runs it).
        let loops = t("{% for i in range(100) %}{% for j in range(100) %}{% for k in range(100) %}x{% endfor %}{% endfor %}{% endfor %}");
        let p = validate(&loops).unwrap_err();
        assert!(p.detail.contains("fuel"), "{p:?}");
        let started = std::time::Instant::now();
        assert!(render(&loops, &TemplateVars::sample()).is_err());
        eprintln!("a fuel-exhausting render took {:?}", started.elapsed());
        // A bomb only for real contacts passes no check at save, but cannot stall a send.
        let hidden = EmailTemplate { subject: "Hi".into(), text: String::new(), html: String::new(), sms: String::new() };
        assert!(validate(&hidden).is_ok());
        for (bomb, why) in [
            ("{% set a = contact_name ~ contact_name %}", "set"),
            ("{{ 'x' * 100000000 }}", "*"),
            ("{{ range(100000)|join('xxxxxxxxxx') }}", "join"),
            ("{% macro m() %}{% endmacro %}", "macro"),
            ("{{ namespace(s='x') }}", "called"),
            ("{%- include 'other' %}", "include"),
        ] {
            let p = validate(&t(bomb)).unwrap_err();
            assert!(p.detail.contains(why), "{bomb}: {p:?}");
        }
        // Output over the cap fails the render.
        let wide = t("{% for i in range(2000) %}{{ contact_name }}{{ contact_name }}{{ contact_name }}{% endfor %}");
        let e = render(&wide, &TemplateVars::longest()).unwrap_err();
        assert!(e.to_string().contains("longer than") || e.to_string().contains("fuel"), "{e}");
        // What is allowed still works.
        let fine = t("{% if code %}{{ code|upper }}{% else %}{{ contact_name|default('friend')|title }}{% endif %} {{ '*' }} {{ 'a|b' }}");
        assert_eq!(validate(&fine), Ok(()));
    }

    fn text(body: &str) -> EmailTemplate {
        EmailTemplate { subject: "Hi".into(), text: body.into(), html: String::new(), sms: String::new() }
    }

    /// The attack of issue 32: a `"}}"` in the first tag hid eight `replace`
    /// filters from the hand lexer; the send built 200 MB.
    fn replace_bomb() -> String {
        let mut t = String::from("{{ \"}}\" }}{{ contact_name");
        for _ in 0..8 {
            t.push_str("|replace(\"o\", contact_name)");
        }
        t.push_str(" }}");
        t
    }

    #[test]
    fn the_checker_reads_tags_where_the_engine_does() {
        // Strings holding delimiters: the engine's parser sees one tag, then the next.
        for bomb in [
            replace_bomb(),
            "{{ \"%}\" }}{% set x = contact_name %}".to_owned(),
            "{{ '}}' ~ contact_name|replace('n', contact_name) }}".to_owned(),
            "{{ \"{#\" }}{{ contact_name|join(contact_name) }}{{ \"#}\" }}".to_owned(),
            // Whitespace control is part of the tag, not of its name.
            "{{- contact_name|replace('a', 'bb') -}}".to_owned(),
            "{%- set x = 1 -%}".to_owned(),
            "{%+ for c in contact_name recursive %}{{ c }}{% endfor %}".to_owned(),
        ] {
            let p = validate(&text(&bomb)).expect_err(&bomb);
            assert_eq!(p.part, "text");
            assert!(p.line.is_some(), "{bomb}: {p:?}");
        }
        // A comment and a raw block are text to the engine: what looks like a bomb inside them is harmless and stays.
        let comment = text("{# {{ contact_name|replace('a', contact_name) }} #}Hello {{ contact_name }}");
        assert_eq!(validate(&comment), Ok(()));
        assert_eq!(render(&comment, &vars()).unwrap().text, "Hello <script>alert(1)</script>");
        let raw = text("{% raw %}{{ contact_name|replace('a', 'b') }}{% endraw %}");
        assert_eq!(validate(&raw), Ok(()));
        assert_eq!(render(&raw, &vars()).unwrap().text, "{{ contact_name|replace('a', 'b') }}");
        assert_eq!(validate(&text("{{- contact_name|upper -}} {%- if code -%} {{ code }} {%- endif %}")), Ok(()));
    }

    #[test]
    fn nothing_that_multiplies_a_value_s_length_is_reachable() {
        for (bomb, why) in [
            ("{{ contact_name * 3 }}", "`*`"),
            ("{{ range(50)|join(contact_name) }}", "join"),
            ("{{ contact_name|replace('a', contact_name) }}", "replace"),
            ("{{ contact_name|indent(100) }}", "indent"),
            ("{% for i in range(100) %}{{ loop.cycle(contact_name, contact_name) }}{% endfor %}", "called"),
            ("{% for i in range(101) %}{{ i }}{% endfor %}", "range"),
            ("{% for i in range(contact_name|length) %}{{ i }}{% endfor %}", "range"),
            ("{% filter upper %}{{ contact_name }}{% endfilter %}", "filter"),
            ("{% with x = contact_name %}{{ x }}{% endwith %}", "with"),
            ("{% for a in range(2) %}{% for b in range(2) %}{% for c in range(2) %}{% for d in range(2) %}x{% endfor %}{% endfor %}{% endfor %}{% endfor %}", "deep"),
            // Operators that join add their operands' bounds: past the limit, refused before any render.
            ("{{ contact_name|upper|lower|upper|lower|upper|lower|upper }}", "bytes"),
            ("{{ [link, link, link] ~ [link, link, link] }}", "bytes"),
        ] {
            let p = validate(&text(bomb)).expect_err(bomb);
            assert!(p.detail.contains(why), "{bomb}: {p:?}");
        }
        let chain = format!("{{{{ {} }}}}", vec!["contact_name"; 50].join(" ~ "));
        assert!(validate(&text(&chain)).unwrap_err().detail.contains("bytes"));
        // Joining a few values, escaping a URL, loops over names: what templates do, allowed.
        for fine in [
            "{{ contact_name ~ ' (' ~ account_email ~ ')' }}",
            "{{ claim_url|e }} {{ link|upper }}",
            "{% for c in contact_name %}{% for i in range(3) %}{{ c|upper }}{{ loop.index }}{% endfor %}{% endfor %}",
            "{{ contact_name[:10]|title if contact_name|length > 10 else contact_name }}",
            "{% if code is defined and code is startingwith('7') %}{{ code }}{% endif %}",
        ] {
            assert_eq!(validate(&text(fine)), Ok(()), "{fine}");
        }
    }

    #[test]
    fn the_renderer_has_no_filter_the_checker_refuses() {
        // A template stored before the check (or past it) still cannot reach `replace` at send.
        let e = render(&text(&replace_bomb()), &TemplateVars::longest()).unwrap_err();
        assert!(e.to_string().contains("replace") || e.to_string().contains("unknown filter"), "{e}");
        for name in ["join", "indent", "replace", "safe"] {
            let e = render(&text(&format!("{{{{ contact_name|{name}('x') }}}}")), &vars()).unwrap_err();
            assert!(e.to_string().contains("unknown filter"), "{name}: {e}");
        }
        assert!(render(&text("{{ namespace() }}"), &vars()).is_err());
    }

    #[test]
    fn vars_round_trip_through_the_stored_map() {
        let v = vars();
        let back = TemplateVars::from_map(&v.to_map());
        assert_eq!(back.code, v.code);
        assert_eq!(v.to_map().len(), TemplateVars::NAMES.len());
    }
}
