// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `console` Lambda: the staff console and the embeddable portlet's script, static files built
//! from `web/` (`node build.mjs`) and copied beside this bootstrap by `sam build`.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::console`.

use portal::http::{console::Console, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Console>().await
}
