//! DynamoDB: the key design ([`keys`]), the stored item shapes ([`items`]) and
//! the adapter ([`dynamo::Store`]), whose methods are grouped by concern:
//! profiles and portals ([`dynamo`]), codes, links, claims and deactivation
//! ([`invitations`]), the email log, templates and audit ([`mail_log`]), and
//! the contact listing ([`listing`]).

pub mod changes;
pub mod cursor;
pub mod deliveries;
pub mod dynamo;
pub mod guards;
pub mod integrations;
pub mod invitations;
pub mod jobs;
pub mod items;
pub mod keys;
pub mod listing;
pub mod mail_log;
pub mod quota;
pub mod reports;
pub mod scheduling;
pub mod tx;

pub use dynamo::{ContactPartition, EmailKey, Store};
pub use tx::{CancelReason, Cancellation, Tx, TxError, TxItem};
pub use invitations::{CodeOwner, ConfirmationStart, Deactivation, EndAccess, Invitation, NewAccount};
