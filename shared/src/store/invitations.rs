//! Codes and links ("invitations"), claims and deactivation: the writes that
//! change who may use a portal. Each is one DynamoDB transaction, so nothing
//! is ever half done; a cancelled transaction wrote nothing.

use super::dynamo::{from_item, key, s, to_item, Store, Tries};
use super::tx::{Tx, TxError, TxItem};
use super::items::{AuditItem, CodeItem, CodeLookupItem, ConfirmationItem, EmailItem, JobMarkerItem};
use super::keys;
use crate::domain::{
    invitation, time, AccessEntry, CodeHash, ContactId, DocumentId, EmailAddress, InvitationState, Method, PortalId, PortalState,
    TenantId,
};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

/// A code or link being issued, with everything that goes with it.
#[derive(Debug)]
pub struct Invitation {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub method: Method,
    /// The plain code (`XXXXX-XXXXX`) for codes; links keep no plain token.
    pub code_display: Option<String>,
    pub hash: CodeHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    /// The contact's name, kept with the code for the reports.
    pub contact_name: String,
    /// Earlier pending codes and links of the same contact and portal, revoked by this one.
    pub revoke: Vec<CodeHash>,
    /// Its messages, one per channel (`domain::channel`); the first is the one `email_document_id` names.
    pub messages: Vec<EmailItem>,
    pub email_document_id: Option<DocumentId>,
    /// For bulk activation: the (job, contact) marker; the transaction fails if it exists.
    pub job_marker: Option<JobMarkerItem>,
    /// The contact's new state on the portal; `None` leaves it (a code for an active contact).
    pub access: Option<AccessEntry>,
    /// Fail (write nothing) if the contact is active on the portal by the time this commits.
    pub unless_active: bool,
    pub audit: AuditItem,
}

/// Where a code or link belongs, read from its lookup item.
#[derive(Debug, Clone)]
pub struct CodeOwner {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub method: Method,
    pub state: InvitationState,
    pub expires_at_ms: i64,
    pub contact_name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub email_document_id: Option<DocumentId>,
    /// The channels it was sent by (`domain::channel`).
    pub sent_by: Vec<crate::domain::Channel>,
    /// For links: the address it was emailed to.
    pub sent_to: Option<EmailAddress>,
    /// Outstanding claim confirmations, oldest first, and their change count.
    pub confirmations: Vec<CodeHash>,
    pub confirm_seq: u32,
}

impl CodeOwner {
    /// The confirmation of a claim of this code (`code_hash`) by `email`,
    /// found by `token_hash` until `valid_until`; DynamoDB removes it a day later.
    pub fn confirmation(&self, token_hash: &CodeHash, code_hash: &CodeHash, email: EmailAddress, now: DateTime<Utc>, valid_until: DateTime<Utc>) -> ConfirmationItem {
        ConfirmationItem {
            pk: keys::confirmation_pk(token_hash),
            sk: keys::CONFIRMATION_SK.into(),
            tenant_id: self.tenant_id.clone(),
            contact_id: self.contact_id.clone(),
            portal_id: self.portal_id.clone(),
            code_hash: code_hash.clone(),
            email,
            method: self.method,
            created_at: now,
            expires_at_ms: valid_until.timestamp_millis(),
            expires_ttl: valid_until.timestamp() + 24 * 3600,
        }
    }
}

/// A claim confirmation being sent, with what goes with it.
#[derive(Debug)]
pub struct ConfirmationStart {
    pub item: ConfirmationItem,
    /// The code's outstanding confirmations after this one, and those it voids.
    pub outstanding: Vec<CodeHash>,
    pub voided: Vec<CodeHash>,
    pub email: EmailItem,
    pub audit: AuditItem,
}

/// The first transaction of a deactivation ([`Store::deactivate`]): the
/// switch (the state `disabled`, the audit entry, the notice) and as many
/// accounts and codes as fit beside it ([`Deactivation::room`]).
#[derive(Debug)]
pub struct Deactivation {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    /// The state entry read before; the transaction fails if it changed meanwhile.
    pub seen: Option<AccessEntry>,
    /// Accounts that still have access (those of this transaction).
    pub accounts: Vec<EmailAddress>,
    /// Pending codes and links revoked (those of this transaction).
    pub revoke: Vec<CodeHash>,
    /// The notice, one message per channel (`domain::channel`); the first names the others.
    pub messages: Vec<EmailItem>,
    pub audit: AuditItem,
    pub now: DateTime<Utc>,
}

