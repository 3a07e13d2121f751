//! Integration tests against the real local stack: DynamoDB Local, moto (SQS,
//! SES v2) and the local gateway, all started by `infra/run-tests`.

mod access;
mod browser;
mod bulk;
mod channels;
mod claim_checks;
mod confirmation;
mod code_loop;
mod console_browser;
mod contract;
mod deactivate_many;
mod deliveries;
mod drift;
mod events_out;
mod faults;
mod handlers;
mod hardening;
mod helpers;
mod id_token;
mod key_rotation;
mod lifecycle;
mod lifecycle_clock;
mod pages;
mod pages_browser;
mod reports;
mod scheduler;
mod validation;
