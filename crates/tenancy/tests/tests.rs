//! Integration tests of rampart-tenancy against a real PostgreSQL started by
//! the test kit (one server per test binary, one database per test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod tenancy;
