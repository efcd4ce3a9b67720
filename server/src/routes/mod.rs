//! Every HTTP route, one file per area.
pub mod admin;
pub mod api_v1;
pub mod health;
pub mod members;
pub mod oauth;
pub mod openapi;
pub mod portfolios;
