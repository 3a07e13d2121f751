//! Domain types and rules: pure, no I/O. Handlers parse raw input into these
//! types at the edge; everything inside takes them, never `&str`.

pub mod auth;
pub mod channel;
pub mod number_plan;
pub mod email;
pub mod invitation;
pub mod confirmation;
pub mod contact;
pub mod delivery;
pub mod event_out;
pub mod email_address;
pub mod guard;
pub mod identity;
pub mod id_token;
pub mod job;
pub mod keyring;
pub mod locale;
pub mod ids;
pub mod pickup_code;
pub mod page_cursor;
pub mod portal;
pub mod portlet;
pub mod queue_proof;
pub mod quota;
pub mod redacted;
pub mod report;
pub mod sealed;
pub mod tenant;
pub mod time;
pub mod web_url;

pub use auth::{AuthError, Caller, Scope};
pub use email::{EmailKind, EmailStatus, MailJob};
pub use invitation::InvitationState;
pub use contact::{Contact, ContactKind};
pub use email_address::EmailAddress;
pub use channel::{Channel, PhoneNumber, Recipient};
pub use locale::Locale;
pub use identity::{Fact, FactHashes};
pub use ids::{ContactId, DocumentId, GroupId, IntegrationId, JobId, PortalId, TenantId};
pub use pickup_code::{CodeHash, CodeHasher, PickupCode};
pub use portal::Portal;
pub mod access_state;
pub mod link_token;
pub use access_state::{AccessEntry, Method, PortalState};
pub use link_token::LinkToken;
