//! An OpenID Connect ID token that vouches for the claimant's address.
//!
//! A portal may trust an identity provider (`identity_issuer`,
//! `identity_audience`, optional `identity_jwks_url`): a claim that carries
//! an `id_token` from it binds at once to the token's `email`, because the
//! provider has already proven the person reads it. The token must be signed
//! (RS256 or ES256) by a key of the provider's JWKS, name the issuer and the
//! audience exactly, be unexpired (a minute's leeway for clocks), and say
//! `email_verified: true` (Cognito's `"true"` is the same). The account keeps
//! the token's `sub`.
//!
//! Pure: the key set comes from the caller (`crate::oidc` fetches and caches
//! it), and so does the time.

use super::email_address::EmailAddress;
use super::web_url::{self, Deployment};
use chrono::{DateTime, Utc};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// Longest `id_token` we read; real ones are 1–2 KB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Longest issuer, audience or JWKS URL a portal may name.
pub const MAX_SETTING_LEN: usize = 2048;

/// The identity provider a portal trusts to vouch for addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProvider {
    /// The tokens' `iss`, exactly.
    #[serde(rename = "identity_issuer")]
    pub issuer: String,
    /// The `aud` the tokens must carry (the portal's client id at the provider).
    #[serde(rename = "identity_audience")]
    pub audience: String,
    /// Where its signing keys are: `{issuer}/.well-known/jwks.json` unless given.
    #[serde(rename = "identity_jwks_url")]
    pub jwks_url: String,
}

/// Why a portal's identity provider settings were refused; each names its field.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("identity_issuer: must be an https URL with a host")]
    Issuer,
    #[error("identity_audience: required with identity_issuer, 1 to 2048 characters")]
    Audience,
    #[error("identity_jwks_url: must be an https URL with a host")]
    JwksUrl,
    #[error("identity_issuer: required with identity_audience or identity_jwks_url")]
    IssuerMissing,
}

impl ProviderError {
    pub fn pointer(&self) -> &'static str {
        match self {
            Self::Issuer | Self::IssuerMissing => "/identity_issuer",
            Self::Audience => "/identity_audience",
            Self::JwksUrl => "/identity_jwks_url",
        }
    }
}

impl IdentityProvider {
    /// The provider a portal's three settings name, if any; its URLs must be
    /// https, or http to loopback in the local stack ([`web_url::secure`]).
    pub fn from_settings(issuer: Option<&str>, audience: Option<&str>, jwks_url: Option<&str>, deployment: Deployment) -> Result<Option<Self>, ProviderError> {
        let (issuer, audience, jwks_url) = (nonempty(issuer), nonempty(audience), nonempty(jwks_url));
        let Some(issuer) = issuer else {
            return if audience.is_some() || jwks_url.is_some() { Err(ProviderError::IssuerMissing) } else { Ok(None) };
        };
        if !web_url::secure(issuer, deployment) {
            return Err(ProviderError::Issuer);
        }
        let audience = audience.filter(|a| a.len() <= MAX_SETTING_LEN && !a.chars().any(char::is_control)).ok_or(ProviderError::Audience)?;
        let jwks_url = match jwks_url {
            Some(url) if web_url::secure(url, deployment) => url.to_owned(),
            Some(_) => return Err(ProviderError::JwksUrl),
            None => format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
        };
        Ok(Some(Self { issuer: issuer.to_owned(), audience: audience.to_owned(), jwks_url }))
    }
}

fn nonempty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// What a verified token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub email: EmailAddress,
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
}

/// Why a token vouches for nothing. Each says why for the log and the
/// audit; the claimant gets the same refusal as for an unknown code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the id_token is not a compact JWS of at most {MAX_TOKEN_LEN} bytes")]
    Malformed,
    #[error("the id_token is signed with {0}, not RS256 or ES256")]
    Algorithm(String),
    /// No key of the provider's set has the token's `kid` (refresh the set and try once more).
    #[error("no key of the identity provider has the id_token's kid")]
    UnknownKey,
    #[error("the id_token does not verify: {0}")]
    Invalid(String),
    #[error("the id_token has expired")]
    Expired,
    #[error("the id_token is not valid yet")]
    NotYetValid,
    #[error("the id_token's email is not verified")]
    EmailNotVerified,
    #[error("the id_token has no valid email")]
    NoEmail,
}

