//! Who is calling: the staff member and tenant the JWT authorizer vouched for.
//!
//! On AWS the HTTP API's JWT authorizer has already checked signature, issuer,
//! audience and expiry; the verified claims arrive as strings in the request
//! context. We read `sub`, `tenant_id` and `scope` (space-separated) from them.
//! Scopes nest: `portal:admin` ⊇ `portal:write` ⊇ `portal:read`.

use super::ids::TenantId;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Any GET.
    Read,
    /// Contact and code changes.
    Write,
    /// Portal settings.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "portal:read",
            Self::Write => "portal:write",
            Self::Admin => "portal:admin",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Read, Self::Write, Self::Admin].into_iter().find(|s| s.as_str() == raw)
    }
}

/// The authenticated staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: recorded as the actor of every change.
    pub sub: String,
    pub tenant_id: TenantId,
    /// The highest scope granted (scopes nest).
    pub scope: Option<Scope>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("this operation needs the {} scope", .0.as_str())]
    Forbidden(Scope),
}

impl Caller {
    /// Reads the caller from the authorizer's claims; 401 when `sub` or a valid `tenant_id` is missing.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, AuthError> {
        let sub = claims.get("sub").filter(|s| !s.is_empty()).ok_or(AuthError::Unauthenticated)?;
        let tenant_id = claims
            .get("tenant_id")
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or(AuthError::Unauthenticated)?;
        let scope = claims
            .get("scope")
            .map(|s| s.trim_matches(|c| c == '[' || c == ']'))
            .into_iter()
            .flat_map(|s| s.split([' ', ',']))
            .filter_map(Scope::parse)
            .max();
        Ok(Self { sub: sub.clone(), tenant_id, scope })
    }

    /// 403 unless the caller holds `needed` (or a scope above it).
    pub fn require(&self, needed: Scope) -> Result<(), AuthError> {
        match self.scope {
            Some(granted) if granted >= needed => Ok(()),
            _ => Err(AuthError::Forbidden(needed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_caller_needs_a_subject_and_a_tenant() {
        assert_eq!(Caller::from_claims(&claims(&[("tenant_id", "t1")])), Err(AuthError::Unauthenticated));
        assert_eq!(Caller::from_claims(&claims(&[("sub", "u1")])), Err(AuthError::Unauthenticated));
        assert_eq!(Caller::from_claims(&claims(&[("sub", "u1"), ("tenant_id", "bad#id")])), Err(AuthError::Unauthenticated));
        assert!(Caller::from_claims(&claims(&[("sub", "u1"), ("tenant_id", "t1")])).is_ok());
    }

    #[test]
    fn scopes_nest() {
        let reader = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t"), ("scope", "openid portal:read")])).unwrap();
        assert!(reader.require(Scope::Read).is_ok());
        assert_eq!(reader.require(Scope::Write), Err(AuthError::Forbidden(Scope::Write)));
        let admin = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t"), ("scope", "portal:admin")])).unwrap();
        assert!(admin.require(Scope::Write).is_ok() && admin.require(Scope::Admin).is_ok());
        let none = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t")])).unwrap();
        assert_eq!(none.require(Scope::Read), Err(AuthError::Forbidden(Scope::Read)));
    }

    #[test]
    fn array_shaped_scope_claims_are_read_too() {
        let c = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t"), ("scope", "[portal:read portal:write]")])).unwrap();
        assert_eq!(c.scope, Some(Scope::Write));
    }
}
