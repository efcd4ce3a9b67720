//! diesel's view of the tenant tables this crate owns, written from
//! `migrations/tenant/*_notify` (keep the two in step: the test at the
//! end of this file compares them with a migrated database).
//!
//! Unqualified by schema: they are used inside `TenantPool::with_tenant`,
//! whose `search_path` is the tenant's schema.

diesel::table! {
    /// Single-use e-mail tokens (only the secret's SHA-256 is stored).
    email_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        purpose -> Text,
        secret_hash -> Bytea,
        email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// The devices each user has logged in from.
    known_devices (id) {
        id -> Uuid,
        user_id -> Uuid,
        fingerprint -> Bytea,
        label -> Text,
        ip_prefix -> Text,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    /// Sessions already looked at by the new-device check.
    login_device_checks (session_id) {
        session_id -> Uuid,
        checked_at -> Timestamptz,
    }
}

diesel::table! {
    /// Price alerts.
    price_alerts (id) {
        id -> Uuid,
        user_id -> Uuid,
        symbol -> Text,
        direction -> Text,
        threshold -> Numeric,
        note -> Text,
        created_at -> Timestamptz,
        triggered_at -> Nullable<Timestamptz>,
        triggered_price -> Nullable<Numeric>,
    }
}

diesel::table! {
    /// Every message sent (or not), without its body.
    sent_emails (id) {
        id -> Int8,
        user_id -> Nullable<Uuid>,
        kind -> Text,
        recipient -> Text,
        subject -> Text,
        sent_at -> Timestamptz,
        error -> Nullable<Text>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tables_match_the_migrations() {
        rampart_testkit::assert_tenant_schema!(
            rampart_tenancy,
            [
                email_tokens,
                known_devices,
                login_device_checks,
                price_alerts,
                sent_emails
            ],
            []
        );
    }
}
