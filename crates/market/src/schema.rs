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
        open -> Float8,
        high -> Float8,
        low -> Float8,
        close -> Float8,
        adj_close -> Nullable<Float8>,
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
        price -> Float8,
        previous_close -> Nullable<Float8>,
        bid -> Nullable<Float8>,
        ask -> Nullable<Float8>,
        volume -> Nullable<Int8>,
        currency -> Nullable<Text>,
        as_of -> Timestamptz,
        source -> Text,
        fetched_at -> Timestamptz,
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

    use diesel::pg::Pg;
    use diesel::{QueryDsl, debug_query};
    use rampart_testkit::schema_check::assert_columns;

    use super::*;

    #[tokio::test]
    async fn tables_match_the_migrations() {
        let db = rampart_testkit::fresh_database().await.unwrap();
        crate::StoreProvider::connect(&db.url, 1).await.unwrap();
        for select in [
            debug_query::<Pg, _>(&prices_daily::table.select(prices_daily::all_columns))
                .to_string(),
            debug_query::<Pg, _>(&fetched_ranges::table.select(fetched_ranges::all_columns))
                .to_string(),
            debug_query::<Pg, _>(&quotes_latest::table.select(quotes_latest::all_columns))
                .to_string(),
            debug_query::<Pg, _>(&schema_migrations::table.select(schema_migrations::all_columns))
                .to_string(),
        ] {
            assert_columns(&db.url, "market", &select).await;
        }
    }
}
