//! Pages of the GraphQL connections: the default size and the configured
//! cap.
use async_graphql::{Context, Result};

use super::OrGql;
use super::config::GraphqlConfig;
use crate::error::ApiError;

/// The default page size of connections (as REST's lists).
pub const DEFAULT_PAGE: i32 = 20;

/// `first` checked against the configured page-size cap.
pub fn page_size(ctx: &Context<'_>, first: Option<i32>) -> Result<usize> {
    let max = ctx
        .data::<GraphqlConfig>()
        .map(|c| c.max_page_size)
        .unwrap_or(GraphqlConfig::PAGE_SIZE_CEILING);
    let first = first.unwrap_or(DEFAULT_PAGE);
    usize::try_from(first)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("first: 1 to {max}")))
        .gql()
}

/// The complexity of a page of `first` items (default [`DEFAULT_PAGE`]),
/// each costing `child`.
pub fn page_cost(first: Option<i32>, child: usize) -> usize {
    usize::try_from(first.unwrap_or(DEFAULT_PAGE))
        .unwrap_or(0)
        .saturating_mul(child)
}
