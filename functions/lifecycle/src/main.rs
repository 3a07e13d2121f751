//! `lifecycle` Lambda: Activate, resend/reset/enable and deactivate portal access.
//! Wiring only; the handler lives in `portal::http::lifecycle`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Lifecycle).await
}
