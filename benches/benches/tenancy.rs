//! Tenancy benchmarks against a real PostgreSQL started by the test kit
//! (fsync off, like the tests; set `RAMPART_BENCH_FSYNC=1` for fsync on).
//!
//! - `provision/one_tenant`: provisioning one tenant with the full template
//!   (p50/p95 printed as well);
//! - `with_tenant/overhead` vs `plain_transaction`: routing cost;
//! - `migrate_all/noop_1000`: a migrate-all over 1,000 current tenants;
//! - a one-shot run migrating those 1,000 tenants by one new migration
//!   (printed; too long for criterion's repetitions).
//!
//! Run: `cargo bench -p rampart-benches --bench tenancy`
//! (`RAMPART_BENCH_SKIP_FLEET=1` or the quick mode `RAMPART_BENCH_QUICK=1`
//! skips the 1,000-tenant part.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_testkit::valid_slug;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use diesel_async::{AnsiTransactionManager, RunQueryDsl, TransactionManager};
use rampart_tenancy::{MigrationSet, TemplateMigration, TenancyConfig, TenancyError, TenantPool};
use rampart_testkit::{PgOptions, PgServer};

struct Env {
    _pg: PgServer,
    url: String,
    rt: tokio::runtime::Runtime,
}

fn env() -> Env {
    rampart_testkit::install_crypto_provider();
    let fsync = std::env::var("RAMPART_BENCH_FSYNC").is_ok_and(|v| v == "1");
    let pg = PgServer::start_with(PgOptions {
        fsync,
        ..PgOptions::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(pg.fresh_database()).unwrap().url;
    Env { _pg: pg, url, rt }
}

fn config(url: &str) -> TenancyConfig {
    TenancyConfig {
        database_url: url.to_owned(),
        max_connections: 8,
        migrate_concurrency: 6,
        pool_wait_timeout_ms: 120_000,
        ..TenancyConfig::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bench(c: &mut Criterion) {
    let env = env();
    let pool = env
        .rt
        .block_on(TenantPool::connect(config(&env.url)))
        .unwrap();

    // Provisioning: criterion's estimate plus our own percentiles.
    let mut n = 0u64;
    let mut samples = Vec::new();
    c.bench_function("provision/one_tenant", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let slug = format!("bench{n:06}");
                let started = Instant::now();
                env.rt
                    .block_on(pool.provision(&valid_slug(&slug), "Bench"))
                    .unwrap();
                let took = started.elapsed();
                samples.push(took);
                total += took;
            }
            total
        })
    });
    samples.sort();
    if !samples.is_empty() {
        println!(
            "provision one tenant: n={} p50={:.1?} p95={:.1?} max={:.1?}",
            samples.len(),
            percentile(&samples, 0.50),
            percentile(&samples, 0.95),
            samples[samples.len() - 1]
        );
    }

    // Routing overhead.
    env.rt
        .block_on(pool.ensure_tenant(&valid_slug("routed"), "Routed"))
        .unwrap();
    let mut g = c.benchmark_group("route");
    g.bench_function("with_tenant", |b| {
        b.to_async(&env.rt).iter(|| async {
            pool.with_tenant(&valid_slug("routed"), async |_conn| {
                Ok::<_, TenancyError>(())
            })
            .await
            .unwrap()
        })
    });
    g.bench_function("plain_transaction", |b| {
        b.to_async(&env.rt).iter(|| async {
            let mut conn = pool.raw_pool().get().await.unwrap();
            let conn: &mut rampart_tenancy::AsyncPgConnection = &mut conn;
            AnsiTransactionManager::begin_transaction(conn)
                .await
                .unwrap();
            AnsiTransactionManager::commit_transaction(conn)
                .await
                .unwrap();
        })
    });
    g.bench_function("with_tenant_select_1", |b| {
        b.to_async(&env.rt).iter(|| async {
            pool.with_tenant(&valid_slug("routed"), async |conn| {
                diesel::sql_query("SELECT 1").execute(conn).await?;
                Ok::<_, TenancyError>(())
            })
            .await
            .unwrap()
        })
    });
    g.finish();

    // 1,000 tenants: no-op migrate_all, then one new migration for all
    // (RAMPART_BENCH_SKIP_FLEET=1 skips this part, which takes minutes).
    if rampart_benches::quick() || std::env::var("RAMPART_BENCH_SKIP_FLEET").is_ok_and(|v| v == "1")
    {
        return;
    }
    let existing = env.rt.block_on(pool.list()).unwrap().len();
    let started = Instant::now();
    env.rt.block_on(async {
        let futures = (existing..1000).map(|i| {
            let pool = pool.clone();
            async move {
                pool.provision(&valid_slug(&format!("fleet{i:04}")), "Fleet")
                    .await
                    .unwrap()
            }
        });
        futures::stream::iter(futures)
            .buffer_unordered(6)
            .collect::<Vec<_>>()
            .await
    });
    println!(
        "provisioned {} tenants in {:.1?} (6 at a time)",
        1000 - existing,
        started.elapsed()
    );
    let mut g = c.benchmark_group("migrate_all");
    rampart_benches::tune(&mut g, 20, Duration::from_secs(5));
    g.bench_function("noop_1000_tenants", |b| {
        b.to_async(&env.rt).iter(|| async {
            let report = pool.migrate_all().await.unwrap();
            assert_eq!(report.behind, 0);
        })
    });
    g.finish();
    let set = MigrationSet::embedded_tenant()
        .with([TemplateMigration::new(
            "99990101000001",
            "watchlists",
            "CREATE TABLE watchlists (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL, \
             symbols text[] NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now()); \
             ALTER TABLE portfolios ADD COLUMN watchlist_id uuid; \
             CREATE INDEX portfolios_by_watchlist ON portfolios (watchlist_id);",
        )])
        .unwrap();
    let v2 = env
        .rt
        .block_on(TenantPool::connect_with_template(config(&env.url), set))
        .unwrap();
    let report = env.rt.block_on(v2.migrate_all()).unwrap();
    assert!(report.is_complete());
    println!(
        "migrate {} tenants by one new migration: {:.2?} ({} succeeded)",
        report.behind,
        report.elapsed,
        report.succeeded.len()
    );
    let started = Instant::now();
    let noop = env.rt.block_on(v2.migrate_all()).unwrap();
    println!(
        "no-op migrate_all over {} tenants: {:.2?}",
        1000,
        started.elapsed()
    );
    assert_eq!(noop.behind, 0);
}

use futures::StreamExt;

criterion_group! {
    name = benches;
    config = rampart_benches::criterion();
    targets = bench
}
criterion_main!(benches);
