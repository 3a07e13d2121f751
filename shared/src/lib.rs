//! Portal Access: staff give contacts access to a customer portal with a
//! pickup/activation code; people claim it to create their account.
//!
//! # Layout
//! - [`domain`]: types and rules, pure (ids, emails, codes, expiry, scopes, the portlet).
//! - [`store`]: the single DynamoDB table: keys, item shapes, the adapter.
//! - [`mail`]: email kinds, templates, the SQS and SES adapters, the mailer worker.
//! - [`http`]: the HTTP functions' handlers and the error → problem+json mapping.
//! - [`invite`]: issuing codes and links, the one path every operation uses.
//! - [`app`]: settings and the dependencies each function builds at cold start.
//! - [`telemetry`]: JSON logs.
//!
//! Each Lambda binary under `functions/` only wires these together.

pub mod app;
pub mod aws;
pub mod bulk;
pub mod domain;
pub mod http;
pub mod invite;
pub mod mail;
pub mod metrics;
pub mod scheduler;
pub mod store;
pub mod telemetry;
