// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `generate` Lambda: Generate (and optionally email) a pickup/activation code for a contact.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::generate`.

use portal::http::{serve, generate::Generate};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Generate>().await
}
