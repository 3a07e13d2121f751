//! `generate` Lambda: Generate (and optionally email) a pickup/activation code for a contact.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::generate`.

use portal::http::{serve, generate::Generate};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Generate>().await
}