/// Items a DynamoDB transaction holds at most.
pub const TX_MAX_ITEMS: usize = 100;
/// Items ending one account (its row, its access grant) or revoking one code
/// (its row, its lookup) costs: a unit of a deactivation's work.
pub const ITEMS_PER_END: usize = 2;

impl Deactivation {
    /// Accounts plus codes the switch transaction has room for beside the
    /// state, the audit entry and the notice's `messages`: 49 without a notice, 48 with one or two.
    pub const fn room(messages: usize) -> usize {
        (TX_MAX_ITEMS - 2 - messages) / ITEMS_PER_END
    }
}

/// A later transaction of a deactivation ([`Store::end_access`]): more
/// accounts ended and codes revoked, only while the contact is still
/// `disabled` on the portal.
#[derive(Debug)]
pub struct EndAccess {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub accounts: Vec<EmailAddress>,
    pub revoke: Vec<CodeHash>,
    pub now: DateTime<Utc>,
}

impl EndAccess {
    /// Accounts plus codes one such transaction holds beside its check of the state: 49.
    pub const ROOM: usize = (TX_MAX_ITEMS - 1) / ITEMS_PER_END;
}

fn s_or_null(v: Option<String>) -> aws_sdk_dynamodb::types::AttributeValue {
    v.map_or(aws_sdk_dynamodb::types::AttributeValue::Null(true), s)
}

/// The attribute value of an access entry.
fn entry_value(entry: &AccessEntry) -> anyhow::Result<aws_sdk_dynamodb::types::AttributeValue> {
    serde_dynamo::to_attribute_value(entry).context("Failed to encode an access entry")
}

/// The contact's state a claim sets ([`invitation::claim`] says `active`).
fn claimed_state(claim: invitation::Transition) -> PortalState {
    match claim.contact {
        invitation::ContactEffect::Set(s) | invitation::ContactEffect::IfStillNamed(s) => s,
        invitation::ContactEffect::Unchanged => PortalState::Active,
    }
}

impl Invitation {
    /// The channels its messages go by, in order.
    fn sent_by(&self) -> Vec<crate::domain::Channel> {
        self.messages.iter().map(|m| m.to.channel()).collect()
    }

    /// The code's two items: the global lookup (claim guard) and the contact's row.
    pub fn code_items(&self) -> (CodeLookupItem, CodeItem) {
        let expires_ms = self.expires_at.timestamp_millis();
        let lookup = CodeLookupItem {
            pk: keys::code_lookup_pk(&self.hash),
            sk: keys::CODE_LOOKUP_SK.into(),
            tenant_id: self.tenant_id.clone(),
            contact_id: self.contact_id.clone(),
            portal_id: self.portal_id.clone(),
            method: self.method,
            state: InvitationState::Pending,
            expires_at_ms: expires_ms,
            // Keep the guard 30 days past expiry so late claims still get a clean "no".
            expires_ttl: expires_ms / 1000 + 30 * 24 * 3600,
            contact_name: self.contact_name.clone(),
            created_at: Some(self.created_at),
            email_document_id: self.messages.first().map(|e| e.document_id.clone()),
            sent_by: self.sent_by(),
            // The address a link was emailed to (a link sent by text alone names none).
            sent_to: self.messages.iter().filter(|_| self.method == Method::Link).find_map(|e| e.to.email().cloned()),
            confirmations: Vec::new(),
            confirm_seq: 0,
        };
        let row = CodeItem {
            pk: keys::contact_pk(&self.tenant_id, &self.contact_id),
            sk: keys::code_sk(&self.portal_id, &self.hash),
            portal_id: self.portal_id.clone(),
            method: self.method,
            code_hash: self.hash.clone(),
            code: self.code_display.clone().map(Into::into),
            state: InvitationState::Pending,
            created_at: self.created_at,
            expires_at: self.expires_at,
            email_document_id: self.messages.first().map(|e| e.document_id.clone()),
            sent_by: self.sent_by(),
            created_by: self.created_by.clone(),
            contact_name: self.contact_name.clone(),
            gsi2pk: Some(keys::pending_gsi_pk(&self.tenant_id)),
            gsi2sk: Some(keys::pending_gsi_sk(&self.expires_at, &self.contact_id, &self.hash)),
            reminder_sent_at: None,
        };
        (lookup, row)
    }
}

