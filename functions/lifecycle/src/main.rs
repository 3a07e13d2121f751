//! `lifecycle` Lambda: Activate, resend/reset/enable and deactivate portal access.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::lifecycle`.

use portal::http::{serve, lifecycle::Lifecycle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Lifecycle>().await
}
