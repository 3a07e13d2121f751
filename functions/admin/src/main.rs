//! `admin` Lambda: Portal settings, templates, contacts and their listing, the email log, documents and audit.
//! Wiring only; the handler lives in `portal::http::admin`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Admin).await
}
