//! The tables the crate owns, from `migrations/tenant` (unqualified: the
//! tenant's `search_path` picks the schema). Members are rampart-auth's
//! users; this crate reads and changes them through `rampart_auth::directory`.
#![allow(missing_docs)]

diesel::table! {
    broker_accounts (id) {
        id -> Uuid,
        user_id -> Uuid,
        broker -> Text,
        is_paper -> Bool,
        sealed_credentials -> Text,
        attached_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    portfolio_snapshots (id) {
        id -> Int8,
        user_id -> Uuid,
        broker_account_id -> Uuid,
        snapshot_date -> Date,
        equity -> Numeric,
        cash -> Numeric,
        last_equity -> Numeric,
        daily_pnl -> Numeric,
        daily_return -> Nullable<Float8>,
        positions -> Jsonb,
        taken_at -> Timestamptz,
    }
}

diesel::table! {
    leaderboard_daily (user_id, date) {
        user_id -> Uuid,
        broker_account_id -> Uuid,
        date -> Date,
        equity -> Numeric,
        last_equity -> Numeric,
        daily_pnl -> Numeric,
        daily_return -> Nullable<Float8>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    import_previews (id) {
        id -> Uuid,
        digest -> Text,
        plan -> Jsonb,
        created_by -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        committed_at -> Nullable<Timestamptz>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    broker_accounts,
    portfolio_snapshots,
    leaderboard_daily,
    import_previews,
);

diesel::table! {
    /// The last slot each scheduled job was claimed for (`migrations/platform`),
    /// named with its schema: the scheduler works on plain pool connections.
    platform.job_slots (job) {
        job -> Text,
        last_slot -> Timestamptz,
        claimed_at -> Timestamptz,
    }
}
