//! `generate` Lambda: Generate (and optionally email) a pickup/activation code for a contact.
//! Wiring only; the handler lives in `portal::http::generate`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Generate).await
}
