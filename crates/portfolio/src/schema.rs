//! The tables the crate owns, from `migrations/tenant` (unqualified: the
//! tenant's `search_path` picks the schema). Users are rampart-auth's; this
//! crate asks `rampart_auth::directory` about them.
#![allow(missing_docs)]

diesel::table! {
    portfolios (id) {
        id -> Uuid,
        owner_id -> Uuid,
        name -> Text,
        description -> Text,
        base_currency -> Text,
        is_public -> Bool,
        settings -> Jsonb,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Every portfolio and valuation case has a row here, with its id: the
    /// versions, shares, comments and activity below belong to a document.
    documents (id) {
        id -> Uuid,
        kind -> Text,
    }
}

diesel::table! {
    document_versions (document_id, version) {
        document_id -> Uuid,
        version -> Int4,
        snapshot -> Jsonb,
        changed_by -> Nullable<Uuid>,
        change -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    positions (id) {
        id -> Uuid,
        portfolio_id -> Uuid,
        symbol -> Text,
        allocation_type -> Text,
        quantity -> Nullable<Numeric>,
        target_weight -> Nullable<Numeric>,
        purchase_price -> Nullable<Numeric>,
        purchase_date -> Nullable<Date>,
        sector -> Nullable<Text>,
        notes -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    portfolio_metrics_daily (portfolio_id, date) {
        portfolio_id -> Uuid,
        date -> Date,
        nav -> Float8,
        daily_return -> Nullable<Float8>,
        cumulative_return -> Nullable<Float8>,
        volatility_30d -> Nullable<Float8>,
        max_drawdown -> Nullable<Float8>,
    }
}

diesel::table! {
    document_shares (document_id, user_id) {
        document_id -> Uuid,
        user_id -> Uuid,
        access -> Text,
        granted_by -> Nullable<Uuid>,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    document_comments (id) {
        id -> Uuid,
        document_id -> Uuid,
        author_id -> Uuid,
        parent_id -> Nullable<Uuid>,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    document_activity (id) {
        id -> Int8,
        document_id -> Uuid,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        ip -> Nullable<Text>,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    valuation_cases (id) {
        id -> Uuid,
        owner_id -> Uuid,
        ticker -> Text,
        name -> Text,
        currency -> Text,
        version -> Int4,
        inputs -> Jsonb,
        valuation -> Jsonb,
        import_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    valuation_case_analyses (id) {
        id -> Uuid,
        case_id -> Uuid,
        version -> Int4,
        source -> Text,
        document -> Jsonb,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(positions -> portfolios (portfolio_id));
diesel::joinable!(document_activity -> documents (document_id));

diesel::allow_tables_to_appear_in_same_query!(
    documents,
    portfolios,
    document_versions,
    positions,
    portfolio_metrics_daily,
    document_shares,
    document_comments,
    document_activity,
    valuation_cases,
    valuation_case_analyses,
);
