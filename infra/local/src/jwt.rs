//! Staff tokens for the local stack: HS256 JWTs checked the way the HTTP
//! API's JWT authorizer checks them on AWS (signature, issuer, audience,
//! expiry), with the secret from `PORTAL_LOCAL_JWT_SECRET` (default
//! `local-dev-secret`). On AWS your identity provider issues real ones.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const DEFAULT_SECRET: &str = "local-dev-secret";

pub fn secret() -> String {
    std::env::var("PORTAL_LOCAL_JWT_SECRET").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_SECRET.into())
}

/// Issuer and audience the authorizer expects (template.yaml's parameter defaults).
#[derive(Debug, Clone)]
pub struct Expected {
    pub issuer: String,
    pub audience: String,
}

impl Expected {
    pub fn from_template(t: &crate::template::Template) -> Self {
        Self {
            issuer: t.parameter_default("JwtIssuer").unwrap_or_default(),
            audience: t.parameter_default("JwtAudience").unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StaffClaims {
    sub: String,
    tenant_id: String,
    scope: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// A staff token valid for `ttl_seconds`.
pub fn mint(expected: &Expected, sub: &str, tenant_id: &str, scope: &str, ttl_seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = StaffClaims {
        sub: sub.into(),
        tenant_id: tenant_id.into(),
        scope: scope.into(),
        iss: expected.issuer.clone(),
        aud: expected.audience.clone(),
        iat: now,
        exp: now + ttl_seconds,
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret().as_bytes())).expect("HS256 signing")
}

/// Checks a bearer token; on success, the claims as the authorizer passes them on (all strings).
pub fn verify(expected: &Expected, token: &str) -> Option<HashMap<String, String>> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[&expected.issuer]);
    validation.set_audience(&[&expected.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = decode::<serde_json::Map<String, serde_json::Value>>(token, &DecodingKey::from_secret(secret().as_bytes()), &validation).ok()?;
    Some(
        data.claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Array(items) => format!(
                        "[{}]",
                        items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(" ")
                    ),
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        Expected { issuer: "https://auth.example.com/".into(), audience: "portal-access".into() }
    }

    #[test]
    fn minted_tokens_verify_and_carry_the_claims() {
        let token = mint(&expected(), "staff-1", "t1", "portal:read", 60);
        let claims = verify(&expected(), &token).unwrap();
        assert_eq!(claims["tenant_id"], "t1");
        assert_eq!(claims["scope"], "portal:read");
    }

    #[test]
    fn wrong_audience_expiry_or_signature_is_refused() {
        let token = mint(&expected(), "s", "t", "portal:read", 60);
        let other = Expected { audience: "other".into(), ..expected() };
        assert!(verify(&other, &token).is_none());
        assert!(verify(&expected(), &mint(&expected(), "s", "t", "portal:read", -120)).is_none());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(verify(&expected(), &tampered).is_none());
    }
}
