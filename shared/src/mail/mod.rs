//! Email: templates, their rendering, and the SES v2 adapter with its retry
//! policy. (The kinds and the queue's job are domain words: [`crate::domain::email`].)

pub mod bounds;
pub mod retry;
pub mod ses;
pub mod sns;
pub mod templates;

pub use crate::domain::email::{EmailKind, EmailStatus, MailJob};
pub use templates::{render, RenderedEmail, TemplateVars};
