//! Faults (issue "Hardening"), injected at the network, never by mocking our
//! own code: a proxy ([`fault_proxy`]) in front of moto (SES v2) or DynamoDB
//! Local answers chosen requests with the error AWS would send, and a
//! DynamoDB Local of the test's own is stopped and started again in the
//! middle of a bulk job, or paused; a tenant runs over its sending quota. One file per fault; [`harness`] holds what they share.

mod cancelled_transactions;
mod dynamodb_restart;
pub(crate) mod fault_proxy;
pub(crate) mod harness;
mod mail_job_twice;
mod paused_dynamodb;
mod sending_quota;
mod ses_errors;
