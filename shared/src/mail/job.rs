//! The message on the mail queue: only a reference to the email log entry.
//! The entry holds everything needed to render; the queue carries no code.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailJob {
    pub tenant_id: String,
    pub contact_id: String,
    pub document_id: String,
}
