//! Integration tests of the server's secret store (Vault/OpenBao) and rate
//! limiter (Redis), against real servers from `rampart-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "secrets/ratelimit.rs"]
mod ratelimit;
#[path = "secrets/vault.rs"]
mod vault;
