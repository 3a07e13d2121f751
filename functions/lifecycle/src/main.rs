// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `lifecycle` Lambda: Activate, resend/reset/enable and deactivate portal access.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::lifecycle`.

use portal::http::{serve, lifecycle::Lifecycle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Lifecycle>().await
}