/// The account a claim creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub email: EmailAddress,
    /// The identity provider's `sub`, when an ID token vouched for the address.
    pub subject: Option<String>,
}

impl Store {
    /// Revokes earlier pending codes and links ([`invitation::revoke`]): row and lookup.
    fn revocations(&self, tx: &mut Tx, pk: &str, portal: &PortalId, hashes: &[CodeHash]) -> anyhow::Result<()> {
        let Some(t) = invitation::revoke(InvitationState::Pending) else { return Ok(()) };
        for old in hashes {
            tx.push(TxItem::RevokedRow, self.set_state(key(pk.to_owned(), keys::code_sk(portal, old)), t.to, "REMOVE code, gsi2pk, gsi2sk", None, Tries::Any)?);
            tx.push(TxItem::RevokedLookup, self.set_state(key(keys::code_lookup_pk(old), keys::CODE_LOOKUP_SK.into()), t.to, "", None, Tries::Any)?);
        }
        Ok(())
    }

    /// Stores a new code or link (lookup + contact row), revokes the earlier
    /// pending ones, sets the contact's state, records the email and the audit
    /// entry: all or nothing.
    #[tracing::instrument(skip_all, fields(tenant = %inv.tenant_id, method = inv.method.as_str()))]
    pub async fn issue_invitation(&self, inv: &Invitation) -> Result<(), TxError> {
        let pk = keys::contact_pk(&inv.tenant_id, &inv.contact_id);
        let (lookup, row) = inv.code_items();
        let mut condition = "attribute_exists(pk)".to_owned();
        if inv.unless_active {
            condition.push_str(" AND (attribute_not_exists(#access.#p) OR #access.#p.#st <> :active)");
        }
        let contact_key = key(pk.clone(), keys::CONTACT_SK.into());
        let contact_write = match &inv.access {
            Some(entry) => {
                let mut u = Update::builder()
                    .table_name(self.table_name())
                    .set_key(Some(contact_key))
                    .update_expression("SET #access.#p = :entry")
                    .condition_expression(condition)
                    .expression_attribute_names("#access", "access")
                    .expression_attribute_names("#p", inv.portal_id.as_str())
                    .expression_attribute_values(":entry", entry_value(entry)?);
                if inv.unless_active {
                    u = u
                        .expression_attribute_names("#st", "state")
                        .expression_attribute_values(":active", s(PortalState::Active.as_str()));
                }
                TransactWriteItem::builder().update(u.build().context("Failed to build an Update")?).build()
            }
            None => {
                let mut c = ConditionCheck::builder()
                    .table_name(self.table_name())
                    .set_key(Some(contact_key))
                    .condition_expression(condition);
                if inv.unless_active {
                    c = c
                        .expression_attribute_names("#access", "access")
                        .expression_attribute_names("#p", inv.portal_id.as_str())
                        .expression_attribute_names("#st", "state")
                        .expression_attribute_values(":active", s(PortalState::Active.as_str()));
                }
                TransactWriteItem::builder().condition_check(c.build().context("Failed to build a ConditionCheck")?).build()
            }
        };
        let mut tx = Tx::new()
            .with(TxItem::CodeLookup, self.put(to_item(&lookup)?, "attribute_not_exists(pk)")?)
            .with(TxItem::CodeRow, self.put(to_item(&row)?, "attribute_not_exists(pk)")?)
            .with(TxItem::Contact, contact_write)
            .with(TxItem::Audit, self.put(to_item(&inv.audit)?, "attribute_not_exists(pk)")?);
        self.revocations(&mut tx, &pk, &inv.portal_id, &inv.revoke)?;
        for message in &inv.messages {
            tx.push(TxItem::Email, self.put(to_item(message)?, "attribute_not_exists(pk)")?);
        }
        if let Some(marker) = &inv.job_marker {
            tx.push(TxItem::JobMarker, self.put(to_item(marker)?, "attribute_not_exists(pk)")?);
        }
        self.transact(tx).await
    }

