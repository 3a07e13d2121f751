//! DynamoDB transactions with named items: each item of a TransactWriteItems
//! says what it is ([`TxItem`]), so a cancellation tells which item's
//! condition failed ([`Cancellation`]) instead of a list of strings read by
//! position.

use aws_sdk_dynamodb::types::TransactWriteItem;

/// What an item of a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxItem {
    /// A code's or link's global lookup item (the claim guard).
    CodeLookup,
    /// A code's or link's row on its contact's partition.
    CodeRow,
    /// An earlier code's lookup, revoked by this transaction.
    RevokedLookup,
    /// An earlier code's row, revoked by this transaction.
    RevokedRow,
    /// The contact's profile (and its portal states).
    Contact,
    /// A portal account of the contact.
    Account,
    /// An email address's access grant.
    Grant,
    /// An audit record.
    Audit,
    /// An email log entry.
    Email,
    /// A bulk job's (job, contact) marker.
    JobMarker,
    /// A bulk job's "this batch was counted" record.
    BatchApplied,
    /// A bulk job's record and counters.
    Job,
    /// A group's record.
    Group,
    /// A chunk of a group's members.
    GroupMembers,
    /// A portal's email template.
    Template,
    /// A claim confirmation (the one confirmed, or one voided by a newer one).
    Confirmation,
}

/// Why DynamoDB cancelled one item of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// This item was fine; another one failed.
    None,
    /// The item's condition did not hold.
    ConditionalCheckFailed,
    /// Another transaction held the item.
    TransactionConflict,
    /// Anything else DynamoDB names (throttling, validation, …).
    Other(String),
}

impl CancelReason {
    pub fn from_code(code: Option<&str>) -> Self {
        match code {
            None | Some("None") => Self::None,
            Some("ConditionalCheckFailed") => Self::ConditionalCheckFailed,
            Some("TransactionConflict") => Self::TransactionConflict,
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

/// One item of a cancelled transaction and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub item: TxItem,
    pub reason: CancelReason,
}

/// A transaction refused by DynamoDB (nothing of it was written), or another failure.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("transaction cancelled: {0:?}")]
    Cancelled(Vec<Cancellation>),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl TxError {
    /// Only contention with another transaction (worth retrying), no failed condition.
    pub fn is_contention(&self) -> bool {
        match self {
            Self::Cancelled(c) => {
                c.iter().any(|c| c.reason == CancelReason::TransactionConflict)
                    && !c.iter().any(|c| c.reason == CancelReason::ConditionalCheckFailed)
            }
            Self::Unexpected(_) => false,
        }
    }

    /// Whether the condition of an item of this kind failed.
    pub fn condition_failed(&self, item: TxItem) -> bool {
        matches!(self, Self::Cancelled(c) if c.iter().any(|c| c.item == item && c.reason == CancelReason::ConditionalCheckFailed))
    }
}

/// The items of one transaction, each with what it is.
#[derive(Debug, Clone, Default)]
pub struct Tx {
    pub(super) items: Vec<(TxItem, TransactWriteItem)>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, what: TxItem, item: TransactWriteItem) -> &mut Self {
        self.items.push((what, item));
        self
    }

    pub fn with(mut self, what: TxItem, item: TransactWriteItem) -> Self {
        self.items.push((what, item));
        self
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// DynamoDB's reasons, one per item in order, named by the items.
    pub(super) fn cancellations(&self, codes: &[Option<&str>]) -> Vec<Cancellation> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, (what, _))| Cancellation { item: *what, reason: CancelReason::from_code(codes.get(i).copied().flatten()) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> TransactWriteItem {
        TransactWriteItem::builder().build()
    }

    #[test]
    fn a_cancellation_names_the_item_whose_condition_failed() {
        let tx = Tx::new().with(TxItem::BatchApplied, item()).with(TxItem::Job, item());
        let e = TxError::Cancelled(tx.cancellations(&[Some("ConditionalCheckFailed"), Some("None")]));
        assert!(e.condition_failed(TxItem::BatchApplied));
        assert!(!e.condition_failed(TxItem::Job));
        assert!(!e.is_contention());
    }

    #[test]
    fn contention_is_a_conflict_without_a_failed_condition() {
        let tx = Tx::new().with(TxItem::CodeLookup, item()).with(TxItem::Contact, item());
        let conflict = TxError::Cancelled(tx.cancellations(&[Some("TransactionConflict"), None]));
        assert!(conflict.is_contention());
        let both = TxError::Cancelled(tx.cancellations(&[Some("TransactionConflict"), Some("ConditionalCheckFailed")]));
        assert!(!both.is_contention());
        assert_eq!(CancelReason::from_code(Some("ThrottlingError")), CancelReason::Other("ThrottlingError".into()));
    }
}
