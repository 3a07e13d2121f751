//! `status` Lambda: The Portal portlet view of one contact.
//! Wiring only; the handler lives in `portal::http::status`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::status, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(status::handle(app, req).await) })).await
}
