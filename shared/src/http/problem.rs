//! The one place errors become HTTP answers: `application/problem+json`
//! (RFC 9457). 5xx bodies are generic; the cause chain goes to the log once, here.
//!
//! An unexpected error whose cause is a dependency that did not answer in
//! time (`aws::did_not_answer`: DynamoDB, SQS, SES or Secrets Manager past
//! their bounded waits) is a 503 with `Retry-After`, not a 500: every route
//! gets that here, without a word in its handler.

use crate::domain::AuthError;
use lambda_http::{http::StatusCode, Body, Response};
use serde::Serialize;

/// One invalid field: a JSON pointer into the request and what is wrong with it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
    /// For a text field with lines (a template's part): the line the error is on, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), detail: detail.into(), line: None }
    }

    /// The error is on `line` of the field.
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The request is not JSON, or not the JSON we take.
    #[error("{0}")]
    BadRequest(String),
    /// The request parsed but its values are not acceptable.
    #[error("{detail}")]
    Validation { detail: String, errors: Vec<FieldError> },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A claim that cannot go through; deliberately the same for every reason.
    #[error("this code cannot be claimed")]
    ClaimRejected,
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Too many failed claims from this address: try again after the seconds given.
    #[error("too many failed claims from this address; try again in {0} seconds")]
    RateLimited(u64),
    /// A request with the same Idempotency-Key is still being answered.
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    InProgress,
    #[error("{0}")]
    Unavailable(String),
    /// Behind CloudFront, a request that did not come through it (`http::edge`).
    #[error("this API answers only through its CloudFront distribution")]
    NotThroughEdge,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Seconds a caller is told to wait (`Retry-After`) when we are unavailable.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// The generic detail of a 503 for a dependency that did not answer.
const DEPENDENCY_DID_NOT_ANSWER: &str = "a service this request depends on did not answer in time; try again shortly";

impl ApiError {
    /// An unexpected error that is a dependency not answering in time becomes
    /// [`ApiError::Unavailable`], its cause logged here, once.
    fn classified(self) -> Self {
        match self {
            Self::Unexpected(e) if crate::aws::did_not_answer(&e) => {
                tracing::error!(error = ?e, "a dependency did not answer in time");
                Self::Unavailable(DEPENDENCY_DID_NOT_ANSWER.to_owned())
            }
            other => other,
        }
    }

