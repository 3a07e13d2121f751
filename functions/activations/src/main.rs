//! `activations` Lambda: bulk activation jobs, groups and job progress.
//! Wiring only; the handler lives in `portal::http::activations`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Activations).await
}
