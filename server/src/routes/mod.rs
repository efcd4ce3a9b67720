//! Every HTTP route, one file per area.
//!
//! Each module's `configure` (and `configure_admin`) registers its handlers
//! as services (`#[get("…")]` and friends under `#[utoipa::path]`) on a
//! [`utoipa_actix_web`] service config, so the same registration that
//! routes the requests collects the operations of the OpenAPI document
//! ([`crate::openapi`]). `crate::listeners` lists the modules of each
//! listener in registration order; `crate::app` and `crate::openapi` both
//! read that list, so no route module names another. What the document leaves out (the HTML pages, the OAuth 2.1 /
//! OpenID Connect endpoints) stays plain `.route`s
//! through the wrapper's passthrough.
pub mod account;
pub mod admin;
pub mod admin_page;
pub mod api_v1;
pub mod cases;
pub mod clients;
pub mod connections;
pub mod health;
pub mod idps;
pub mod invitations;
pub mod market_api;
pub mod market_stream;
pub mod member_page;
pub mod members;
pub mod notify;
pub mod oauth;
pub mod portfolios;
pub mod roles;
pub mod settings;
pub mod stream;
pub mod tenant_audit;
pub mod tradestation;
pub mod users;
