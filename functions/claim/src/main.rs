//! `claim` Lambda: Public claim of a code: creates the portal account.
//! Wiring only; the handler lives in `portal::http::claim`.

use lambda_http::{run, service_fn, Error, Request};
use portal::{app::App, http::claim, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(claim::handle(app, req).await) })).await
}
