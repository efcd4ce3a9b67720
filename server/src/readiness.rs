//! Readiness: PostgreSQL, Redis and Vault probed with a timeout each; the
//! degraded states named (served in full by `/ready` on the admin listener,
//! kept in `/metrics`). The public `/ready` says only ready or not
//! ([`PublicReadiness`]). Probes go through [`ProbeCache`]: at most one per
//! [`PROBE_CACHE_FOR`], however many callers ask.
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGaugeVec, Registry};

use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::metrics::Metrics;

/// One dependency's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dependency {
    /// Configured at all (Redis and Vault are optional in dev mode).
    pub configured: bool,
    /// Answered the probe (true when not configured).
    pub ok: bool,
    /// Probe time.
    pub latency_ms: f64,
    /// What failed (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Readiness of the server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (serving, a dependency is down: Redis → in-memory
    /// limits and cache; Vault → secrets held in memory) or `unavailable`
    /// (PostgreSQL down).
    pub status: &'static str,
    /// Names of the dependencies that are down.
    pub degraded: Vec<&'static str>,
    /// PostgreSQL.
    pub postgres: Dependency,
    /// Redis.
    pub redis: Dependency,
    /// Vault.
    pub vault: Dependency,
    /// Seconds since start.
    pub uptime_secs: u64,
}

/// What the public listener's `/ready` says: nothing about the internals.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicReadiness {
    /// `ready` (serving, possibly degraded) or `unavailable`.
    pub status: &'static str,
}

impl Readiness {
    /// Whether the server can serve (PostgreSQL answers).
    pub fn serving(&self) -> bool {
        self.postgres.ok
    }

    /// The public view: ready or not, no details.
    pub fn public(&self) -> PublicReadiness {
        PublicReadiness {
            status: if self.serving() {
                "ready"
            } else {
                "unavailable"
            },
        }
    }
}

/// How long a probe's result is reused.
pub const PROBE_CACHE_FOR: Duration = Duration::from_secs(1);

/// The latest probe, reused for [`PROBE_CACHE_FOR`]; concurrent callers wait
/// for the one probe in flight instead of starting their own (so `/ready`,
/// public and unthrottled, cannot multiply connections to the dependencies).
pub struct ProbeCache {
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
    probes: IntCounter,
}

impl ProbeCache {
    /// An empty cache; its counter `rampart_readiness_probes_total` is
    /// registered in `registry`.
    pub fn new(registry: &Registry) -> anyhow::Result<Self> {
        let probes = IntCounter::new(
            "readiness_probes_total",
            "Dependency probes run (at most one per second, however many ask)",
        )
        .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        registry
            .register(Box::new(probes.clone()))
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        Ok(Self {
            last: tokio::sync::Mutex::new(None),
            probes,
        })
    }

    /// The latest readiness: cached when younger than [`PROBE_CACHE_FOR`],
    /// else `probe` (see [`probe`]) runs now.
    pub async fn get(&self, probe: impl Future<Output = Readiness>) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < PROBE_CACHE_FOR
        {
            return report.clone();
        }
        self.probes.inc();
        let report = probe.await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

async fn timed<F: std::future::Future<Output = Result<(), String>>>(
    configured: bool,
    f: F,
) -> Dependency {
    if !configured {
        return Dependency {
            configured,
            ok: true,
            latency_ms: 0.0,
            detail: None,
        };
    }
    let started = Instant::now();
    let result = match tokio::time::timeout(Duration::from_secs(2), f).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    };
    Dependency {
        configured,
        ok: result.is_ok(),
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        detail: result.err(),
    }
}

/// What a probe looks at (the parts of the app state it needs).
pub struct Probed<'a> {
    /// PostgreSQL.
    pub tenants: &'a rampart_tenancy::TenantPool,
    /// Redis, when configured.
    pub redis: Option<&'a redis::Client>,
    /// Vault, when configured.
    pub vault: Option<&'a rampart_vault::SecretStore>,
    /// The pool and dependency gauges are updated here.
    pub metrics: &'a Metrics,
    /// When the server started.
    pub started: Instant,
}

/// Sets `gauge` to each value under its label.
fn set_gauges<const N: usize>(gauge: &IntGaugeVec, values: [(&str, i64); N]) {
    for (label, value) in values {
        gauge.with_label_values(&[label]).set(value);
    }
}

/// Probes every dependency and updates the pool and dependency gauges
/// (through [`ProbeCache::get`]: `/ready`, `/metrics` and the probe job).
pub async fn probe(state: Probed<'_>) -> Readiness {
    let pool_status = state.tenants.pool_status();
    let pool = [
        ("size", pool_status.size),
        ("available", pool_status.available),
        ("waiting", pool_status.waiting),
        ("max", pool_status.max_size),
    ];
    set_gauges(&state.metrics.db_pool, pool.map(|(l, v)| (l, v as i64)));
    let postgres = timed(true, async {
        let mut conn = state
            .tenants
            .raw_pool()
            .get()
            .await
            .map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    let redis = timed(state.redis.is_some(), async {
        let client = state.redis.ok_or("not configured")?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    let vault = timed(state.vault.is_some(), async {
        let store = state.vault.ok_or("not configured")?;
        if store.health().is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", store.health()))
        }
    })
    .await;
    let up = [
        ("postgres", postgres.ok),
        ("redis", redis.ok),
        ("vault", vault.ok),
    ];
    set_gauges(
        &state.metrics.dependency_up,
        up.map(|(d, ok)| (d, i64::from(ok))),
    );
    let mut degraded = Vec::new();
    for (name, dep) in [
        ("postgres", &postgres),
        ("redis", &redis),
        ("vault", &vault),
    ] {
        if !dep.ok {
            degraded.push(name);
        }
    }
    Readiness {
        status: if !postgres.ok {
            "unavailable"
        } else if degraded.is_empty() {
            "ready"
        } else {
            "degraded"
        },
        degraded,
        postgres,
        redis,
        vault,
        uptime_secs: state.started.elapsed().as_secs(),
    }
}
