// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `status` Lambda: The Portal portlet view of one contact.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::status`.

use portal::http::{serve, status::Status};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Status>().await
}
