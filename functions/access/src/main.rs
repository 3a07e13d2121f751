// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `access` Lambda: The portal's login-time check of what an email may open.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::access`.

use portal::http::{serve, access::Access};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Access>().await
}
