//! The server's integration tests, one binary: the real server (as
//! `rampart serve` builds and starts it) over TLS, against real PostgreSQL,
//! and, where a test needs them, OpenBao, Redis, an SMTP server, an OpenID
//! provider, Python clients (Authlib, schemathesis) and headless Chromium,
//! all from `rampart-testkit` and the project's `.venv` / `.cache/node`.
//! `common` holds the setup they share.
//!
//! One module a subject: `cargo test -p rampart-server --test tests oauth::`
//! runs one of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_docs
)]

mod common;

mod abuse;
mod account;
mod admin_page;
mod api;
mod attacks;
mod audit_log;
mod auth_abuse;
mod cases;
mod demo;
mod demo_members;
mod faults;
mod graphql;
mod http;
mod idps;
mod invitations;
mod journey;
mod load;
mod market_cli;
mod member_page;
mod members;
mod mtls;
mod notify;
mod oauth;
mod pages;
mod portfolios;
mod ratelimit;
mod replicas;
mod roles;
mod schemathesis;
mod settings;
mod store_tls;
mod telemetry;
mod tradestation;
mod users;
mod vault;
