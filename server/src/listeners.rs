//! Which route modules each listener serves, in registration order.
//!
//! Kept outside `crate::routes` so that no route module imports another:
//! `crate::app` registers these lists and `crate::openapi` builds the
//! document from the same registration.
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::routes::{
    account, admin, admin_page, api_v1, cases, clients, connections, health, idps, invitations,
    market_api, market_stream, member_page, members, notify, oauth, portfolios, roles, settings,
    stream, tenant_audit, tradestation, users,
};

/// A route module's registration function.
pub type Configure = fn(&mut ServiceConfig);

/// `(tag, configure)` pairs: the tag is `crate::routes::<module>`, the tag
/// of the module's operations in the document.
macro_rules! modules {
    ($($module:ident :: $configure:ident),* $(,)?) => {
        &[$((
            concat!("crate::routes::", stringify!($module)),
            $module::$configure as Configure,
        )),*]
    };
}

/// Where the tenant API modules are mounted: one scope, so the router
/// matches `{tenant}` once and the modules' paths below it are mostly
/// static (a string comparison each instead of a regex).
pub const TENANT_API: &str = "/api/v1/t/{tenant}";

/// The public listener's route modules outside [`TENANT_API`], in
/// registration order (actix tries the routes in that order; GraphQL,
/// which needs the configuration, comes after them, see `crate::app`).
pub const PUBLIC: &[(&str, Configure)] = modules![
    health::configure,
    // The `/t/{tenant}/…` pages, then OAuth's `/t/{tenant}` scope, which
    // takes every other `/t/{tenant}/…` path.
    admin_page::configure_pages,
    member_page::configure,
    invitations::configure_pages,
    oauth::configure,
];

/// The public listener's modules under [`TENANT_API`] (their paths are
/// relative to it), in registration order.
pub const PUBLIC_TENANT_API: &[(&str, Configure)] = modules![
    admin_page::configure,
    invitations::configure,
    stream::configure,
    market_stream::configure,
    portfolios::configure,
    cases::configure,
    api_v1::configure,
    notify::configure,
    users::configure,
    market_api::configure,
    tradestation::configure,
    connections::configure,
    account::configure,
    members::configure,
    settings::configure,
    tenant_audit::configure,
    roles::configure,
    clients::configure,
    idps::configure,
];

/// The admin listener's route modules, in registration order.
pub const ADMIN: &[(&str, Configure)] = modules![
    health::configure,
    admin::configure,
    members::configure_admin,
    portfolios::configure_admin,
    market_api::configure_admin,
    settings::configure_admin,
    tenant_audit::configure_admin,
    clients::configure_admin,
    idps::configure_admin,
];

/// Registers `modules` in order.
fn configure_all(cfg: &mut ServiceConfig, modules: &[(&str, Configure)]) {
    for (_, configure) in modules {
        configure(cfg);
    }
}

/// The public listener's routes: [`PUBLIC_TENANT_API`] in one
/// [`TENANT_API`] scope, then [`PUBLIC`]. The scope goes first: its static
/// `/api/v1/t/` start overlaps none of [`PUBLIC`]'s paths, and an API
/// request (most of the traffic) is then matched by one pattern instead of
/// first failing the eleven `/t/{tenant}/…` page patterns.
pub fn configure_public(cfg: &mut ServiceConfig) {
    cfg.service(scope(TENANT_API).configure(|c| configure_all(c, PUBLIC_TENANT_API)));
    configure_all(cfg, PUBLIC);
}

/// The admin listener's routes.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    configure_all(cfg, ADMIN);
}

/// Every module of both listeners: `(tag, scope it is mounted under,
/// configure)`, for the document.
pub fn mounted() -> impl Iterator<Item = (&'static str, Option<&'static str>, Configure)> {
    let plain = PUBLIC.iter().chain(ADMIN).map(|(t, c)| (*t, None, *c));
    let scoped = PUBLIC_TENANT_API
        .iter()
        .map(|(t, c)| (*t, Some(TENANT_API), *c));
    plain.chain(scoped)
}
