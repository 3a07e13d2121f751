// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `activations` Lambda: bulk activation jobs, groups and job progress.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::activations`.

use portal::http::{serve, activations::Activations};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Activations>().await
}
