//! Pages of the GraphQL connections: the default size and the configured
//! cap.
use async_graphql::{Context, Result};
use rampart_auth::Permission;
use rampart_portfolio::Actor;

use super::config::GraphqlConfig;
use super::{OrGql, RequestCaller};
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

/// The caller reading a page of a portfolio-crate list: the caller, its
/// actor (needing `permission`, as REST's `AsUser<…>`) and the page size
/// ([`page_size`]).
pub fn page_reader<'a>(
    ctx: &Context<'a>,
    first: Option<i32>,
    permission: Permission,
) -> Result<(&'a RequestCaller, Actor, usize)> {
    let c = ctx.data::<RequestCaller>()?;
    let limit = page_size(ctx, first)?;
    let actor = c.portfolio_actor(permission).gql()?;
    Ok((c, actor, limit))
}

/// The complexity of a page of `first` items (default [`DEFAULT_PAGE`]),
/// each costing `child`.
pub fn page_cost(first: Option<i32>, child: usize) -> usize {
    usize::try_from(first.unwrap_or(DEFAULT_PAGE))
        .unwrap_or(0)
        .saturating_mul(child)
}
