// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `templates` Lambda: each portal's email and text templates, their validation and preview.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::templates`.

use portal::http::{serve, templates::Templates};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Templates>().await
}