impl IdTokenError {
    /// A short reason for the audit record.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "id_token_malformed",
            Self::Algorithm(_) => "id_token_algorithm",
            Self::UnknownKey => "id_token_unknown_key",
            Self::Invalid(_) => "id_token_invalid",
            Self::Expired => "id_token_expired",
            Self::NotYetValid => "id_token_not_yet_valid",
            Self::EmailNotVerified => "id_token_email_not_verified",
            Self::NoEmail => "id_token_no_email",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

/// Verifies `token` as an ID token of `provider`, signed by a key of `keys`, at `now`.
pub fn verify(token: &str, provider: &IdentityProvider, keys: &JwkSet, now: DateTime<Utc>) -> Result<Vouched, IdTokenError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(IdTokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        // Without a kid, only a set of one key says which.
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(IdTokenError::UnknownKey)?;
    // A key that names its algorithm is used for that one only.
    if jwk.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{:?}", header.alg)) {
        return Err(IdTokenError::Invalid("the key is for another algorithm".into()));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&provider.issuer]);
    validation.set_audience(&[&provider.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Expiry is judged below against our clock, not the process's.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    let now = now.timestamp();
    if claims.exp + LEEWAY_SECS <= now {
        return Err(IdTokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECS > now) {
        return Err(IdTokenError::NotYetValid);
    }
    let verified = matches!(&claims.email_verified, Some(serde_json::Value::Bool(true)))
        || matches!(&claims.email_verified, Some(serde_json::Value::String(s)) if s == "true");
    let email = claims.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()).ok_or(IdTokenError::NoEmail)?;
    if !verified {
        return Err(IdTokenError::EmailNotVerified);
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(IdTokenError::Invalid("sub must be 1 to 255 characters".into()));
    }
    Ok(Vouched { email, subject: claims.sub })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    // Two EC P-256 keys made for these tests only (`openssl ecparam -genkey -name prime256v1`).
    const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3w4pPMJUZ61VneGu
AJsqR9C1tm3KQ7cVj/XrCK4TPnihRANCAAQOtWmFmGRa27oTannox99zdXwyM4w+
re/lt5/6QaehfnonsH2M9rAKKCtk2Ngp24qUJpOGeeHnr/P2A3DShOhY
-----END PRIVATE KEY-----";
    const EC_X: &str = "DrVphZhkWtu6E2p56Mffc3V8MjOMPq3v5bef-kGnoX4";
    const EC_Y: &str = "eiewfYz2sAooK2TY2CnbipQmk4Z54eev8_YDcNKE6Fg";
    const OTHER_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQginSi0t1vbFdjxFv4
0JpXEkzULp0fFm3b20Gi+asvDsahRANCAAQfwWKgWtwuK46GNOgtX1DqaE0/nDZ6
EU3ln1/Bl5RtdRVJ4h4XMxA3UBeoxpGUCNFHuudjO4OFE2bc+cGr0V3B
-----END PRIVATE KEY-----";

    fn provider() -> IdentityProvider {
        IdentityProvider::from_settings(Some("https://idp.example"), Some("portal-client"), None, Deployment::Aws).unwrap().unwrap()
    }

    fn keys(kid: &str) -> JwkSet {
        serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y, "kid": kid, "alg": "ES256", "use": "sig"}
        ]}))
        .unwrap()
    }

    fn token(kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        encode(&header, &claims, &EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc()
    }

    fn claims(verified: serde_json::Value) -> serde_json::Value {
        let exp = now().timestamp() + 300;
        serde_json::json!({"iss": "https://idp.example", "aud": "portal-client", "sub": "user-1", "exp": exp,
                           "email": "Pat@Example.org", "email_verified": verified})
    }

    #[test]
    fn a_signed_token_of_the_provider_vouches_for_its_verified_email() {
        for verified in [serde_json::json!(true), serde_json::json!("true")] {
            let vouched = verify(&token("k1", claims(verified)), &provider(), &keys("k1"), now()).unwrap();
            assert_eq!(vouched.email, EmailAddress::parse("pat@example.org").unwrap());
            assert_eq!(vouched.subject, "user-1");
        }
    }

    #[test]
    fn an_unverified_or_missing_email_vouches_for_nothing() {
        for verified in [serde_json::json!(false), serde_json::json!("false"), serde_json::json!(null)] {
            assert_eq!(verify(&token("k1", claims(verified)), &provider(), &keys("k1"), now()), Err(IdTokenError::EmailNotVerified));
        }
        let mut no_email = claims(serde_json::json!(true));
        no_email.as_object_mut().unwrap().remove("email");
        assert_eq!(verify(&token("k1", no_email), &provider(), &keys("k1"), now()), Err(IdTokenError::NoEmail));
    }

    #[test]
    fn issuer_audience_time_and_key_are_all_checked() {
        let good = claims(serde_json::json!(true));
        let with = |field: &str, value: serde_json::Value| {
            let mut c = good.clone();
            c[field] = value;
            token("k1", c)
        };
        assert!(matches!(verify(&with("iss", "https://other.example".into()), &provider(), &keys("k1"), now()), Err(IdTokenError::Invalid(_))));
        assert!(matches!(verify(&with("aud", "someone-else".into()), &provider(), &keys("k1"), now()), Err(IdTokenError::Invalid(_))));
        let long_ago = now().timestamp() - 61;
        assert_eq!(verify(&with("exp", long_ago.into()), &provider(), &keys("k1"), now()), Err(IdTokenError::Expired));
        let later = now().timestamp() + 3600;
        assert_eq!(verify(&with("nbf", later.into()), &provider(), &keys("k1"), now()), Err(IdTokenError::NotYetValid));
        assert_eq!(verify(&token("k2", good.clone()), &provider(), &keys("k1"), now()), Err(IdTokenError::UnknownKey));
        // Signed by a key that is not the provider's, under the provider's kid.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let forged = encode(&header, &good, &EncodingKey::from_ec_pem(OTHER_PRIVATE_PEM.as_bytes()).unwrap()).unwrap();
        assert!(matches!(verify(&forged, &provider(), &keys("k1"), now()), Err(IdTokenError::Invalid(_))));
        // The provider's signature of one token over the payload of another.
        let genuine = token("k1", good.clone());
        let admin = with("sub", "admin".into());
        let (admin_payload, genuine_sig) = (admin.split('.').nth(1).unwrap(), genuine.rsplit('.').next().unwrap());
        let spliced = format!("{}.{admin_payload}.{genuine_sig}", genuine.split('.').next().unwrap());
        assert!(matches!(verify(&spliced, &provider(), &keys("k1"), now()), Err(IdTokenError::Invalid(_))));
    }

    #[test]
    fn unsigned_symmetric_and_oversized_tokens_are_refused() {
        let none = format!("{}.{}.", b64(r#"{"alg":"none","kid":"k1"}"#), b64(&claims(serde_json::json!(true)).to_string()));
        assert_eq!(verify(&none, &provider(), &keys("k1"), now()), Err(IdTokenError::Malformed));
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let hs = encode(&hs, &claims(serde_json::json!(true)), &EncodingKey::from_secret(EC_X.as_bytes())).unwrap();
        assert_eq!(verify(&hs, &provider(), &keys("k1"), now()), Err(IdTokenError::Algorithm("HS256".into())));
        assert_eq!(verify(&"a".repeat(MAX_TOKEN_LEN + 1), &provider(), &keys("k1"), now()), Err(IdTokenError::Malformed));
        assert_eq!(verify("not a token", &provider(), &keys("k1"), now()), Err(IdTokenError::Malformed));
    }

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn provider_settings_need_an_issuer_an_audience_and_fetchable_urls() {
        assert_eq!(IdentityProvider::from_settings(None, None, None, Deployment::Aws), Ok(None));
        let p = provider();
        assert_eq!(p.jwks_url, "https://idp.example/.well-known/jwks.json");
        assert_eq!(IdentityProvider::from_settings(Some("https://idp.example"), None, None, Deployment::Aws), Err(ProviderError::Audience));
        assert_eq!(IdentityProvider::from_settings(None, Some("a"), None, Deployment::Aws), Err(ProviderError::IssuerMissing));
        assert_eq!(IdentityProvider::from_settings(Some("http://idp.example"), Some("a"), None, Deployment::Aws), Err(ProviderError::Issuer));
        assert_eq!(IdentityProvider::from_settings(Some("https://idp.example"), Some("a"), Some("http://10.0.0.1/jwks"), Deployment::Aws), Err(ProviderError::JwksUrl));
        assert_eq!(IdentityProvider::from_settings(Some("https://u@idp.example"), Some("a"), None, Deployment::Aws), Err(ProviderError::Issuer));
        let jwks = Some("http://127.0.0.1:5000/pool/.well-known/jwks.json");
        let local = IdentityProvider::from_settings(Some("https://cognito-idp.us-east-1.amazonaws.com/pool"), Some("a"), jwks, Deployment::Local);
        assert_eq!(local.unwrap().unwrap().jwks_url, "http://127.0.0.1:5000/pool/.well-known/jwks.json");
        // The template's own deployment takes no http at all, loopback included.
        let deployed = IdentityProvider::from_settings(Some("https://cognito-idp.us-east-1.amazonaws.com/pool"), Some("a"), jwks, Deployment::Aws);
        assert_eq!(deployed, Err(ProviderError::JwksUrl));
        let issuer = IdentityProvider::from_settings(Some("http://127.0.0.1:5000/pool"), Some("a"), None, Deployment::Aws);
        assert_eq!(issuer, Err(ProviderError::Issuer));
    }
}
