// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `contacts` Lambda: contacts and their listing, the email log, stored documents and the audit trail.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::contacts`.

use portal::http::{contacts::Contacts, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Contacts>().await
}
