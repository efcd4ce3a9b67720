//! The crate's one integration-test binary (one binary keeps link time down).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod suite;
