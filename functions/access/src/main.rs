//! `access` Lambda: The portal's login-time check of what an email may open.
//! Wiring only; the handler lives in `portal::http::access`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Access).await
}
