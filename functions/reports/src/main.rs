// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `reports` Lambda: the Portal Activation Code and Unused Activation Codes reports.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::reports`.

use portal::http::{serve, reports::Reports};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Reports>().await
}
