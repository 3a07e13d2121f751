//! The table's change stream read as state changes (`domain::event_out`):
//! one stream record (the item before and after one committed write) gives
//! the events of that write. Pure: item images in, events out.
//!
//! | item (sk) | change | event |
//! |---|---|---|
//! | code or link (`CONTACT#CODE#…`) | created pending | `invitation.issued` |
//! | | pending → claimed, locked, expired, revoked | `invitation.claimed` / `.locked` / `.expired` / `.revoked` |
//! | email log entry (`EMAIL#…`) | → sent | `invitation.emailed` (pickup code, link, reminder, reactivation), `claim.confirmation_sent`, else `email.sent` |
//! | | delivery status → delivered, bounced, complained | `email.delivered` / `.bounced` / `.complained` |
//! | contact (`CONTACT`) | a portal's state → disabled | `contact.deactivated` (one per portal) |
//! | bulk job (`JOB`) | → done | `bulk_job.done` |
//!
//! Everything else (accounts, audit, lookups, counters, a change that moves
//! no state) gives nothing. An event's id is the stream record's (stable
//! across retries), with the portal appended where one record gives several.

use super::items::{CodeItem, ContactItem, EmailItem, JobItem};
use super::keys;
use crate::domain::delivery::{BounceKind, DeliveryStatus};
use crate::domain::event_out::{EventType, JobCounts, OutEvent};
use crate::domain::job::JobState;
use crate::domain::{EmailKind, EmailStatus, InvitationState, PortalState, TenantId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

/// An item image as the stream carries it.
pub type Image = serde_dynamo::Item;

/// One stream record: its id, when it was written, and the item before and after.
pub struct Change<'a> {
    pub event_id: &'a str,
    pub at: DateTime<Utc>,
    pub old: Option<&'a Image>,
    pub new: Option<&'a Image>,
}

fn text<'a>(image: &'a Image, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn typed<T: DeserializeOwned>(image: Option<&Image>) -> Option<T> {
    image.and_then(|i| serde_dynamo::from_item(i.clone()).ok())
}

/// `T#{tenant}#…` → the tenant.
fn tenant_of(pk: &str) -> Option<TenantId> {
    let rest = pk.strip_prefix("T#")?;
    TenantId::parse(rest.split('#').next()?).ok()
}

