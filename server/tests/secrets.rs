//! Integration tests of the server's secret store (Vault/OpenBao) and rate
//! limiter (Redis), against real servers from `rampart-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../src/vault.rs"]
#[allow(dead_code)]
mod vault_src;
#[path = "../src/ratelimit.rs"]
#[allow(dead_code)]
mod ratelimit_src;

#[path = "secrets/ratelimit.rs"]
mod ratelimit;
#[path = "secrets/vault.rs"]
mod vault;
