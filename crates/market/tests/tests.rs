//! The integration tests of rampart-market, in one binary (link time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod breaker;
mod caches;
mod chain;
mod config;
mod embedded;
mod ingest;
mod resilience;
mod store;
mod support;
mod tradestation;
mod vendors;
