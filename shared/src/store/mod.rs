//! DynamoDB: the key design ([`keys`]), the stored item shapes ([`items`]) and
//! the adapter ([`dynamo::Store`]).

pub mod dynamo;
pub mod items;
pub mod keys;

pub use dynamo::{CodeIssue, CodeOwner, ContactPartition, EmailKey, Store, TxError};
