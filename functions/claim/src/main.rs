// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `claim` Lambda: Public claim of a code or activation link: creates the portal account.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::claim`.

use portal::http::{serve, claim::Claim};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Claim>().await
}
