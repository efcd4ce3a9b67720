//! # rampart-server
//!
//! The Rampart reference server: it assembles the library crates behind
//! actix-web with rustls (public listener, and an admin listener that
//! requires client certificates), secrets from Vault, Prometheus metrics,
//! rate limits and the REST API — plus the `rampart` operator commands.
//!
//! `main.rs` only parses the command line and calls [`cli::run`]; tests use
//! the same modules.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin_console;
pub mod analytics_cache;
pub mod analytics_cmd;
pub mod api;
pub mod app;
pub mod audit_cmd;
pub mod broker_crypto;
pub mod cidr;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod demo;
pub mod demo_members;
pub mod error;
pub mod extract;
pub mod graphql;
pub mod idp_config;
pub mod idp_secrets;
pub mod idps_cmd;
pub mod jobs;
pub mod keys_cmd;
pub mod listeners;
pub mod live_quotes;
pub mod market_cmd;
pub mod meta;
pub mod metrics;
pub mod middleware;
pub mod onboard_cmd;
pub mod onboarding;
pub mod openapi;
pub mod pages;
pub mod portfolio_analysis;
pub mod readiness;
pub mod routes;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod tenants_cmd;
pub mod tls;
pub mod tradestation;
pub mod upstream_sealer;
pub mod vault_keys;
pub mod weekly_report;
