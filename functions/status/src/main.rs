//! `status` Lambda: The Portal portlet view of one contact.
//! Wiring only; the handler lives in `portal::http::status`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Status).await
}
