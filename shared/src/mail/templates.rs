//! Email templates (minijinja) and the built-in default for each kind.
//!
//! Templates see a fixed set of variables ([`TemplateVars`]); an unknown one
//! is an error, not an empty string. HTML bodies are auto-escaped, so a
//! contact named `<script>` arrives as text. A subject never carries a line
//! break (it would let content inject headers).

use crate::domain::EmailKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeMap;

/// The variables every template may use. All are strings; absent ones are empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateVars {
    pub contact_name: String,
    pub portal_name: String,
    pub tenant_name: String,
    pub code: String,
    pub link: String,
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
            code: get("code"),
            link: get("link"),
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

/// The built-in template for a kind; a portal's own template replaces it for that portal.
pub fn default_template(kind: EmailKind) -> EmailTemplate {
    let (subject, text, html) = match kind {
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
        ),
        EmailKind::Deactivation => (
            "Your {{ portal_name }} access has ended",
            "Hello {{ contact_name }},\n\n\
             {{ tenant_name }} has ended your access to {{ portal_name }}.\n\
             If you think this is a mistake, please contact {{ tenant_name }}.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>{{ tenant_name }} has ended your access to {{ portal_name }}.</p>\n\
             <p>If you think this is a mistake, please contact {{ tenant_name }}.</p>\n",
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
        ),
        EmailKind::AccountAdded => (
            "A new account can open your {{ portal_name }} access",
            "Hello {{ contact_name }},\n\n\
             An account for {{ account_email }} was just added to your access to {{ portal_name }} from {{ tenant_name }}.\n\
             If you did not expect this, please contact {{ tenant_name }} now.\n",
            "<p>Hello {{ contact_name }},</p>\n\
             <p>An account for {{ account_email }} was just added to your access to {{ portal_name }} from {{ tenant_name }}.</p>\n\
             <p>If you did not expect this, please contact {{ tenant_name }} now.</p>\n",
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
        ),
    };
    EmailTemplate { subject: subject.into(), text: text.into(), html: html.into() }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

const PARTS: [(&str, &str); 3] = [("subject", "subject.txt"), ("text", "body.txt"), ("html", "body.html")];

/// Renders a template with the given variables.
pub fn render(template: &EmailTemplate, vars: &TemplateVars) -> Result<RenderedEmail, TemplateError> {
    let env = environment();
    let one = |part: &'static str, name: &str, source: &str| {
        env.render_named_str(name, source, vars).map_err(|source| TemplateError { part, source })
    };
    let subject = one(PARTS[0].0, PARTS[0].1, &template.subject)?;
    Ok(RenderedEmail {
        subject: subject.replace(['\r', '\n'], " ").trim().to_owned(),
        text: one(PARTS[1].0, PARTS[1].1, &template.text)?,
        html: one(PARTS[2].0, PARTS[2].1, &template.html)?,
    })
}

/// Why a template was refused at save: which part, which line, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateProblem {
    pub part: &'static str,
    pub line: Option<usize>,
    pub detail: String,
}

/// minijinja's global functions, which templates may call.
const BUILTINS: [&str; 4] = ["range", "dict", "namespace", "debug"];

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
    let sources = [&template.subject, &template.text, &template.html];
    for ((part, name), source) in PARTS.into_iter().zip(sources) {
        if source.len() > MAX_PART_BYTES {
            return Err(TemplateProblem { part, line: None, detail: format!("longer than {MAX_PART_BYTES} bytes") });
        }
        let parsed = env
            .template_from_named_str(name, source)
            .map_err(|e| TemplateProblem { part, line: e.line(), detail: e.to_string() })?;
        let mut unknown: Vec<String> = parsed
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !TemplateVars::NAMES.contains(&v.as_str()) && !BUILTINS.contains(&v.as_str()))
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
        if let Err(e) = parsed.render(TemplateVars::sample()) {
            return Err(TemplateProblem { part, line: e.line(), detail: e.to_string() });
        }
    }
    Ok(())
}

impl TemplateVars {
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
        let t = EmailTemplate { subject: "{{ nope }}".into(), text: String::new(), html: String::new() };
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
    fn every_kind_has_a_valid_default() {
        for kind in EmailKind::ALL {
            assert_eq!(validate(&default_template(kind)), Ok(()), "{kind:?}");
        }
    }

    #[test]
    fn templates_with_errors_are_refused_with_the_line() {
        let syntax = EmailTemplate { subject: "Hi".into(), text: "line one\n{% if %}\n".into(), html: String::new() };
        let p = validate(&syntax).unwrap_err();
        assert_eq!((p.part, p.line), ("text", Some(2)));
        let unknown = EmailTemplate { subject: "Hi".into(), text: String::new(), html: "<p>\n{{ password }}</p>".into() };
        let p = validate(&unknown).unwrap_err();
        assert_eq!((p.part, p.line), ("html", Some(2)));
        assert!(p.detail.contains("password"));
        let two_lines = EmailTemplate { subject: "Hi\nBcc: x".into(), text: String::new(), html: String::new() };
        assert_eq!(validate(&two_lines).unwrap_err().part, "subject");
    }

    #[test]
    fn vars_round_trip_through_the_stored_map() {
        let v = vars();
        let back = TemplateVars::from_map(&v.to_map());
        assert_eq!(back.code, v.code);
        assert_eq!(v.to_map().len(), TemplateVars::NAMES.len());
    }
}