    pub fn validation(pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::Validation { errors: vec![FieldError::new(pointer, detail.clone())], detail }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Auth(AuthError::Unauthenticated) => (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            Self::Auth(AuthError::Forbidden(_)) | Self::NotThroughEdge => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::ClaimRejected => (StatusCode::BAD_REQUEST, "claim-rejected", "Code not accepted"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Request too large"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            Self::InProgress => (StatusCode::CONFLICT, "in-progress", "Request in progress"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Unexpected(e) if crate::aws::did_not_answer(e) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Unexpected(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The problem+json response. Logs unexpected errors with their cause chain.
    pub fn into_response(self) -> Response<Body> {
        let this = self.classified();
        let (status, slug, title) = this.parts();
        let detail = match &this {
            Self::Unexpected(e) => {
                tracing::error!(error = ?e, "request failed");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            Self::ClaimRejected => {
                "the code is not valid for this portal, has expired, or has already been used".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = serde_json::json!({
            "type": format!("/problems/{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        if let Self::Validation { errors, .. } = &this {
            body["errors"] = serde_json::to_value(errors).expect("field errors serialise");
        }
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json");
        if status == StatusCode::UNAUTHORIZED {
            builder = builder.header("www-authenticate", "Bearer");
        }
        match &this {
            Self::RateLimited(secs) => builder = builder.header("retry-after", secs.to_string()),
            Self::InProgress => builder = builder.header("retry-after", "1"),
            Self::Unavailable(_) => builder = builder.header("retry-after", UNAVAILABLE_RETRY_AFTER_SECS.to_string()),
            _ => {}
        }
        builder.body(Body::Text(body.to_string())).expect("a valid response")
    }
}

// The use cases' errors, as answers. Causes of 5xx go to the log in
// `into_response`; 4xx say what the caller can do.

use crate::usecase::{
    bulk_submit::SubmitError, claim::ClaimError, deactivate::DeactivateError, issue::IssueError, outbox::QueueEmailError,
    portal::PortalError,
};

impl From<QueueEmailError> for ApiError {
    fn from(e: QueueEmailError) -> Self {
        match e {
            QueueEmailError::NotQueued(_) => Self::Unavailable(e.to_string()),
            QueueEmailError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::ContactNotFound => Self::NotFound("contact"),
            IssueError::Refused(why) => Self::Conflict(why.to_string()),
            IssueError::NoEmailAddress | IssueError::NoPhoneNumber => Self::validation("/send_email", e.to_string()),
            IssueError::MissingFacts(ref facts) => Self::Validation {
                errors: facts.iter().map(|f| FieldError::new("", format!("{f}: not on record for this contact"))).collect(),
                detail: e.to_string(),
            },
            IssueError::KeptChanging(_) | IssueError::Suppressed(_) => Self::Conflict(e.to_string()),
            IssueError::EmailNotQueued(e) => e.into(),
            IssueError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<DeactivateError> for ApiError {
    fn from(e: DeactivateError) -> Self {
        match e {
            DeactivateError::ContactNotFound => Self::NotFound("contact"),
            DeactivateError::KeptChanging(_) => Self::Conflict(e.to_string()),
            DeactivateError::EmailNotQueued(e) => e.into(),
            DeactivateError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<PortalError> for ApiError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::Unexpected(e) => Self::Unexpected(e),
            other => Self::validation("/portal_id", other.to_string()),
        }
    }
}

impl From<ClaimError> for ApiError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::Rejected => Self::ClaimRejected,
            ClaimError::RateLimited { retry_after_secs } => Self::RateLimited(retry_after_secs),
            ClaimError::EmailNotQueued(e) => e.into(),
            ClaimError::ProviderUnavailable(e) => {
                tracing::error!(error = ?e, "identity provider unreachable");
                Self::Unavailable("the portal's identity provider could not be reached to check the id_token; try again shortly".into())
            }
            ClaimError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NotQueued { .. } => Self::Unavailable(e.to_string()),
            SubmitError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    fn parts(e: ApiError) -> (u16, Option<String>, serde_json::Value) {
        let r = e.into_response();
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let Body::Text(body) = r.body() else { panic!("a text body") };
        (r.status().as_u16(), retry_after, serde_json::from_str(body).unwrap())
    }

    #[test]
    fn a_dependency_that_did_not_answer_is_a_generic_503_with_retry_after() {
        let timeout = ConnectorError::timeout("connect to 10.0.0.1:443 timed out after 1s".into());
        let e = anyhow::Error::new(timeout).context("Failed to read an item");
        let e = ApiError::Unexpected(e);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let (status, retry_after, body) = parts(e);
        assert_eq!((status, retry_after.as_deref()), (503, Some("2")));
        assert_eq!(body["type"], "/problems/unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(!detail.contains("10.0.0.1") && !detail.contains("item"), "no internals in the body: {detail}");
    }

    #[test]
    fn other_unexpected_errors_stay_500_without_retry_after() {
        let (status, retry_after, body) = parts(ApiError::Unexpected(anyhow::anyhow!("Failed to decode an item")));
        assert_eq!((status, retry_after), (500, None));
        assert_eq!(body["type"], "/problems/internal");
    }

    #[test]
    fn every_503_and_429_says_when_to_retry() {
        assert_eq!(parts(ApiError::Unavailable("the email could not be queued".into())).1.as_deref(), Some("2"));
        assert_eq!(parts(ApiError::RateLimited(30)).1.as_deref(), Some("30"));
        assert_eq!(parts(ApiError::InProgress).1.as_deref(), Some("1"));
    }
}
