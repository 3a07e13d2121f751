//! `lifecycle` Lambda: activate, resend/reset/enable and deactivate portal access.
//! Wiring only; the handler lives in `portal::http::lifecycle`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::lifecycle, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(lifecycle::handle(app, req).await) })).await
}
