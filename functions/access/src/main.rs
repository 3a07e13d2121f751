//! `access` Lambda: the portal's login-time check of what an email may open.
//! Wiring only; the handler lives in `portal::http::access`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::access, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(access::handle(app, req).await) })).await
}
