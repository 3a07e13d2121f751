//! Who is calling: the staff member and tenant the JWT authorizer vouched for.
//!
//! On AWS the HTTP API's JWT authorizer has already checked signature, issuer,
//! audience and expiry; the verified claims arrive as strings in the request
//! context. We read `sub`, `tenant_id` and `scope` (space-separated) from them.
//!
//! A caller holds a **set** of scopes, and each route asks for one
//! ([`Caller::require`]). The staff scopes nest, `portal:admin` ⊇
//! `portal:write` ⊇ `portal:read`, and each of them also reaches the login
//! check. `portal:access` is the portal's own: it reaches
//! `GET /v1/accounts/{email}/access` and nothing else ([`Scope::grants`]).

use super::ids::TenantId;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The portal's login check (`GET /v1/accounts/{email}/access`) only.
    Access,
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
            Self::Access => "portal:access",
            Self::Read => "portal:read",
            Self::Write => "portal:write",
            Self::Admin => "portal:admin",
        }
    }

    pub const ALL: [Self; 4] = [Self::Access, Self::Read, Self::Write, Self::Admin];

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether holding this scope is enough for a route that asks for `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        use Scope::*;
        match (self, needed) {
            (Access, Access) => true,
            (Access, _) => false,
            // The staff scopes nest, and every one of them reaches the login check.
            (Read | Write | Admin, Access) => true,
            (Read | Write | Admin, staff) => self >= staff,
        }
    }
}

/// The scopes a token carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    fn bit(s: Scope) -> u8 {
        1 << (s as u8)
    }

    pub fn with(self, s: Scope) -> Self {
        Self(self.0 | Self::bit(s))
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & Self::bit(s) != 0
    }

    /// Whether any scope held grants `needed`.
    pub fn grant(self, needed: Scope) -> bool {
        Scope::ALL.into_iter().any(|s| self.contains(s) && s.grants(needed))
    }

    /// The scopes held, in order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::default(), Self::with)
    }
}

/// The authenticated staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: recorded as the actor of every change.
    pub sub: String,
    pub tenant_id: TenantId,
    /// The scopes granted.
    pub scopes: Scopes,
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
        let scopes = claims
            .get("scope")
            .map(|s| s.trim_matches(|c| c == '[' || c == ']'))
            .into_iter()
            .flat_map(|s| s.split([' ', ',']))
            .filter_map(Scope::parse)
            .collect();
        Ok(Self { sub: sub.clone(), tenant_id, scopes })
    }

    /// 403 unless a scope the caller holds grants `needed` ([`Scope::grants`]).
    pub fn require(&self, needed: Scope) -> Result<(), AuthError> {
        if self.scopes.grant(needed) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(needed))
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
        assert_eq!(c.scopes.iter().collect::<Vec<_>>(), [Scope::Read, Scope::Write]);
    }

    #[test]
    fn portal_access_reaches_the_login_check_and_nothing_else() {
        let portal = Caller::from_claims(&claims(&[("sub", "p"), ("tenant_id", "t"), ("scope", "portal:access")])).unwrap();
        assert!(portal.require(Scope::Access).is_ok());
        for staff in [Scope::Read, Scope::Write, Scope::Admin] {
            assert_eq!(portal.require(staff), Err(AuthError::Forbidden(staff)));
            let s = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t"), ("scope", staff.as_str())])).unwrap();
            assert!(s.require(Scope::Access).is_ok(), "{staff:?} keeps reaching the login check");
        }
        // Together with a staff scope, each keeps what it grants.
        let both = Caller::from_claims(&claims(&[("sub", "u"), ("tenant_id", "t"), ("scope", "portal:access portal:read")])).unwrap();
        assert!(both.require(Scope::Read).is_ok() && both.require(Scope::Write).is_err());
    }
}
