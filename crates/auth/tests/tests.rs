//! The auth crate's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod abuse;
mod accounts;
mod audit_log;
mod common;
mod directory;
mod hostile;
mod keys;
mod oauth;
mod roles;
mod tenant_policy;
mod tokens;
mod upstream;
