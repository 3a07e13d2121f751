//! The use cases: one module per thing the service does, each with its own
//! error enum whose variants keep their cause (`#[source]`). They take domain
//! types and [`crate::app::App`], never an HTTP request; only
//! the HTTP layer turns their errors into problem+json, and the workers
//! handle them as outcomes (retry, skip, dead-letter).
//!
//! | use case | module | error |
//! |---|---|---|
//! | issue a code or link | [`issue`] | [`issue::IssueError`] |
//! | claim a code or link | [`claim`] | [`claim::ClaimError`] |
//! | activate, resend / reset / enable | [`access`] | [`issue::IssueError`] |
//! | deactivate | [`deactivate`] | [`deactivate::DeactivateError`] |
//! | submit a bulk job | [`bulk_submit`] | [`bulk_submit::SubmitError`] |
//! | apply an activation batch | [`apply_batch`] | [`apply_batch::ApplyError`] |
//! | expire what is due | [`expire`] | [`expire::ExpireError`] |
//! | send one email | [`send_email`] | [`send_email::SendEmailError`] |
//! | record a delivery event | [`record_delivery`] | [`record_delivery::RecordDeliveryError`] |
//! | which portal is meant | [`portal`] | [`portal::PortalError`] |
//! | email me a new link (the hosted page) | [`new_link`] | `anyhow` (the page answers the same) |

pub mod access;
pub mod apply_batch;
pub mod bulk_submit;
pub mod claim;
pub mod deactivate;
pub mod expire;
pub mod issue;
pub mod new_link;
pub mod outbox;
pub mod portal;
pub mod record_delivery;
pub mod send_email;
