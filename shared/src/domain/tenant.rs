//! A tenant's profile: how the organisation is named to the people it gives
//! access to. Emails say "{display_name} has given you access" (the template
//! variable `tenant_name`) and the hosted pages carry it, instead of the
//! tenant's id (a patient would read "t3f9c… has given you access").

use super::email_address::EmailAddress;
use serde::Serialize;

/// At most this many characters in a display name.
pub const MAX_DISPLAY_NAME: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantProfile {
    pub display_name: String,
    pub support_email: Option<EmailAddress>,
    /// An https URL of the logo.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub brand_color: Option<String>,
}

/// One field that is not acceptable: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub field: &'static str,
    pub detail: String,
}

impl TenantProfile {
    /// A profile from what an admin sent; every field's problem at once.
    pub fn parse(display_name: &str, support_email: Option<&str>, logo_url: Option<&str>, brand_color: Option<&str>) -> Result<Self, Vec<ProfileError>> {
        let mut errors = Vec::new();
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
            errors.push(ProfileError { field: "display_name", detail: format!("display_name must be 1 to {MAX_DISPLAY_NAME} characters, without control characters") });
        }
        let support_email = match support_email.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => EmailAddress::parse(raw)
                .map_err(|e| errors.push(ProfileError { field: "support_email", detail: format!("support_email {e}") }))
                .ok(),
        };
        let logo_url = match logo_url.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            // https in every deployment: a logo is shown in emails, read far from the local stack.
            Some(url) if super::web_url::secure(url, super::web_url::Deployment::Aws) => Some(url.to_owned()),
            Some(_) => {
                errors.push(ProfileError { field: "logo_url", detail: "logo_url must be an absolute https URL".into() });
                None
            }
        };
        let brand_color = match brand_color.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(c) if c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit()) => Some(c.to_ascii_lowercase()),
            Some(_) => {
                errors.push(ProfileError { field: "brand_color", detail: "brand_color must be #rrggbb".into() });
                None
            }
        };
        if errors.is_empty() {
            Ok(Self { display_name: name.to_owned(), support_email, logo_url, brand_color })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_checked_field_by_field() {
        let p = TenantProfile::parse("  Riverside Clinic ", Some("help@riverside.example"), Some("https://cdn.example/logo.png"), Some("#0B5CAD")).unwrap();
        assert_eq!(p.display_name, "Riverside Clinic");
        assert_eq!(p.brand_color.as_deref(), Some("#0b5cad"));
        assert_eq!(TenantProfile::parse("Riverside", None, None, None).unwrap().logo_url, None);
        let errors = TenantProfile::parse(" ", Some("not-an-email"), Some("http://cdn.example/logo.png"), Some("blue")).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["display_name", "support_email", "logo_url", "brand_color"]);
        assert!(TenantProfile::parse(&"x".repeat(101), None, None, None).is_err());
        assert!(TenantProfile::parse("Line\nbreak", None, None, None).is_err());
    }
}
