//! diesel's view of the tables this crate owns, written from
//! `migrations/platform` (keep the two in step: the test at the
//! end of this file compares them with a migrated database).
//!
//! The registry tables live in the fixed `platform` schema and are named with
//! it, because registry work runs on plain pool connections whose
//! `search_path` is the default. The migration ledger is unqualified: it is
//! read in whichever schema the `search_path` routes to (a tenant's, the
//! template's or `platform`).

diesel::table! {
    /// One row per tenant.
    platform.tenants (id) {
        id -> Uuid,
        slug -> Text,
        display_name -> Text,
        status -> Text,
        schema_name -> Text,
        role_name -> Text,
        settings -> Jsonb,
        feature_flags -> Jsonb,
        is_canary -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        suspended_at -> Nullable<Timestamptz>,
        deactivated_at -> Nullable<Timestamptz>,
        retention_deadline -> Nullable<Timestamptz>,
        purged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Per-tenant migration state (one row per tenant).
    platform.tenant_migrations (tenant_id) {
        tenant_id -> Uuid,
        version -> Text,
        checksum -> Text,
        status -> Text,
        error -> Nullable<Text>,
        attempts -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The provisioning and lifecycle event log.
    platform.tenant_events (id) {
        id -> Int8,
        tenant_id -> Nullable<Uuid>,
        slug -> Text,
        event -> Text,
        detail -> Jsonb,
        actor -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Checkout counters flushed from memory.
    platform.tenant_usage (tenant_id) {
        tenant_id -> Uuid,
        checkouts -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Changes made through the admin listener.
    platform.admin_audit (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        subject -> Text,
        sans -> Array<Text>,
        fingerprint -> Text,
        method -> Text,
        route -> Text,
        path -> Text,
        status -> Int4,
        request_id -> Text,
        ip -> Nullable<Text>,
    }
}

diesel::table! {
    /// Changes of tenants' data that replicas cache, announced through
    /// `platform_tenant_api.announce_change` ([`crate::ChangeFeed`]).
    platform.tenant_changes (id) {
        id -> Int8,
        xact -> Int8,
        tenant_id -> Uuid,
        topic -> Text,
        changed_at -> Timestamptz,
    }
}

diesel::table! {
    /// Tenant schemas built ahead of demand ([`crate::TenantPool::replenish_spares`]).
    platform.tenant_spares (schema_name) {
        schema_name -> Text,
        role_name -> Text,
        version -> Text,
        checksum -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// diesel's migration ledger, in the schema on the `search_path`.
    __diesel_schema_migrations (version) {
        version -> Varchar,
        run_on -> Timestamp,
    }
}

diesel::joinable!(tenant_migrations -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, tenant_migrations);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tables_match_the_migrations() {
        rampart_testkit::assert_tenant_schema!(
            crate,
            [__diesel_schema_migrations],
            [
                tenants,
                tenant_migrations,
                tenant_events,
                tenant_usage,
                admin_audit,
                tenant_changes,
                tenant_spares
            ]
        );
    }
}