    /// Reads the lookup item of a code or link hash.
    #[tracing::instrument(skip_all)]
    pub async fn find_code(&self, hash: &CodeHash) -> anyhow::Result<Option<CodeOwner>> {
        let Some(item) = self.get(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into()).await? else {
            return Ok(None);
        };
        let l: CodeLookupItem = from_item(item)?;
        Ok(Some(CodeOwner {
            tenant_id: l.tenant_id,
            contact_id: l.contact_id,
            portal_id: l.portal_id,
            method: l.method,
            state: l.state,
            expires_at_ms: l.expires_at_ms,
            contact_name: l.contact_name,
            created_at: l.created_at,
            email_document_id: l.email_document_id,
            sent_by: l.sent_by,
            sent_to: l.sent_to,
            confirmations: l.confirmations,
            confirm_seq: l.confirm_seq,
        }))
    }

    /// Records a claim confirmation in one transaction: the code's list of
    /// outstanding confirmations (only if still pending and unchanged since
    /// `owner` was read), the confirmation, the voided ones deleted, the
    /// confirmation email's log entry and the audit record.
    pub async fn start_confirmation(&self, code: &CodeHash, owner: &CodeOwner, start: &ConfirmationStart) -> Result<(), TxError> {
        let list = aws_sdk_dynamodb::types::AttributeValue::L(start.outstanding.iter().map(|h| s(h.as_str())).collect());
        let lookup = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(keys::code_lookup_pk(code), keys::CODE_LOOKUP_SK.into())))
            .update_expression("SET confirmations = :list, confirm_seq = :next")
            .condition_expression(
                "#state = :pending AND (attribute_not_exists(confirm_seq) OR confirm_seq = :seq) \
                 AND (attribute_not_exists(fact_tries) OR fact_tries <= :tries)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":tries", super::dynamo::n(invitation::FACT_TRIES.into()))
            .expression_attribute_values(":pending", s(InvitationState::Pending.as_str()))
            .expression_attribute_values(":list", list)
            .expression_attribute_values(":seq", super::dynamo::n(owner.confirm_seq.into()))
            .expression_attribute_values(":next", super::dynamo::n(i64::from(owner.confirm_seq) + 1))
            .build()
            .context("Failed to build an Update")?;
        let mut tx = Tx::new()
            .with(TxItem::CodeLookup, TransactWriteItem::builder().update(lookup).build())
            .with(TxItem::Confirmation, self.put(to_item(&start.item)?, "attribute_not_exists(pk)")?)
            .with(TxItem::Email, self.put(to_item(&start.email)?, "attribute_not_exists(pk)")?)
            .with(TxItem::Audit, self.put(to_item(&start.audit)?, "attribute_not_exists(pk)")?);
        for old in &start.voided {
            let delete = Delete::builder()
                .table_name(self.table_name())
                .set_key(Some(key(keys::confirmation_pk(old), keys::CONFIRMATION_SK.into())))
                .build()
                .context("Failed to build a Delete")?;
            tx.push(TxItem::Confirmation, TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(tx).await
    }

    /// The claim confirmation whose token hashes to `hash`.
    pub async fn find_confirmation(&self, hash: &CodeHash) -> anyhow::Result<Option<ConfirmationItem>> {
        self.get(keys::confirmation_pk(hash), keys::CONFIRMATION_SK.into()).await?.map(from_item).transpose()
    }

    /// Claims a code or link for `email`: the lookup and the contact row go
    /// from pending to claimed (only if still pending and unexpired at `now`,
    /// and the contact not `disabled` on the portal),
    /// the plain code is erased, the account is created (or re-enabled), the
    /// contact becomes active and the email's access grant is written, in one
    /// transaction.
    #[tracing::instrument(skip_all, fields(tenant = %owner.tenant_id))]
    pub async fn claim_code(
        &self,
        hash: &CodeHash,
        owner: &CodeOwner,
        claim: invitation::Transition,
        account: &NewAccount,
        audit: &AuditItem,
        confirmation: Option<&CodeHash>,
        now: DateTime<Utc>,
    ) -> Result<(), TxError> {
        let email = &account.email;
        let (tenant, contact, portal) = (&owner.tenant_id, &owner.contact_id, &owner.portal_id);
        let pk = keys::contact_pk(tenant, contact);
        let now_s = time::format(&now);
        let account_row = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(pk.clone(), keys::account_sk(portal, email))))
            .update_expression(
                "SET email = :email, portal_id = :portal, activated_at = :now, #method = :method, contact_name = :name, \
                 #search = :search, gsi3pk = :g3pk, gsi3sk = :g3sk, sent_at = :sent, email_document_id = :doc, sent_by = :by, identity_subject = :sub \
                 REMOVE disabled_at",
            )
            .expression_attribute_names("#method", "method")
            .expression_attribute_names("#search", "search")
            .expression_attribute_values(":email", s(email.as_str()))
            .expression_attribute_values(":portal", s(portal.as_str()))
            .expression_attribute_values(":now", s(now_s.clone()))
            .expression_attribute_values(":method", s(owner.method.as_str()))
            .expression_attribute_values(":name", s(owner.contact_name.clone()))
            .expression_attribute_values(":search", s(crate::domain::report::search_text(&owner.contact_name, email.as_str())))
            .expression_attribute_values(":g3pk", s(keys::activated_gsi_pk(tenant)))
            .expression_attribute_values(":g3sk", s(keys::activated_gsi_sk(&now, contact, portal, email)))
            .expression_attribute_values(":sent", s_or_null(owner.created_at.as_ref().map(time::format)))
            .expression_attribute_values(":doc", s_or_null(owner.email_document_id.as_ref().map(|d| d.to_string())))
            .expression_attribute_values(":by", aws_sdk_dynamodb::types::AttributeValue::L(owner.sent_by.iter().map(|c| s(c.as_str())).collect()))
            .expression_attribute_values(":sub", s_or_null(account.subject.clone()));
        let account_row = account_row.build().context("Failed to build an Update")?;
        let state = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(pk.clone(), keys::CONTACT_SK.into())))
            .update_expression("SET #access.#p = :entry")
            // Never into a deactivation under way: its later transactions
            // revoke this code too, but only after the state says `disabled`.
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#access.#p) OR #access.#p.#st <> :disabled)")
            .expression_attribute_names("#access", "access")
            .expression_attribute_names("#p", portal.as_str())
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":disabled", s(PortalState::Disabled.as_str()))
            .expression_attribute_values(":entry", entry_value(&AccessEntry::new(claimed_state(claim), None, now))?)
            .build()
            .context("Failed to build an Update")?;
        let grant = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(keys::grant_pk(tenant, email), keys::grant_sk(contact, portal))))
            .update_expression("SET contact_id = :contact, portal_id = :portal, granted_at = :now, identity_subject = :sub")
            .expression_attribute_values(":sub", s_or_null(account.subject.clone()))
            .expression_attribute_values(":contact", s(contact.as_str()))
            .expression_attribute_values(":portal", s(portal.as_str()))
            .expression_attribute_values(":now", s(now_s))
            .build()
            .context("Failed to build an Update")?;
        let tx = Tx::new()
            .with(
                TxItem::CodeLookup,
                self.set_state(
                    key(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into()),
                    claim.to,
                    "",
                    Some(now.timestamp_millis()),
                    Tries::Within(invitation::FACT_TRIES),
                )?,
            )
            .with(TxItem::CodeRow, self.set_state(key(pk, keys::code_sk(portal, hash)), claim.to, "REMOVE code, gsi2pk, gsi2sk", None, Tries::Any)?)
            .with(TxItem::Account, TransactWriteItem::builder().update(account_row).build())
            .with(TxItem::Contact, TransactWriteItem::builder().update(state).build())
            .with(TxItem::Grant, TransactWriteItem::builder().update(grant).build())
            .with(TxItem::Audit, self.put(to_item(audit)?, "attribute_not_exists(pk)")?);
        // A confirmed claim uses its confirmation up: of two confirming at once, one wins.
        let tx = match confirmation {
            None => tx,
            Some(hash) => {
                let delete = Delete::builder()
                    .table_name(self.table_name())
                    .set_key(Some(key(keys::confirmation_pk(hash), keys::CONFIRMATION_SK.into())))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .context("Failed to build a Delete")?;
                tx.with(TxItem::Confirmation, TransactWriteItem::builder().delete(delete).build())
            }
        };
        self.transact(tx).await
    }

    /// Takes the next try at a pending code's facts of the record
    /// (`invitation::fact_try`): one atomic `ADD` on its lookup, made before
    /// anything is compared, answering the try's number; `None` when the code
    /// is no longer pending (claimed, locked, revoked meanwhile).
    pub async fn take_fact_try(&self, hash: &CodeHash) -> anyhow::Result<Option<u32>> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(key(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into())))
            .update_expression("ADD fact_tries :one")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(InvitationState::Pending.as_str()))
            .expression_attribute_values(":one", super::dynamo::n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let count = out.attributes.as_ref().and_then(|a| a.get("fact_tries")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                Ok(Some(count.context("the fact tries count was not returned")?))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to take a try at a code's facts")),
        }
    }

    /// Locks a pending code or link whose fact tries are used up
    /// ([`invitation::fact_lock`]; the lookup's counter must show them) in one
    /// transaction: lookup and row `pending → locked` (the plain code and the
    /// pending index keys removed), the contact's state `locked` when `named`
    /// (it still names this invitation), and the audit record.
    pub async fn lock_code(&self, hash: &CodeHash, owner: &CodeOwner, lock: invitation::Transition, named: bool, audit: &AuditItem, now: DateTime<Utc>) -> Result<(), TxError> {
        let (tenant, contact, portal) = (&owner.tenant_id, &owner.contact_id, &owner.portal_id);
        let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).context("a code's expiry is out of range")?;
        let pk = keys::contact_pk(tenant, contact);
        let tx = Tx::new()
            .with(
                TxItem::CodeLookup,
                self.set_state(key(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into()), lock.to, "", None, Tries::UsedUp(invitation::FACT_TRIES))?,
            )
            .with(TxItem::CodeRow, self.set_state(key(pk, keys::code_sk(portal, hash)), lock.to, "REMOVE code, gsi2pk, gsi2sk", None, Tries::Any)?)
            .with(TxItem::Contact, self.follow_invitation(tenant, contact, portal, &expires_at, lock.contact, named, now)?)
            .with(TxItem::Audit, self.put(to_item(audit)?, "attribute_not_exists(pk)")?);
        self.transact(tx).await
    }

    /// Ends a contact's access to a portal, the first transaction of it: the
    /// state `disabled` (from then on the login check answers nothing for the
    /// contact on the portal, see [`Store::access_of`]), the notice and the
    /// audit entry recorded, and the accounts and codes of `d` (at most
    /// [`Deactivation::room`]) disabled, their grants deleted, revoked. Fails
    /// (writes nothing) if the state changed since it was read. The rest
    /// follows in [`Store::end_access`] transactions.
    #[tracing::instrument(skip_all, fields(tenant = %d.tenant_id))]
    pub async fn deactivate(&self, d: &Deactivation) -> Result<(), TxError> {
        let pk = keys::contact_pk(&d.tenant_id, &d.contact_id);
        let now_s = time::format(&d.now);
        let mut state = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(pk.clone(), keys::CONTACT_SK.into())))
            .update_expression("SET #access.#p = :entry")
            .expression_attribute_names("#access", "access")
            .expression_attribute_names("#p", d.portal_id.as_str())
            .expression_attribute_values(":entry", entry_value(&AccessEntry::new(PortalState::Disabled, None, d.now))?);
        state = match &d.seen {
            Some(seen) => state
                .condition_expression("#access.#p.updated_at = :seen")
                .expression_attribute_values(":seen", s(time::format(&seen.updated_at))),
            None => state.condition_expression("attribute_exists(pk) AND attribute_not_exists(#access.#p)"),
        };
        let mut tx = Tx::new()
            .with(TxItem::Contact, TransactWriteItem::builder().update(state.build().context("Failed to build an Update")?).build())
            .with(TxItem::Audit, self.put(to_item(&d.audit)?, "attribute_not_exists(pk)")?);
        for message in &d.messages {
            tx.push(TxItem::Email, self.put(to_item(message)?, "attribute_not_exists(pk)")?);
        }
        self.revocations(&mut tx, &pk, &d.portal_id, &d.revoke)?;
        self.end_accounts(&mut tx, &d.tenant_id, &d.contact_id, &d.portal_id, &d.accounts, &now_s)?;
        if tx.len() > TX_MAX_ITEMS {
            return Err(anyhow::anyhow!("a deactivation's first transaction holds {} items", tx.len()).into());
        }
        self.transact(tx).await
    }

    /// Ends more of a deactivation's accounts and revokes more of its codes,
    /// in one transaction that holds only while the contact is `disabled` on
    /// the portal: once access was enabled again (which finishes what was
    /// left first, see `usecase::deactivate`) it writes nothing and the
    /// contact's condition is the one that failed.
    #[tracing::instrument(skip_all, fields(tenant = %e.tenant_id, accounts = e.accounts.len(), codes = e.revoke.len()))]
    pub async fn end_access(&self, e: &EndAccess) -> Result<(), TxError> {
        let pk = keys::contact_pk(&e.tenant_id, &e.contact_id);
        let still_disabled = ConditionCheck::builder()
            .table_name(self.table_name())
            .set_key(Some(key(pk.clone(), keys::CONTACT_SK.into())))
            .condition_expression("#access.#p.#st = :disabled")
            .expression_attribute_names("#access", "access")
            .expression_attribute_names("#p", e.portal_id.as_str())
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":disabled", s(PortalState::Disabled.as_str()))
            .build()
            .context("Failed to build a ConditionCheck")?;
        let mut tx = Tx::new().with(TxItem::Contact, TransactWriteItem::builder().condition_check(still_disabled).build());
        self.revocations(&mut tx, &pk, &e.portal_id, &e.revoke)?;
        self.end_accounts(&mut tx, &e.tenant_id, &e.contact_id, &e.portal_id, &e.accounts, &time::format(&e.now))?;
        if tx.len() > TX_MAX_ITEMS {
            return Err(anyhow::anyhow!("a deactivation's transaction holds {} items", tx.len()).into());
        }
        self.transact(tx).await
    }

    /// Accounts disabled and their access grants deleted (two items each).
    fn end_accounts(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        contact: &ContactId,
        portal: &PortalId,
        accounts: &[EmailAddress],
        now_s: &str,
    ) -> anyhow::Result<()> {
        let pk = keys::contact_pk(tenant, contact);
        for email in accounts {
            let disable = Update::builder()
                .table_name(self.table_name())
                .set_key(Some(key(pk.clone(), keys::account_sk(portal, email))))
                .update_expression("SET disabled_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", s(now_s))
                .build()
                .context("Failed to build an Update")?;
            let revoke_grant = Delete::builder()
                .table_name(self.table_name())
                .set_key(Some(key(keys::grant_pk(tenant, email), keys::grant_sk(contact, portal))))
                .build()
                .context("Failed to build a Delete")?;
            tx.push(TxItem::Account, TransactWriteItem::builder().update(disable).build());
            tx.push(TxItem::Grant, TransactWriteItem::builder().delete(revoke_grant).build());
        }
        Ok(())
    }

    /// What an email address may open in a tenant: (contact, portal) pairs.
    /// A grant counts only while its contact is not `disabled` on its portal:
    /// a deactivation's first transaction sets that state, and its later ones
    /// delete the grants, so access ends with the first whatever the number
    /// of accounts. One strongly consistent Query of the grants, then (when
    /// there are any) one strongly consistent BatchGetItem of their contacts.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn access_of(&self, tenant: &TenantId, email: &EmailAddress) -> anyhow::Result<Vec<super::items::AccessGrantItem>> {
        let items = self.query_prefix(keys::grant_pk(tenant, email), keys::GRANT_PREFIX, false).await?;
        let grants: Vec<super::items::AccessGrantItem> = items.into_iter().map(from_item).collect::<anyhow::Result<_>>()?;
        if grants.is_empty() {
            return Ok(grants);
        }
        let mut contacts: Vec<ContactId> = grants.iter().map(|g| g.contact_id.clone()).collect();
        contacts.sort();
        contacts.dedup();
        let states = self.batch_contacts(tenant, &contacts).await?;
        Ok(grants
            .into_iter()
            .filter(|g| {
                let state = states.get(&g.contact_id).and_then(|(_, access)| access.get(g.portal_id.as_str())).map(|e| e.state);
                state != Some(PortalState::Disabled)
            })
            .collect())
    }
}

