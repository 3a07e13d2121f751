//! `generate` Lambda: Generate (and optionally email) a pickup/activation code for a contact.
//! Wiring only; the handler lives in `portal::http::generate`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::generate, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(generate::handle(app, req).await) })).await
}
