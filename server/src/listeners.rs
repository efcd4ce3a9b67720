//! Which route modules each listener serves, in registration order.
//!
//! Kept outside `crate::routes` so that no route module imports another:
//! `crate::app` registers these lists and `crate::openapi` builds the
//! document from the same registration.
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

/// The public listener's route modules, in registration order (actix tries
/// the routes in that order; GraphQL, which needs the configuration, comes
/// after them, see `crate::app`).
pub const PUBLIC: &[(&str, Configure)] = modules![
    health::configure,
    // The `/t/{tenant}/…` pages first, then OAuth's `/t/{tenant}` scope,
    // which takes every other `/t/{tenant}/…` path: the router tries
    // resources in order (a regex each), so the token endpoint is found
    // after ~20 candidates instead of every `/api/v1` route. No pattern of
    // one group can match a path of the other; within each group the
    // order is as it was.
    admin_page::configure,
    member_page::configure,
    invitations::configure,
    oauth::configure,
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
pub fn configure_all(cfg: &mut ServiceConfig, modules: &[(&str, Configure)]) {
    for (_, configure) in modules {
        configure(cfg);
    }
}
