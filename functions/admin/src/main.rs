//! `admin` Lambda: Portal settings, contacts and the email log.
//! Wiring only; the handler lives in `portal::http::admin`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::admin, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(admin::handle(app, req).await) })).await
}
