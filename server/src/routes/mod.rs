//! Every HTTP route, one file per area.
pub mod admin;
pub mod health;
pub mod oauth;
pub mod openapi;
