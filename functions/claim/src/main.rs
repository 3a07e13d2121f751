//! `claim` Lambda: Public claim of a code or activation link: creates the portal account.
//! Wiring only; the handler lives in `portal::http::claim`.

use portal::http::{serve, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve(HttpFunction::Claim).await
}