/// The events of one committed write.
pub fn events_of(change: &Change<'_>) -> Vec<OutEvent> {
    let Some(image) = change.new.or(change.old) else { return Vec::new() };
    let (Some(pk), Some(sk)) = (text(image, "pk"), text(image, "sk")) else { return Vec::new() };
    let Some(tenant) = tenant_of(pk) else { return Vec::new() };
    let event = |kind| OutEvent::new(change.event_id.to_owned(), kind, tenant.clone(), change.at);
    if sk.starts_with(keys::CODE_PREFIX) {
        let (old, new) = (typed::<CodeItem>(change.old), typed::<CodeItem>(change.new));
        let Some(new) = new else { return Vec::new() };
        let kind = match (old.map(|o| o.state), new.state) {
            (None, InvitationState::Pending) => EventType::InvitationIssued,
            (Some(before), after) if before == after => return Vec::new(),
            (_, InvitationState::Claimed) => EventType::InvitationClaimed,
            (_, InvitationState::Locked) => EventType::InvitationLocked,
            (_, InvitationState::Expired) => EventType::InvitationExpired,
            (_, InvitationState::Revoked) => EventType::InvitationRevoked,
            (_, InvitationState::Pending) => return Vec::new(),
        };
        let mut e = event(kind);
        e.contact_id = new.contact_id();
        e.portal_id = Some(new.portal_id.clone());
        e.method = Some(new.method.as_str());
        e.expires_at = Some(new.expires_at);
        return vec![e];
    }
    if sk.starts_with(keys::EMAIL_PREFIX) {
        let (old, new) = (typed::<EmailItem>(change.old), typed::<EmailItem>(change.new));
        let Some(new) = new else { return Vec::new() };
        let was_sent = old.as_ref().is_some_and(|o| o.status == EmailStatus::Sent);
        let kind = if new.status == EmailStatus::Sent && !was_sent {
            match new.kind {
                EmailKind::PickupCode | EmailKind::ActivationLink | EmailKind::Reminder | EmailKind::Reactivation => EventType::InvitationEmailed,
                EmailKind::ClaimConfirmation => EventType::ClaimConfirmationSent,
                EmailKind::Deactivation | EmailKind::AccountAdded => EventType::EmailSent,
            }
        } else if new.delivery_status != old.as_ref().and_then(|o| o.delivery_status) {
            match new.delivery_status {
                Some(DeliveryStatus::Delivered) => EventType::EmailDelivered,
                Some(DeliveryStatus::Bounced) => EventType::EmailBounced,
                Some(DeliveryStatus::Complained) => EventType::EmailComplained,
                Some(DeliveryStatus::DeliveryDelayed) | None => return Vec::new(),
            }
        } else {
            return Vec::new();
        };
        let mut e = event(kind);
        e.contact_id = Some(new.contact_id.clone());
        e.portal_id = Some(new.portal_id.clone());
        e.document_id = Some(new.document_id.clone());
        e.email_kind = Some(new.kind.as_str());
        e.channel = Some(new.to.channel().as_str());
        if kind == EventType::EmailBounced {
            let hard = new.delivery_events.iter().any(|r| r.status == DeliveryStatus::Bounced && r.bounce == Some(BounceKind::Hard));
            e.bounce = Some(if hard { "hard" } else { "soft" });
        }
        return vec![e];
    }
    if sk == keys::CONTACT_SK {
        let (old, new) = (typed::<ContactItem>(change.old), typed::<ContactItem>(change.new));
        let Some(new) = new else { return Vec::new() };
        let state_before = |portal: &str| old.as_ref().and_then(|o| o.access.get(portal)).map(|a| a.state);
        return new
            .access
            .iter()
            .filter(|(portal, entry)| entry.state == PortalState::Disabled && state_before(portal) != Some(PortalState::Disabled))
            .filter_map(|(portal, _)| {
                let mut e = OutEvent::new(format!("{}:{portal}", change.event_id), EventType::ContactDeactivated, tenant.clone(), change.at);
                e.contact_id = Some(new.contact_id.clone());
                e.portal_id = Some(crate::domain::PortalId::parse(portal).ok()?);
                Some(e)
            })
            .collect();
    }
    if sk == super::jobs::JOB_SK {
        let (old, new) = (typed::<JobItem>(change.old), typed::<JobItem>(change.new));
        let Some(new) = new else { return Vec::new() };
        if new.state != JobState::Done || old.is_some_and(|o| o.state == JobState::Done) {
            return Vec::new();
        }
        let mut e = event(EventType::BulkJobDone);
        e.job_id = Some(new.job_id.clone());
        e.portal_id = new.portal_id.clone();
        e.method = new.method.map(|m| m.as_str());
        e.counts = Some(JobCounts {
            total: new.total,
            activated: new.activated,
            skipped_no_email: new.skipped_no_email,
            skipped_already_active: new.skipped_already_active,
            skipped_missing_facts: new.skipped_missing_facts,
            skipped_suppressed: new.skipped_suppressed,
            failed: new.failed,
        });
        return vec![e];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactId, EmailAddress, Method, PortalId};

    fn at() -> DateTime<Utc> {
        "2026-12-03T10:00:00Z".parse().unwrap()
    }

    fn image<T: serde::Serialize>(item: &T) -> Image {
        serde_dynamo::to_item(item).unwrap()
    }

    fn code(state: InvitationState) -> CodeItem {
        let t = TenantId::parse("t1").unwrap();
        let c = ContactId::parse("c1").unwrap();
        let p = PortalId::parse("main").unwrap();
        let hash = crate::domain::CodeHash::from_stored("ab".repeat(32));
        CodeItem {
            pk: keys::contact_pk(&t, &c),
            sk: keys::code_sk(&p, &hash),
            portal_id: p,
            method: Method::Code,
            code_hash: hash,
            code: None,
            state,
            created_at: at(),
            expires_at: at(),
            email_document_id: None,
            sent_by: Vec::new(),
            created_by: "staff".into(),
            contact_name: String::new(),
            gsi2pk: None,
            gsi2sk: None,
            reminder_sent_at: None,
        }
    }

    fn kinds(change: &Change<'_>) -> Vec<&'static str> {
        events_of(change).iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_code_issued_then_claimed_is_two_events_and_a_rewrite_none() {
        let (pending, claimed) = (image(&code(InvitationState::Pending)), image(&code(InvitationState::Claimed)));
        let issued = Change { event_id: "e1", at: at(), old: None, new: Some(&pending) };
        let events = events_of(&issued);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::InvitationIssued);
        assert_eq!(events[0].tenant_id.as_str(), "t1");
        assert_eq!(events[0].contact_id.as_ref().map(|c| c.as_str()), Some("c1"));
        assert_eq!(events[0].event_id, "e1");
        assert_eq!(kinds(&Change { event_id: "e2", at: at(), old: Some(&pending), new: Some(&claimed) }), ["invitation.claimed"]);
        assert!(kinds(&Change { event_id: "e3", at: at(), old: Some(&pending), new: Some(&pending) }).is_empty());
        assert!(kinds(&Change { event_id: "e4", at: at(), old: Some(&pending), new: None }).is_empty(), "a delete is no state change");
        let json = serde_json::to_value(&events[0]).unwrap();
        assert!(json.get("code").is_none() && json.get("code_hash").is_none(), "no secret in an event: {json}");
    }

    #[test]
    fn an_email_sent_then_bounced() {
        let t = TenantId::parse("t1").unwrap();
        let c = ContactId::parse("c1").unwrap();
        let to = EmailAddress::parse("ann@example.org").unwrap();
        let mut e = EmailItem::queued(&t, &c, &PortalId::parse("main").unwrap(), EmailKind::PickupCode, &to, Default::default(), at());
        let queued = image(&e);
        e.status = EmailStatus::Sent;
        let sent = image(&e);
        e.delivery_status = Some(DeliveryStatus::Bounced);
        e.delivery_events = vec![crate::domain::delivery::DeliveryRecord {
            id: "fb".into(),
            status: DeliveryStatus::Bounced,
            at: at(),
            bounce: Some(BounceKind::Hard),
            diagnostic: None,
        }];
        let bounced = image(&e);
        assert!(kinds(&Change { event_id: "a", at: at(), old: None, new: Some(&queued) }).is_empty());
        assert_eq!(kinds(&Change { event_id: "b", at: at(), old: Some(&queued), new: Some(&sent) }), ["invitation.emailed"]);
        let ev = events_of(&Change { event_id: "c", at: at(), old: Some(&sent), new: Some(&bounced) });
        assert_eq!((ev[0].kind, ev[0].bounce), (EventType::EmailBounced, Some("hard")));
        let json = serde_json::to_string(&ev[0]).unwrap();
        assert!(!json.contains("ann@example.org"), "no address in an event: {json}");
    }
}
