//! `[graphql]` of the server configuration: the limits of the GraphQL
//! endpoint and whether it answers introspection.
use serde::{Deserialize, Serialize};

/// The protection of `POST /api/graphql/t/{tenant}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlConfig {
    /// Deepest nesting of selections a query may have.
    pub max_depth: usize,
    /// Largest complexity a query may have: each field counts 1, and a
    /// list page counts its fields once per item it may hold (`first`).
    pub max_complexity: usize,
    /// Largest page (`first`) of a connection; a larger one is refused.
    pub max_page_size: usize,
    /// Answer introspection (`__schema`, `__type`). Unset: on in dev mode,
    /// off in production mode.
    pub introspection: Option<bool>,
    /// Automatic persisted queries (Apollo's `persistedQuery` extension):
    /// how many parsed documents an in-memory LRU keeps per server, keyed by
    /// their SHA-256. 0 (the default): off, a `persistedQuery` extension is
    /// ignored and every request must carry its `query`.
    pub persisted_queries: usize,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 2_000,
            max_page_size: 100,
            introspection: None,
            persisted_queries: 0,
        }
    }
}

impl GraphqlConfig {
    /// The most a page may hold, whatever the configuration says (the
    /// portfolio crate's own page cap).
    pub const PAGE_SIZE_CEILING: usize = 100;

    /// The most persisted documents kept in memory.
    pub const PERSISTED_QUERIES_CEILING: usize = 100_000;

    /// A problem with these values, if any.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_depth == 0 || self.max_complexity == 0 {
            return Err("graphql: max_depth and max_complexity must be at least 1".to_owned());
        }
        if self.persisted_queries > Self::PERSISTED_QUERIES_CEILING {
            return Err(format!(
                "graphql.persisted_queries: 0 to {}",
                Self::PERSISTED_QUERIES_CEILING
            ));
        }
        if !(1..=Self::PAGE_SIZE_CEILING).contains(&self.max_page_size) {
            return Err(format!(
                "graphql.max_page_size: 1 to {}",
                Self::PAGE_SIZE_CEILING
            ));
        }
        Ok(())
    }

    /// Whether introspection is answered in `mode`.
    pub fn introspection_in(&self, production: bool) -> bool {
        self.introspection.unwrap_or(!production)
    }
}
