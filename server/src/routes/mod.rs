//! Every HTTP route, one file per area.
pub mod account;
pub mod admin;
pub mod admin_page;
pub mod api_v1;
pub mod clients;
pub mod health;
pub mod invitations;
pub mod market_api;
pub mod members;
pub mod notify;
pub mod oauth;
pub mod openapi;
pub mod portfolios;
pub mod settings;
pub mod stream;
pub mod tenant_audit;
pub mod users;
