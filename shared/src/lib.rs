//! Portal Access: staff give contacts access to a customer portal with a
//! pickup/activation code or an emailed link; people claim it to create their
//! account.
//!
//! # Layout
//! Layers, each using only those above it (no cycle):
//! 1. [`domain`]: types and rules, pure: ids, emails, codes and links and
//!    their life cycle ([`domain::invitation`]), delivery events and events
//!    out ([`domain::delivery`], [`domain::event_out`]), portal states, scopes, the
//!    portlet, bulk jobs.
//! 2. Adapters: [`store`] (the single DynamoDB table: keys, item shapes,
//!    transactions), [`queue`] (the mail and activation queues, typed by
//!    their message), [`mail`] (templates and SES v2), [`bus`] (EventBridge), [`oidc`] (identity
//!    providers' keys), [`secrets`] (Secrets Manager), [`aws`], [`metrics`], [`telemetry`], [`retry`].
//! 3. [`app`]: settings and the adapters the use cases share ([`app::App`]).
//! 4. [`usecase`]: one module per use case, each with its own error enum.
//! 5. Entry points: [`http`] (each HTTP function's routes, the route table,
//!    idempotency, errors → problem+json) and [`workers`] (mailer, deliveries, publisher, activator,
//!    scheduler: events → use cases, errors → outcomes).
//!
//! Each Lambda binary under `functions/` only wires an entry point up.

pub mod app;
pub mod aws;
pub mod bus;
pub mod domain;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod queue;
pub mod retry;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod usecase;
pub mod workers;
