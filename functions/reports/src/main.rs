//! `reports` Lambda: the Portal Activation Code and Unused Activation Codes reports.
//! Wiring only; the handler lives in `portal::http::reports`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Reports).await
}
