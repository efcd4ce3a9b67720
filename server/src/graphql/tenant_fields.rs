//! Valuation cases, members (for admins) and a portfolio's chart URLs: each
//! requiring what its REST route requires and calling the same crate
//! service ([`CaseService`], [`rampart_members::Members`]).
use async_graphql::connection::Connection;
use async_graphql::{Context, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use rampart_auth::Permission;
use rampart_members::Member;
use rampart_portfolio::{Case, CaseService, Page};
use uuid::Uuid;

use super::paging::{page_reader, page_size};
use super::portfolio_fields::{Access, connection};
use super::{OrGql, RequestCaller};
use crate::error::ApiError;
use crate::extract::{decode_cursor_bytes, encode_cursor};

/// An EPV valuation case the caller may see (as `GET …/cases/{id}`).
#[derive(SimpleObject)]
#[graphql(name = "ValuationCase")]
pub struct CaseNode {
    id: Uuid,
    owner_id: Uuid,
    ticker: String,
    name: String,
    currency: String,
    /// Current version (each change makes one, valued anew).
    version: i32,
    /// The valuation inputs of the current version (JSON, decimals as strings).
    inputs: Json<serde_json::Value>,
    /// The valuation of the current version (JSON, decimals as strings).
    valuation: Json<serde_json::Value>,
    /// The caller's access.
    access: Access,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Case> for CaseNode {
    fn from(c: Case) -> Self {
        CaseNode {
            id: c.id.into(),
            owner_id: c.owner_id.into(),
            ticker: c.ticker,
            name: c.name,
            currency: c.currency,
            version: c.version,
            inputs: Json(c.inputs),
            valuation: Json(c.valuation),
            access: c.access.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A member of the tenant (as `GET …/admin/members`; broker keys never).
#[derive(SimpleObject)]
#[graphql(name = "Member")]
pub struct MemberNode {
    id: Uuid,
    name: String,
    email: String,
    role: String,
    /// `active`, `pending` or `disabled`.
    status: String,
    broker_attached: bool,
    leaderboard_opt_out: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Member> for MemberNode {
    fn from(m: Member) -> Self {
        MemberNode {
            id: m.id.into(),
            name: m.name,
            email: m.email,
            role: m.role,
            status: m.status,
            broker_attached: m.broker_attached,
            leaderboard_opt_out: m.leaderboard_opt_out,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Where a portfolio's charts are drawn (SVG, same bearer token).
#[derive(SimpleObject)]
pub struct ChartUrls {
    /// `…/charts/equity.svg`.
    equity: String,
    /// `…/charts/returns.svg`.
    returns: String,
    /// `…/charts/fan.svg` (the `monteCarlo` flag).
    fan: String,
}

/// `cases(first, after)`: as `GET …/cases`.
pub async fn cases(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, CaseNode>> {
    let (c, actor, limit) = page_reader(ctx, first, Permission::CasesRead)?;
    let svc = CaseService::new(c.state().tenants.clone());
    let page = svc.list(c.tenant(), &actor, after.as_deref(), limit);
    let cursor = |c: &Case| c.id.to_string();
    Ok(connection(after.as_deref(), page.await.gql()?, cursor))
}

/// `case(id)`: as `GET …/cases/{id}`.
pub async fn case(ctx: &Context<'_>, id: Uuid) -> Result<CaseNode> {
    let c = ctx.data::<RequestCaller>()?;
    let actor = c.portfolio_actor(Permission::CasesRead).gql()?;
    let svc = CaseService::new(c.state().tenants.clone());
    Ok(svc.get(c.tenant(), &actor, id.into()).await.gql()?.into())
}

/// `members(first, after)`: as `GET …/admin/members` (`users:manage`), by
/// email; the cursor is REST's.
pub async fn members(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, MemberNode>> {
    let c = ctx.data::<RequestCaller>()?;
    c.require(Permission::UsersManage).gql()?;
    let limit = page_size(ctx, first)?;
    let email = after
        .as_deref()
        .map(|a| {
            decode_cursor_bytes(a).and_then(|b| {
                String::from_utf8(b).map_err(|_| ApiError::bad_request("malformed cursor"))
            })
        })
        .transpose()
        .gql()?;
    let (items, more) = rampart_members::Members::new(c.state().tenants.clone())
        .list_members(c.tenant(), email.as_deref(), limit)
        .await
        .gql()?;
    let next = more
        .then(|| items.last().map(|m| encode_cursor(m.email.as_bytes())))
        .flatten();
    let cursor = |m: &Member| encode_cursor(m.email.as_bytes());
    Ok(connection(after.as_deref(), Page { items, next }, cursor))
}

/// A portfolio's chart URLs under the public base URL.
pub fn chart_urls(ctx: &Context<'_>, id: Uuid) -> Result<ChartUrls> {
    let c = ctx.data::<RequestCaller>()?;
    let base = c.state().config.public_base_url.trim_end_matches('/');
    let url = |chart: &str| {
        format!(
            "{base}/api/v1/t/{}/portfolios/{id}/charts/{chart}.svg",
            c.tenant()
        )
    };
    Ok(ChartUrls {
        equity: url("equity"),
        returns: url("returns"),
        fan: url("fan"),
    })
}
