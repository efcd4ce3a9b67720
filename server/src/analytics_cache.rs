//! Portfolio analytics answers per tenant, portfolio, caller and window,
//! kept for [`AnalyticsCache::TTL`] in a moka cache: a dashboard re-reading
//! the same report is served without reading positions and prices again or
//! rewriting the stored series. Any change through the portfolio routes
//! (any method but GET/HEAD) bumps the tenant's generation, which is part
//! of the key: older answers are never served again, and an analysis that
//! overlapped a change is stored under the old generation, unreachable.
//! Price updates show within the TTL. Per process (see BENCHMARKS.md).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use moka::sync::Cache;
use uuid::Uuid;

/// The cache (one per server, shared by all workers).
pub struct AnalyticsCache {
    entries: Cache<AnalyticsKey, web::Bytes>,
    /// The generation of each tenant's portfolios (never evicted: one
    /// counter per tenant that ever changed).
    generations: Cache<String, Arc<AtomicU64>>,
}

/// What an answer was computed for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnalyticsKey {
    /// The tenant.
    pub tenant: String,
    /// The tenant's generation when the analysis started.
    pub generation: u64,
    /// The portfolio.
    pub portfolio: Uuid,
    /// The caller (an answer is only served to whom it was computed for).
    pub user: Uuid,
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

impl Default for AnalyticsCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(Self::CAPACITY)
                .time_to_live(Self::TTL)
                .build(),
            generations: Cache::builder().build(),
        }
    }
}

impl AnalyticsCache {
    /// How long an answer is served from the cache.
    pub const TTL: Duration = Duration::from_secs(30);
    /// Entries at most.
    pub const CAPACITY: u64 = 20_000;

    fn counter(&self, tenant: &str) -> Arc<AtomicU64> {
        self.generations
            .get_with_by_ref(tenant, || Arc::new(AtomicU64::new(0)))
    }

    /// The tenant's current generation (take it before computing).
    pub fn generation(&self, tenant: &str) -> u64 {
        self.counter(tenant).load(Ordering::Acquire)
    }

    /// A stored answer.
    pub fn get(&self, key: &AnalyticsKey) -> Option<web::Bytes> {
        self.entries.get(key)
    }

    /// Stores an answer.
    pub fn insert(&self, key: AnalyticsKey, body: web::Bytes) {
        self.entries.insert(key, body);
    }

    /// Makes every stored answer of the tenant unreachable.
    pub fn forget(&self, tenant: &str) {
        self.counter(tenant).fetch_add(1, Ordering::AcqRel);
    }
}

/// Middleware of the portfolio routes: after any change (any method but
/// GET/HEAD) the tenant's cached analytics are forgotten.
pub async fn forget_on_change(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let change = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let cache = req.app_data::<web::Data<AnalyticsCache>>().cloned();
    let tenant = req
        .match_info()
        .get("tenant")
        .map(str::to_owned)
        .or_else(|| {
            req.path()
                .strip_prefix("/api/v1/t/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
        });
    let res = next.call(req).await;
    if let (true, Some(cache), Some(tenant)) = (change, cache, tenant) {
        cache.forget(&tenant);
    }
    res
}
