// Deep async handler futures (the whole route table of the function in one dispatch) need more than the default query depth.
#![recursion_limit = "256"]
//! `admin` Lambda: Portal Administration: portals, the tenant's settings and profile.
//! Wiring only: it serves this function's routes and links no other handler; they live in `portal::http::admin`.

use portal::http::{serve, admin::Admin};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve::<Admin>().await
}
