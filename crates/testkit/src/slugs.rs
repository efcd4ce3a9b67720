//! Tenant slugs for tests: the library APIs take a validated
//! [`TenantSlug`], and a test names its tenants by literal.

use rampart_tenancy::TenantSlug;

/// A tenant slug the test knows to be valid; panics (failing the test)
/// when it is not.
pub fn valid_slug(s: &str) -> TenantSlug {
    TenantSlug::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The tenant `acme`.
pub fn acme() -> TenantSlug {
    valid_slug("acme")
}

/// The tenant `globex`.
pub fn globex() -> TenantSlug {
    valid_slug("globex")
}
