//! diesel's view of the tables this crate owns, written from
//! `migrations/market` (keep the two in step: the test at the
//! end of this file compares them with a migrated database).
//!
//! Market data is shared by every tenant, so the tables live in the fixed
//! `market` schema and are named with it.

diesel::table! {
    /// Daily OHLCV bars (the L3 cache; permanent).
    market.prices_daily (symbol, date) {
        symbol -> Text,
        date -> Date,
        open -> Numeric,
        high -> Numeric,
        low -> Numeric,
        close -> Numeric,
        adj_close -> Nullable<Numeric>,
        volume -> Int8,
        source -> Text,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    /// Date ranges already fetched from a provider, holidays included.
    market.fetched_ranges (symbol, first_date, last_date) {
        symbol -> Text,
        first_date -> Date,
        last_date -> Date,
        source -> Text,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    /// The last quote fetched per symbol.
    market.quotes_latest (symbol) {
        symbol -> Text,
        price -> Numeric,
        previous_close -> Nullable<Numeric>,
        bid -> Nullable<Numeric>,
        ask -> Nullable<Numeric>,
        volume -> Nullable<Int8>,
        currency -> Nullable<Text>,
        as_of -> Timestamptz,
        source -> Text,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    /// Instruments as vendors describe them (search and symbol lookups).
    market.instruments (symbol) {
        symbol -> Text,
        name -> Text,
        exchange -> Nullable<Text>,
        asset_type -> Nullable<Text>,
        source -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The migrations applied to the `market` schema (created by
    /// `StoreProvider::migrate` itself).
    market.schema_migrations (version) {
        version -> Text,
        applied_at -> Timestamptz,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rampart_testkit::all_columns_sql;
    use rampart_testkit::schema_check::assert_tables;

    use super::*;

    #[tokio::test]
    async fn tables_match_the_migrations() {
        let market_tables = all_columns_sql!(
            prices_daily,
            fetched_ranges,
            quotes_latest,
            instruments,
            schema_migrations
        );
        let db = rampart_testkit::fresh_database().await.unwrap();
        crate::StoreProvider::connect(&db.url, 1).await.unwrap();
        assert_tables(&db.url, "market", &market_tables).await;
    }
}
