//! An address vouched for by the portal's identity provider (issue 14): a
//! claim with an `id_token` from a real OIDC provider — a moto Cognito user
//! pool, whose tokens are RS256 and whose JWKS moto serves — binds at once,
//! to the token's email, keeping its `sub`. A token whose email is not
//! verified, from another pool or client, tampered with, or sent to a portal
//! that trusts no provider binds nothing: the same 400 as an unknown code.

use crate::helpers::*;
use portal_local::local;
use reqwest::Method;
use serde_json::{json, Value};

/// One call of moto's Cognito API (JSON 1.1, as the SDKs send it).
async fn cognito(action: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(local::moto_endpoint())
        .header("x-amz-target", format!("AWSCognitoIdentityProviderService.{action}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/cognito-idp/aws4_request, SignedHeaders=host, Signature=0")
        .body(body.to_string())
        .send()
        .await
        .expect("moto answers");
    let status = resp.status();
    let value: Value = resp.json().await.expect("moto answers JSON");
    assert!(status.is_success(), "{action}: {status} {value}");
    value
}

/// A user pool with one app client that may read email and email_verified.
struct Pool {
    id: String,
    client_id: String,
}

impl Pool {
    async fn new() -> Self {
        let pool = cognito("CreateUserPool", json!({"PoolName": unique("pool")})).await;
        let id = pool["UserPool"]["Id"].as_str().unwrap().to_owned();
        let client_id = Self::client(&id).await;
        Self { id, client_id }
    }

    async fn client(pool: &str) -> String {
        let client = cognito(
            "CreateUserPoolClient",
            json!({"UserPoolId": pool, "ClientName": unique("portal"), "ExplicitAuthFlows": ["ADMIN_USER_PASSWORD_AUTH"],
                   "ReadAttributes": ["email", "email_verified"]}),
        )
        .await;
        client["UserPoolClient"]["ClientId"].as_str().unwrap().to_owned()
    }

    fn issuer(&self) -> String {
        format!("https://cognito-idp.us-east-1.amazonaws.com/{}", self.id)
    }

    /// The portal settings that trust this pool (its issuer does not resolve here, hence the JWKS URL).
    fn settings(&self) -> Value {
        json!({"identity_issuer": self.issuer(), "identity_audience": self.client_id,
               "identity_jwks_url": format!("{}/{}/.well-known/jwks.json", local::moto_endpoint(), self.id)})
    }

    /// An ID token for a new user of this pool, signed in through `client`.
    async fn id_token(&self, client: &str, email: &str, verified: bool) -> String {
        let username = unique("user");
        cognito(
            "AdminCreateUser",
            json!({"UserPoolId": self.id, "Username": username, "MessageAction": "SUPPRESS",
                   "UserAttributes": [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": verified.to_string()}]}),
        )
        .await;
        cognito("AdminSetUserPassword", json!({"UserPoolId": self.id, "Username": username, "Password": "Correct-Horse-9", "Permanent": true})).await;
        let auth = cognito(
            "AdminInitiateAuth",
            json!({"UserPoolId": self.id, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": username, "PASSWORD": "Correct-Horse-9"}}),
        )
        .await;
        auth["AuthenticationResult"]["IdToken"].as_str().expect("an id token").to_owned()
    }
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A portal `main` trusting `identity` (null: no provider), a contact and a pending code.
async fn portal_contact_code(t: &TestApp, identity: Value) -> (String, String) {
    let mut body = json!({"name": "Clinic portal", "default": true, "claim_url": "https://portal.example.com/claim"});
    if let Some(settings) = identity.as_object() {
        body.as_object_mut().unwrap().extend(settings.clone());
    }
    let portal = t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await;
    portal.ok(200);
    let contact = unique("chart");
    t.put_contact(&contact, Some(&format!("{contact}@example.com"))).await.ok(200);
    let code = t.generate(&contact, json!({})).await;
    (contact, code.ok(201)["code"].as_str().unwrap().to_owned())
}

fn state_on_main(status: &Value) -> String {
    status["portals"].as_array().unwrap().iter().find(|p| p["portal_id"] == "main").unwrap()["state"].as_str().unwrap().to_owned()
}

async fn audit(t: &TestApp, contact: &str) -> Vec<Value> {
    t.get(&format!("/v1/contacts/{contact}/audit")).await.ok(200)["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_id_token_from_the_portals_user_pool_binds_at_once_to_its_email_and_keeps_its_sub() {
    let t = TestApp::new().await;
    let pool = Pool::new().await;
    let (contact, code) = portal_contact_code(&t, pool.settings()).await;
    let email = format!("{}@example.org", unique("pat"));
    let token = pool.id_token(&pool.client_id, &email, true).await;
    assert_eq!(claims_of(&token)["email_verified"], "true", "moto gives email_verified as a string");

    let claim = t.claim(json!({"code": code, "id_token": token})).await;
    let claimed = claim.ok(201);
    assert_eq!(claimed["email"], email.to_lowercase());
    assert_eq!(claimed["contact_id"], contact.as_str());
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "active");

    // The login check knows the provider's id of the person.
    let access = t.call(Method::GET, &format!("/v1/accounts/{email}/access"), "portal:access", None).await;
    let sub = claims_of(&token)["sub"].clone();
    assert_eq!(access.ok(200)["access"], json!([{"contact_id": contact, "portal_id": "main", "identity_subject": sub}]));
    let claimed = audit(&t, &contact).await.into_iter().find(|a| a["action"] == "claimed").expect("the claim is audited");
    assert_eq!(claimed["detail"]["verified_by"], "id_token");
    assert_eq!(claimed["detail"]["identity_subject"], sub);
    assert!(!claimed.to_string().contains(&token), "the token itself is not kept");
}

#[tokio::test]
async fn a_token_that_vouches_for_nothing_binds_nothing_and_says_no_more_than_an_unknown_code() {
    let t = TestApp::new().await;
    let pool = Pool::new().await;
    let (contact, code) = portal_contact_code(&t, pool.settings()).await;
    let unknown = t.claim(json!({"code": "ZZZZZ-ZZZZZ", "id_token": "x.y.z"})).await;
    unknown.problem(400);

    let unverified = pool.id_token(&pool.client_id, "unverified@example.org", false).await;
    let other_client = pool.id_token(&Pool::client(&pool.id).await, "other-client@example.org", true).await;
    let other_pool = Pool::new().await;
    let foreign = other_pool.id_token(&other_pool.client_id, "foreign@example.org", true).await;
    // Same pool and key, but a payload the provider never signed.
    let genuine = pool.id_token(&pool.client_id, "genuine@example.org", true).await;
    let mut forged_claims = claims_of(&genuine);
    forged_claims["email"] = json!("mallory@example.org");
    let forged = {
        use base64::Engine;
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let mismatched = pool.id_token(&pool.client_id, "typed-other@example.org", true).await;
    let cases = [
        ("email not verified", json!({"code": code, "id_token": unverified})),
        ("another client of the pool", json!({"code": code, "id_token": other_client})),
        ("another pool", json!({"code": code, "id_token": foreign})),
        ("a forged payload", json!({"code": code, "id_token": forged})),
        ("a typed email that is not the token's", json!({"code": code, "id_token": mismatched, "email": "someone@example.org"})),
    ];
    for (why, body) in cases {
        let refused = t.claim(body).await;
        assert_eq!(refused.status, 400, "{why}: {:?}", refused.body);
        assert_eq!(refused.body["detail"], unknown.body["detail"], "{why}: the refusal says no more than for an unknown code");
    }
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "pending", "the code is still claimable");
    let reasons: Vec<String> = audit(&t, &contact)
        .await
        .into_iter()
        .filter(|a| a["action"] == "claim_refused")
        .map(|a| a["detail"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for reason in ["id_token_email_not_verified", "id_token_invalid", "id_token_email_mismatch"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason} is audited: {reasons:?}");
    }

    // The genuine token still binds: nothing above used the code up.
    let claim = t.claim(json!({"code": code, "id_token": genuine})).await;
    assert_eq!(claim.ok(201)["email"], "genuine@example.org");
}

#[tokio::test]
async fn a_portal_that_trusts_no_provider_takes_no_id_token() {
    let t = TestApp::new().await;
    let pool = Pool::new().await;
    let (contact, code) = portal_contact_code(&t, Value::Null).await;
    let token = pool.id_token(&pool.client_id, "pat@example.org", true).await;
    t.claim(json!({"code": code, "id_token": token})).await.problem(400);
    assert_eq!(state_on_main(t.status(&contact).await.ok(200)), "pending");
    let refused = audit(&t, &contact).await.into_iter().find(|a| a["action"] == "claim_refused").expect("audited");
    assert_eq!(refused["detail"]["reason"], "id_token_not_accepted");
}

#[tokio::test]
async fn identity_provider_settings_are_validated_at_their_field() {
    let t = TestApp::new().await;
    let base = json!({"name": "P", "default": true, "claim_url": "https://portal.example.com/claim"});
    let cases = [
        (json!({"identity_issuer": "https://idp.example"}), "/identity_audience"),
        (json!({"identity_audience": "client"}), "/identity_issuer"),
        (json!({"identity_issuer": "http://idp.example", "identity_audience": "c"}), "/identity_issuer"),
        (json!({"identity_issuer": "https://idp.example", "identity_audience": "c", "identity_jwks_url": "http://10.1.2.3/jwks"}), "/identity_jwks_url"),
    ];
    for (settings, pointer) in cases {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
        let put = t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(body)).await;
        put.problem(422);
        assert_eq!(put.body["errors"][0]["pointer"], pointer, "{settings}");
    }
    let mut good = base.clone();
    good.as_object_mut().unwrap().extend(json!({"identity_issuer": "https://idp.example", "identity_audience": "c"}).as_object().unwrap().clone());
    let put = t.call(Method::PUT, "/v1/portals/main", ADMIN, Some(good)).await;
    assert_eq!(put.ok(200)["identity_jwks_url"], "https://idp.example/.well-known/jwks.json", "the JWKS URL defaults from the issuer");
}
