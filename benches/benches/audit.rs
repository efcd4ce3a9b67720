//! The audit log as a verifiable log (`rampart-auth`): the Merkle tree in
//! memory, and appends, seals and proofs against a real PostgreSQL started
//! by the test kit.
//!
//! - `merkle/root_16k`: the tree head of 16,384 leaf hashes;
//! - `merkle/inclusion_proof_16k`, `merkle/consistency_proof_16k`: proof
//!   generation from 16,384 leaf hashes;
//! - `merkle/verify_inclusion_16k`: one proof checked;
//! - `audit_log/append`: `AuditService::audit` (one plain INSERT in its own
//!   tenant transaction; no lock shared by appends);
//! - `audit_log/seal_100`: sealing 100 new rows (the SHARE instant, the rows
//!   read and hashed, 100 leaves and a signed tree head written);
//! - `audit_log/inclusion_proof`: `AuditService::inclusion_proof` of a row
//!   (leaves read from `platform.audit_leaves`, path computed).
//!
//! Run: `cargo bench -p rampart-benches --bench audit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_testkit::acme;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_auth::audit::AuditEvent;
use rampart_auth::merkle::{self, Hash};
use rampart_auth::{AuthConfig, AuthServer};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect()
}

fn tree(c: &mut Criterion) {
    let leaves = leaves(16_384);
    let root = merkle::root(&leaves);
    let proof = merkle::inclusion_proof(&leaves, 12_345, 16_384).unwrap();
    let mut g = c.benchmark_group("merkle");
    g.bench_function("root_16k", |b| b.iter(|| merkle::root(&leaves)));
    g.bench_function("inclusion_proof_16k", |b| {
        b.iter(|| merkle::inclusion_proof(&leaves, 12_345, 16_384).unwrap())
    });
    g.bench_function("consistency_proof_16k", |b| {
        b.iter(|| merkle::consistency_proof(&leaves, 10_000, 16_384).unwrap())
    });
    g.bench_function("verify_inclusion_16k", |b| {
        b.iter(|| {
            assert!(merkle::verify_inclusion(
                &leaves[12_345],
                12_345,
                16_384,
                &proof,
                &root
            ))
        })
    });
    g.finish();
}

fn event() -> AuditEvent {
    AuditEvent::new("token_refresh", "success").detail(serde_json::json!({"bench": true}))
}

fn log(c: &mut Criterion) {
    rampart_testkit::install_crypto_provider();
    let rt = rampart_benches::runtime().unwrap();
    let pg = rampart_testkit::postgres().unwrap();
    let db = rt.block_on(pg.fresh_database()).unwrap();
    let auth: AuthServer = rt.block_on(async {
        let pool = rampart_tenancy::TenantPool::connect(rampart_tenancy::TenancyConfig {
            database_url: db.url.clone(),
            max_connections: 8,
            ..Default::default()
        })
        .await
        .unwrap();
        pool.provision(&acme(), "Acme").await.unwrap();
        AuthServer::with_memory_keys(pool, AuthConfig::default())
            .await
            .unwrap()
    });
    let trail = auth.audit_trail();
    let mut g = c.benchmark_group("audit_log");
    g.bench_function("append", |b| {
        b.to_async(&rt)
            .iter(|| async { trail.audit(&acme(), event()).await.unwrap() })
    });
    g.bench_function("seal_100", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..100 {
                    trail.audit(&acme(), event()).await.unwrap();
                }
                let started = Instant::now();
                trail.seal(&acme()).await.unwrap();
                spent += started.elapsed();
            }
            spent
        })
    });
    let row = rt
        .block_on(auth.audit_log(&acme(), 1))
        .unwrap()
        .first()
        .map(|r| r.id)
        .unwrap();
    rt.block_on(trail.seal(&acme())).unwrap();
    g.bench_function("inclusion_proof", |b| {
        b.to_async(&rt)
            .iter(|| async { trail.inclusion_proof(&acme(), row, None).await.unwrap() })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = rampart_benches::criterion();
    targets = tree, log
}
criterion_main!(benches);
