//! The Docker-free local stack for Portal Access.
//!
//! - [`template`]: reads template.yaml, the single definition of resources and routes;
//! - [`setup`]: creates its table, queues and SES identity on DynamoDB Local and moto;
//! - [`gateway`]: serves its HTTP routes with the functions' handlers and polls its queues;
//! - [`events`]: the one builder of API Gateway v2 events (the gateway's, the tests', the benchmarks');
//! - [`sqs_loop`]: the event source mapping's receive → handler → delete loop, and queue draining;
//! - [`stream_loop`]: the table's change stream read as the DynamoDB event source mapping would;
//! - [`jwt`]: local staff tokens, checked as the HTTP API's JWT authorizer would;
//! - [`local`]: endpoints, names and the functions' resolved settings;
//! - [`seed`]: a demo tenant.
//!
//! The benchmarks build on this library from their own crate, `portal-bench` (`infra/bench`).

pub mod events;
pub mod gateway;
pub mod jwt;
pub mod local;
pub mod seed;
pub mod setup;
pub mod sqs_loop;
pub mod stream_loop;
pub mod template;

use std::path::PathBuf;

/// The repository root: `PORTAL_REPO_ROOT`, else two levels above this crate.
pub fn repo_root() -> PathBuf {
    std::env::var_os("PORTAL_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The value after `name` in a command's arguments, or `default`.
pub fn flag(args: &[String], name: &str, default: &str) -> String {
    args.windows(2).find(|w| w[0] == name).map_or_else(|| default.to_owned(), |w| w[1].clone())
}
