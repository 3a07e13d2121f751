//! HTTP entry points. Every operation has the same shape: read the caller and
//! the input into domain types ([`request`]), call the use case, answer JSON or
//! a problem ([`problem`]). Each Lambda binary's `main` calls one `handle`.

pub mod access;
pub mod activations;
pub mod admin;
pub mod admin_views;
pub mod claim;
pub mod generate;
pub mod idempotency;
pub mod lifecycle;
pub mod problem;
pub mod reports;
pub mod request;
pub mod status;
pub mod templates;

use crate::app::App;
use lambda_http::{Body, Request, Response};

/// The HTTP functions, by binary name (as in template.yaml's BuildProperties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFunction {
    Generate,
    Claim,
    Status,
    Admin,
    Lifecycle,
    Access,
    Activations,
    Reports,
}

impl HttpFunction {
    pub fn from_binary(name: &str) -> Option<Self> {
        Some(match name {
            "generate" => Self::Generate,
            "claim" => Self::Claim,
            "status" => Self::Status,
            "admin" => Self::Admin,
            "lifecycle" => Self::Lifecycle,
            "access" => Self::Access,
            "activations" => Self::Activations,
            "reports" => Self::Reports,
            _ => return None,
        })
    }

    /// Calls the function's handler, as its Lambda binary would: through
    /// [`idempotency::around`] when the request carries a key for an effectful route.
    pub async fn handle(self, app: &App, req: Request) -> Response<Body> {
        if idempotency::applies(&req) {
            return idempotency::around(app, req, |req| self.dispatch(app, req)).await;
        }
        self.dispatch(app, req).await
    }

    async fn dispatch(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Self::Generate => generate::handle(app, req).await,
            Self::Claim => claim::handle(app, req).await,
            Self::Status => status::handle(app, req).await,
            Self::Admin => admin::handle(app, req).await,
            Self::Lifecycle => lifecycle::handle(app, req).await,
            Self::Access => access::handle(app, req).await,
            Self::Activations => activations::handle(app, req).await,
            Self::Reports => reports::handle(app, req).await,
        }
    }
}

/// Runs an HTTP function as a Lambda: JSON logs, dependencies built once at
/// cold start from the environment, then every request to its handler.
pub async fn serve(function: HttpFunction) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, lambda_http::Error>(function.handle(app, req).await)
    }))
    .await
}
