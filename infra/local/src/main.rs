//! `portal-local`: set up, seed and serve the local stack.
//!
//! ```text
//! portal-local setup                      create the template's table, queues, SES identity
//! portal-local seed                       add the demo tenant
//! portal-local serve                      run the gateway on 127.0.0.1:3000 and the queue pollers
//! portal-local token [--tenant T] [--scope S] [--sub U] [--ttl SECONDS]
//! ```
//!
//! The benchmarks are `portal-bench` (`infra/bench`).

use portal_local::{flag, gateway, jwt, local, seed, setup, template::Template};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let template = Template::load_default()?;
    match args.first().map(String::as_str) {
        Some("setup") => setup::run(&local::Endpoints::from_env().await, &template).await,
        Some("seed") => seed::run(&local::Endpoints::from_env().await, &template).await,
        Some("serve") => {
            portal::telemetry::init();
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
                let _ = tx.send(true);
            });
            gateway::run(local::Endpoints::from_env().await, template, &local::gateway_addr(), rx).await
        }
        Some("token") => {
            let expected = jwt::Expected::from_template(&template);
            let token = jwt::mint(
                &expected,
                &flag(&args, "--sub", "demo-staff"),
                &flag(&args, "--tenant", seed::DEMO_TENANT),
                &flag(&args, "--scope", "portal:read portal:write portal:admin"),
                flag(&args, "--ttl", "86400").parse()?,
            );
            println!("{token}");
            Ok(())
        }
        _ => {
            eprintln!("usage: portal-local setup | seed | serve | token [--tenant T] [--scope S] [--sub U] [--ttl SECONDS]");
            std::process::exit(2);
        }
    }
}
