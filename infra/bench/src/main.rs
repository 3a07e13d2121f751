//! `portal-bench`: the benchmarks, on the local stack (`infra/bench-bulk`,
//! `infra/bench-perf` start one and build this in release). A crate of its
//! own so the test builds (`infra/run-tests`) never compile it.
//!
//! ```text
//! portal-bench bulk [--contacts N] [--workers W]   the bulk activation benchmark
//! portal-bench perf [--scale PCT] [--cold-runs N] [--cold-only] [--bin-dir DIR] [--readme FILE]   latency, requests/op, cold starts
//! portal-bench events [--contacts N]               events out: events per state change, DynamoDB requests added
//! portal-bench templates [--runs N]                the template check at save: refusals beside a save (no stack)
//! ```
//!
//! Layout: [`bulk`] (submit → activator over the queue, against bare batch
//! writes), [`perf`] (handlers against the raw DynamoDB floor, cold starts
//! under a minimal Lambda Runtime API beside `infra/hello`).

mod bulk;
mod events;
mod perf;
mod templates;

use portal_local::{flag, local, template::Template};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let template = Template::load_default()?;
    match args.first().map(String::as_str) {
        Some("bulk") => {
            let contacts = flag(&args, "--contacts", "10000").parse()?;
            let workers = flag(&args, "--workers", "4").parse()?;
            bulk::run(&local::Endpoints::from_env().await, &template, contacts, workers).await
        }
        Some("perf") => {
            let readme = flag(&args, "--readme", "");
            let opts = perf::Options {
                scale: flag(&args, "--scale", "100").parse()?,
                cold_runs: flag(&args, "--cold-runs", "5").parse()?,
                cold_only: args.iter().any(|a| a == "--cold-only"),
                bin_dir: flag(&args, "--bin-dir", &portal_local::repo_root().join("target/release").to_string_lossy()).into(),
                readme: (!readme.is_empty()).then(|| readme.into()),
            };
            perf::run(&local::Endpoints::from_env().await, &template, &opts).await
        }
        Some("events") => {
            let contacts = flag(&args, "--contacts", "50").parse()?;
            events::run(&local::Endpoints::from_env().await, &template, contacts).await
        }
        Some("templates") => templates::run(flag(&args, "--runs", "200").parse()?),
        _ => {
            eprintln!("usage: portal-bench bulk [--contacts N] [--workers W] | perf [--scale PCT] [--cold-runs N] [--cold-only] [--bin-dir DIR] [--readme FILE] | events [--contacts N] | templates [--runs N]");
            std::process::exit(2);
        }
    }
}
