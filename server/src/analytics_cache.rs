//! Portfolio analytics answers per tenant, portfolio, caller and window,
//! kept for [`AnalyticsCache::TTL`] in a moka cache: a dashboard re-reading
//! the same report is served without reading positions and prices again or
//! rewriting the stored series.
//!
//! Every change of a portfolio or valuation case (fields, positions,
//! shares, comments, analyses; through REST, GraphQL or any replica) is
//! announced on the tenant's change feed in its own transaction
//! (`rampart_portfolio::CHANGE_TOPIC`), and the key holds the tenant's
//! generation of that topic: an answer from before a change is never served
//! again once this replica has read the feed, at most
//! [`AnalyticsCache::FEED_BOUND`] later (at once for changes through this
//! replica's portfolio routes, which mark the feed stale). An analysis that
//! overlapped a change is stored under the old generation, unreachable.
//! New daily prices show within the TTL.
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use moka::sync::Cache;
use rampart_tenancy::{ChangeFeed, TenancyError, TenantPool};
use uuid::Uuid;

/// The cache (one per server, shared by all workers).
pub struct AnalyticsCache {
    entries: Cache<AnalyticsKey, web::Bytes>,
    /// This replica's view of the tenants' document changes.
    feed: ChangeFeed,
}

/// What an answer was computed for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnalyticsKey {
    /// The tenant's id (a slug reused after a purge is another tenant).
    pub tenant: Uuid,
    /// The tenant's generation of document changes when the analysis
    /// started ([`AnalyticsCache::generation`]).
    pub generation: u64,
    /// The portfolio.
    pub portfolio: rampart_portfolio::PortfolioId,
    /// The caller (an answer is only served to whom it was computed for).
    pub user: rampart_auth::UserId,
    /// Whether the caller is a tenant admin (sees more).
    pub tenant_admin: bool,
    /// First day, as requested.
    pub from: Option<chrono::NaiveDate>,
    /// Last day, as requested.
    pub to: Option<chrono::NaiveDate>,
    /// The day of the request (the default window ends on it or on the
    /// latest day with prices).
    pub day: chrono::NaiveDate,
    /// Benchmark symbol.
    pub benchmark: String,
}

impl AnalyticsCache {
    /// How long an answer is served at most: how late new daily prices
    /// show (document changes show at once, see the module docs).
    pub const TTL: Duration = Duration::from_secs(300);
    /// Entries at most.
    pub const CAPACITY: u64 = 20_000;
    /// How old this replica's view of the change feed may be: a change
    /// through another replica or GraphQL shows within it. One indexed
    /// query a second for all tenants, only while analytics are asked for.
    pub const FEED_BOUND: Duration = Duration::from_secs(1);

    /// An empty cache following the change feed of `pool`'s database.
    pub fn new(pool: TenantPool) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(Self::CAPACITY)
                .time_to_live(Self::TTL)
                .build(),
            feed: ChangeFeed::new(pool, Self::FEED_BOUND),
        }
    }

    /// The tenant's current generation of document changes (take it before
    /// computing).
    pub async fn generation(&self, tenant: Uuid) -> Result<u64, TenancyError> {
        self.feed
            .generation(tenant, rampart_portfolio::CHANGE_TOPIC)
            .await
    }

    /// A stored answer.
    pub fn get(&self, key: &AnalyticsKey) -> Option<web::Bytes> {
        self.entries.get(key)
    }

    /// Stores an answer.
    pub fn insert(&self, key: AnalyticsKey, body: web::Bytes) {
        self.entries.insert(key, body);
    }

    /// A change went through this replica: the next
    /// [`AnalyticsCache::generation`] reads the feed (which has it, since
    /// it was announced in the change's committed transaction).
    pub fn changed_here(&self) {
        self.feed.stale();
    }
}

/// Middleware of the portfolio routes: after any change (any method but
/// GET/HEAD) this replica reads the change feed on the next analytics
/// request, so its own changes show at once.
pub async fn forget_on_change(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let change = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let cache = req.app_data::<web::Data<AnalyticsCache>>().cloned();
    let res = next.call(req).await;
    if let (true, Some(cache)) = (change, cache) {
        cache.changed_here();
    }
    res
}
