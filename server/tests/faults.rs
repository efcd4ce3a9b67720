//! Fault injection (issue 8), loopback only: the real server over TLS while
//! its dependencies fail under it.
//!
//! - PostgreSQL (a private server) restarted during a write load: requests
//!   during the outage answer 503 `database_unavailable` at once, the server
//!   recovers by itself, and every acknowledged write is there afterwards.
//! - Redis (private) stopped: rate limits and the market cache go on in
//!   memory; no 5xx, readiness says `degraded`.
//! - Every market vendor (local Yahoo-shaped servers) failing: breakers
//!   open, the last stored quote is served with `stale: true`, its age and
//!   `Age`/`Warning` headers; fresh quotes again when the vendors return.
//! - The snapshot job killed half-way (SIGKILL of a `rampart serve` child
//!   process while the broker answers slowly) and rerun: exactly one
//!   snapshot per member and day, none lost.
//! - Vault stopped: covered by `server/tests/vault.rs`
//!   (`secrets_come_from_vault_and_an_outage_only_degrades_readiness`): the
//!   server keeps serving with the secrets it holds and `/ready` answers 200
//!   `degraded` naming `vault`.
use rampart_testkit::acme;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use rampart_auth::Role;
use rampart_market::{
    BreakerConfig, BreakerState, ProviderConfig, ProviderKind, RateLimitConfig, RetryPolicy,
    SlidingWindow, WaitInOpen,
};
use rampart_testkit::{BaoServer, PgOptions, PgServer, RedisServer};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Env, count, env_with, get_text, scoped_token, serve_toml, url, write_secret};

/// A hung request is a failure, not a wait: nothing here may take this long.
const HANG: Duration = Duration::from_secs(20);

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Polls `check` every 50 ms until it holds; panics with `what` after
/// `limit` (a bound against hangs, not a speed target).
async fn until<F: AsyncFnMut() -> bool>(what: &str, limit: Duration, mut check: F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client with the operator certificate, for the admin listener.
fn operator_client(env: &Env) -> reqwest::Client {
    let id = env
        .pki
        .ca
        .issue_client("ops", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let pem = format!("{}{}", id.cert_pem, id.key_pem);
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.pki.ca.cert_pem().as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .timeout(HANG)
        .build()
        .unwrap()
}

/// `/ready` in full: the admin listener's (the public one says only ready
/// or not).
async fn ready(env: &Env) -> (u16, Value) {
    crate::common::Api {
        http: operator_client(env),
        addr: env.server.admin_addr,
    }
    .call(Method::GET, "/ready", None, None)
    .await
}

// ------------------------------------------------------------------ PostgreSQL

/// What the writers saw.
#[derive(Default)]
struct Tally {
    /// Names whose creation was acknowledged (201).
    acked: Vec<String>,
    /// Names refused with 503 `database_unavailable` (may or may not exist).
    refused: Vec<String>,
    /// Anything else: status, body (must stay empty).
    other: Vec<String>,
    /// The slowest 503.
    slowest_refusal: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_write_load_loses_no_acknowledged_write() {
    rampart_testkit::install_crypto_provider();
    // A private server: the shared one serves the other tests of this binary.
    let pg = Arc::new(
        PgServer::start_with(PgOptions {
            fsync: true,
            ..PgOptions::default()
        })
        .unwrap(),
    );
    let db = pg.fresh_database().await.unwrap();
    let env = env_with(|c| {
        c.database.database_url = db.url.clone();
        c.database.pool_wait_timeout_ms = 1_000;
        c.rate_limit.enabled = false;
    })
    .await;
    let auth = env.auth();
    let (_, token) = scoped_token(
        &auth,
        "acme",
        "writer@acme.test",
        Role::Trader,
        "portfolio:read portfolio:write",
    )
    .await;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, token) = (
            env.http.clone(),
            env.url("/api/v1/t/acme/portfolios"),
            token.clone(),
        );
        let (tally, stop) = (tally.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !AtomicBool::load(&stop, Ordering::Relaxed) {
                n += 1;
                let name = format!("w{w}-{n}");
                let started = Instant::now();
                let sent = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"name": name}))
                    .timeout(HANG)
                    .send()
                    .await;
                let res = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        tally.lock().unwrap().other.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                let status = res.status().as_u16();
                let retry_after = res.headers().contains_key("retry-after");
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let took = started.elapsed();
                let refused = {
                    let mut t = tally.lock().unwrap();
                    match status {
                        201 if body["data"]["name"] == name.as_str() => {
                            t.acked.push(name);
                            false
                        }
                        503 if body["success"] == false
                            && body["error"]["code"] == "database_unavailable"
                            && retry_after =>
                        {
                            t.refused.push(name);
                            t.slowest_refusal = t.slowest_refusal.max(took);
                            true
                        }
                        _ => {
                            t.other.push(format!("{name}: {status} {body}"));
                            false
                        }
                    }
                };
                if refused {
                    // A client backing off a little, as Retry-After asks.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    let acked = || tally.lock().unwrap().acked.len();
    let refused = || tally.lock().unwrap().refused.len();

    until(
        "writes before the outage",
        Duration::from_secs(60),
        async || acked() >= 20,
    )
    .await;
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop())
        .await
        .unwrap()
        .unwrap();
    let acked_before_outage = acked();
    until(
        "refusals during the outage",
        Duration::from_secs(60),
        async || refused() >= 20,
    )
    .await;
    // Readiness says why, once the probe from before the outage (shared for
    // PROBE_CACHE_FOR) has aged out: the writers can see 20 refusals sooner.
    tokio::time::sleep(rampart_server::readiness::PROBE_CACHE_FOR).await;
    let (s, body) = ready(&env).await;
    assert_eq!(
        (s, body["data"]["status"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert_eq!(
        acked(),
        acked_before_outage,
        "a write was acknowledged with PostgreSQL down"
    );

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.restart())
        .await
        .unwrap()
        .unwrap();
    let back = Instant::now();
    // No restart of the server: its pool reconnects by itself.
    until(
        "writes after the restart",
        Duration::from_secs(60),
        async || acked() > acked_before_outage,
    )
    .await;
    let recovered_in = back.elapsed();
    until(
        "more writes after the restart",
        Duration::from_secs(60),
        async || acked() >= acked_before_outage + 20,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let t = std::mem::take(&mut *tally.lock().unwrap());
    assert!(
        t.other.is_empty(),
        "answers other than 201 or 503 database_unavailable: {:?}",
        t.other
    );
    // Likewise the answer may still be the probe from the outage for
    // PROBE_CACHE_FOR.
    until("ready again", Duration::from_secs(5), async || {
        ready(&env).await.0 == 200
    })
    .await;
    let (s, body) = ready(&env).await;
    assert_eq!(
        (s, body["data"]["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );

    // Every acknowledged write is there, once; refused ones may or may not
    // be (a commit can succeed while its answer is lost), nothing else is.
    let stored: Vec<Name> = env
        .state
        .tenants
        .with_tenant(&acme(), async |conn| {
            diesel::sql_query("SELECT name FROM portfolios WHERE deleted_at IS NULL")
                .load::<Name>(conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
    let stored: Vec<String> = stored.into_iter().map(|n| n.name).collect();
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a write was stored twice");
    let missing: Vec<&String> = t.acked.iter().filter(|n| !unique.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let refused: BTreeSet<&String> = t.refused.iter().collect();
    let strays: Vec<&&String> = unique
        .iter()
        .filter(|n| !t.acked.contains(n) && !refused.contains(*n))
        .collect();
    assert!(strays.is_empty(), "rows nobody wrote: {strays:?}");
    eprintln!(
        "faults/postgres: {} writes acknowledged ({} before the outage), {} answered 503 \
         (slowest {:?}), {} stored; first acknowledged write {:?} after PostgreSQL was back",
        t.acked.len(),
        acked_before_outage,
        t.refused.len(),
        t.slowest_refusal,
        stored.len(),
        recovered_in
    );
    env.server.stop().await;
}

// ----------------------------------------------------------------------- Redis

#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_degrades_rate_limits_and_caches_to_memory() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let env = env_with(|c| {
        c.redis_url = Some(url.clone());
        c.rate_limit.per_ip = rampart_ratelimit::Quota {
            count: 20,
            per_period: Duration::from_secs(60),
            burst: 20,
        };
    })
    .await;
    let auth = env.auth();
    let (_, token) = scoped_token(
        &auth,
        "acme",
        "reader@acme.test",
        Role::Trader,
        "portfolio:read portfolio:write market:read",
    )
    .await;
    let quotes = "/api/v1/t/acme/quotes?symbols=MSFT";
    let get = |path: &'static str| {
        let (http, url, token) = (env.http.clone(), env.url(path), token.clone());
        async move {
            let res = http
                .get(url)
                .bearer_auth(token)
                .timeout(HANG)
                .send()
                .await
                .unwrap();
            let remaining = res
                .headers()
                .get("ratelimit-remaining")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                res.status().as_u16(),
                remaining,
                res.json::<Value>().await.unwrap(),
            )
        }
    };

    // Redis up: limits and the market cache live there.
    for _ in 0..3 {
        let (s, remaining, body) = get(quotes).await;
        assert_eq!(s, 200, "{body}");
        assert!(remaining.is_some());
    }
    let keys = async || -> Vec<String> {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS")
            .arg("rampart:*")
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    let mut seen = Vec::new();
    until(
        "rate-limit and market keys in Redis",
        Duration::from_secs(30),
        async || {
            seen = keys().await;
            seen.iter().any(|k| k.starts_with("rampart:rl"))
                && seen.iter().any(|k| k.starts_with("rampart:market"))
        },
    )
    .await;
    assert_eq!(ready(&env).await.1["data"]["status"], "ready");

    redis.stop().unwrap();
    // Every answer is a success or a rate-limit refusal decided in memory:
    // the 20-request bucket starts afresh there and still runs out.
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (s, remaining, body) = if i % 4 == 3 {
            let (s, body) = env
                .call(
                    Method::POST,
                    "/api/v1/t/acme/portfolios",
                    Some(&token),
                    Some(json!({"name": format!("during-outage-{i}")})),
                )
                .await;
            (s, Some(String::new()), body)
        } else {
            get(quotes).await
        };
        assert!(s < 500, "5xx with Redis down: {s} {body}");
        assert!(remaining.is_some(), "no RateLimit headers with Redis down");
        if s == 200 {
            assert_eq!(body["data"]["quotes"][0]["symbol"], "MSFT", "{body}");
        }
        statuses.push(s);
    }
    let ok = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        ok >= 10 && limited >= 10,
        "expected the in-memory limit to allow then refuse: {statuses:?}"
    );
    assert_eq!(ok + limited, statuses.len(), "{statuses:?}");
    let (s, body) = ready(&env).await;
    assert_eq!(s, 200, "Redis down must not make the server unready");
    assert_eq!(body["data"]["status"], "degraded", "{body}");
    assert_eq!(body["data"]["degraded"], json!(["redis"]));

    redis.restart().unwrap();
    until(
        "readiness back to ready",
        Duration::from_secs(30),
        async || ready(&env).await.1["data"]["status"] == "ready",
    )
    .await;
    eprintln!("faults/redis: with Redis down {ok} answered 2xx, {limited} 429 from memory, 0 5xx");
    env.server.stop().await;
}

// --------------------------------------------------------------------- vendors

const YAHOO_CHART: &str = include_str!("../../crates/market/tests/fixtures/yahoo_chart.json");

fn chart(price: Option<&str>) -> ResponseTemplate {
    let body = match price {
        Some(p) => YAHOO_CHART.replacen(
            "\"regularMarketPrice\":181.18",
            &format!("\"regularMarketPrice\":{p}"),
            1,
        ),
        None => YAHOO_CHART.to_owned(),
    };
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/json")
}

fn vendor(name: &str, server: &MockServer) -> ProviderConfig {
    let mut p = ProviderConfig::new(ProviderKind::Yahoo);
    p.name = Some(name.to_owned());
    p.base_url = Some(server.uri());
    p.timeout = Duration::from_secs(2);
    p.retry = Some(RetryPolicy::none());
    p.rate_limit = Some(RateLimitConfig {
        capacity: 1_000,
        per_second: 1_000.0,
        max_wait: Duration::from_millis(100),
    });
    p.breaker = Some(BreakerConfig {
        sliding_window: SlidingWindow::Count(4),
        failure_rate_threshold: 50.0,
        minimum_calls: 4,
        wait_in_open: WaitInOpen::Fixed {
            wait: Duration::from_secs(3),
        },
        permitted_calls_in_half_open: 1,
        ..BreakerConfig::default()
    });
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn every_vendor_failing_opens_breakers_and_serves_last_values_with_their_age() {
    rampart_testkit::install_crypto_provider();
    let (a, b) = (MockServer::start().await, MockServer::start().await);
    for s in [&a, &b] {
        Mock::given(path("/v8/finance/chart/AAPL"))
            .respond_with(chart(None))
            .mount(s)
            .await;
    }
    let providers = vec![vendor("yahoo_a", &a), vendor("yahoo_b", &b)];
    let env = env_with(|c| {
        c.market.providers = providers;
        c.rate_limit.enabled = false;
    })
    .await;
    let auth = env.auth();
    let (_, token) = scoped_token(&auth, "acme", "q@acme.test", Role::Trader, "market:read").await;
    let market = env.state.market.clone();
    let ask = async || -> (reqwest::header::HeaderMap, Value) {
        market.evict_l1("AAPL");
        let res = env
            .http
            .get(env.url("/api/v1/t/acme/quotes?symbols=AAPL"))
            .bearer_auth(&token)
            .timeout(HANG)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let headers = res.headers().clone();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["data"]["errors"], json!([]), "{body}");
        (headers, body["data"]["quotes"][0].clone())
    };

    // Vendors up: a fresh quote, kept in the L3 store for bad days.
    let (headers, q) = ask().await;
    assert_eq!(
        (q["stale"].as_bool(), q["quote"]["price"].as_f64()),
        (Some(false), Some(181.18)),
        "{q}"
    );
    assert_eq!(
        q["source"],
        json!({"layer": "provider", "provider": "yahoo_a"})
    );
    assert!(headers.get("age").is_none() && headers.get("warning").is_none());
    let store = market.store().unwrap().clone();
    until("the quote in L3", Duration::from_secs(30), async || {
        store.latest_quote("AAPL").await.unwrap().is_some()
    })
    .await;
    // Let the stored value age a little, so its age is visible in seconds.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Every vendor failing.
    for s in [&a, &b] {
        s.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
            .mount(s)
            .await;
    }
    let mut answers = 0;
    until("both breakers open", Duration::from_secs(30), async || {
        let (headers, q) = ask().await;
        answers += 1;
        assert_eq!(q["stale"], true, "{q}");
        assert_eq!(q["source"], json!({"layer": "l3"}));
        assert_eq!(q["origin"], "yahoo_a");
        assert_eq!(q["quote"]["price"].as_f64(), Some(181.18));
        assert!(q["ageMs"].as_u64().unwrap() >= 1_000, "{q}");
        let age: u64 = headers["age"].to_str().unwrap().parse().unwrap();
        assert!(age >= 1);
        assert_eq!(headers["warning"], "110 - \"Response is Stale\"");
        [market.breaker("yahoo_a"), market.breaker("yahoo_b")]
            .iter()
            .all(|b| b.unwrap().state() == BreakerState::Open)
    })
    .await;
    // The breaker state is exported.
    let metrics = get_text(
        &operator_client(&env),
        &url(env.server.admin_addr, "/metrics"),
    )
    .await;
    for p in ["yahoo_a", "yahoo_b"] {
        assert!(
            metrics.contains(&format!("market_breaker_state{{provider=\"{p}\"}} 1")),
            "{p} not open in /metrics"
        );
    }
    // Open breakers spare the vendors: more answers, no calls (unless a
    // breaker already moved on to half-open meanwhile).
    let calls = async || {
        a.received_requests().await.unwrap().len() + b.received_requests().await.unwrap().len()
    };
    let before = calls().await;
    for _ in 0..5 {
        assert_eq!(ask().await.1["stale"], true);
    }
    if [market.breaker("yahoo_a"), market.breaker("yahoo_b")]
        .iter()
        .all(|b| b.unwrap().state() == BreakerState::Open)
    {
        assert_eq!(calls().await, before, "open breakers let calls through");
    }

    // Vendors back: fresh values again, without a restart.
    for s in [&a, &b] {
        s.reset().await;
        Mock::given(path("/v8/finance/chart/AAPL"))
            .respond_with(chart(Some("190.5")))
            .mount(s)
            .await;
    }
    let back = Instant::now();
    let mut last = Value::Null;
    until(
        "fresh quotes after the vendors return",
        Duration::from_secs(60),
        async || {
            let (headers, q) = ask().await;
            last = q.clone();
            q["stale"] == false && headers.get("age").is_none()
        },
    )
    .await;
    assert_eq!(last["quote"]["price"].as_f64(), Some(190.5), "{last}");
    let closed = [market.breaker("yahoo_a"), market.breaker("yahoo_b")]
        .iter()
        .filter(|b| b.unwrap().state() == BreakerState::Closed)
        .count();
    assert!(
        closed >= 1,
        "no breaker closed after a successful trial call"
    );
    eprintln!(
        "faults/vendors: {answers} stale answers until both breakers opened; fresh again {:?} after the vendors returned (breaker wait 3 s)",
        back.elapsed()
    );
    env.server.stop().await;
}

// ---------------------------------------------------------------- snapshot job

const SNAPSHOT_DAY: &str = "2026-11-20";
const MEMBERS: usize = 6;

/// `rampart serve` as a child process on the same database and Vault, so
/// the job can be killed for real (SIGKILL: no destructor, no unlock).
struct Child {
    process: std::process::Child,
    public_port: u16,
    admin_port: u16,
    log: std::path::PathBuf,
}

impl Drop for Child {
    /// A failed assertion must not leave the server running.
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn spawn_child(env: &Env, database_url: &str, vault: &str, broker: &str) -> Child {
    let dir = env.pki.dir.path();
    let tables = format!(
        "[vault]\naddress = {vault:?}\nauth = {{ method = \"token\", token = \"root\" }}\n\
         [snapshot]\nbroker_base_url = {broker:?}\nenabled = false\nrequest_timeout_ms = 20000\n"
    );
    let top = "key_check_secs = 3600";
    let ((public_port, admin_port), toml) =
        serve_toml(&env.pki, database_url, "child-dev-secrets", top, &tables);
    let config = dir.join("child.toml");
    std::fs::write(&config, toml).unwrap();
    let log = dir.join("child.log");
    let process = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RAMPART_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Child {
        process,
        public_port,
        admin_port,
        log,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_job_killed_half_way_and_rerun_writes_each_snapshot_once() {
    rampart_testkit::install_crypto_provider();
    let bao = BaoServer::start().unwrap();
    write_secret(&bao.addr(), "auth", json!({"kek": "22".repeat(32)})).await;
    rampart_vault::SecretStore::connect(rampart_vault::VaultConfig::dev(bao.addr(), bao.token()))
        .await
        .unwrap()
        .ensure_transit_key()
        .await
        .unwrap();
    // The broker answers every account slowly: the job takes a while.
    let broker = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"cash": "1000.5", "equity": "10100", "last_equity": "10000"}))
                .set_delay(Duration::from_millis(700)),
        )
        .mount(&broker)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/positions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&broker)
        .await;
    let mut database_url = String::new();
    let (vault, broker_url) = (bao.addr(), broker.uri());
    let env = env_with(|c| {
        let mut v = rampart_vault::VaultConfig::dev(vault.clone(), "root");
        v.secrets = vec!["auth".into()];
        c.vault = Some(v);
        c.snapshot = rampart_members::SnapshotConfig {
            broker_base_url: broker_url.clone(),
            enabled: false,
            request_timeout_ms: 20_000,
            ..Default::default()
        };
        c.rate_limit.enabled = false;
        database_url = c.database.database_url.clone();
    })
    .await;
    let auth = env.auth();
    let (_, admin) = scoped_token(
        &auth,
        "acme",
        "root@acme.test",
        Role::Admin,
        "users:manage tenant:admin",
    )
    .await;
    let mut members = BTreeSet::new();
    for i in 0..MEMBERS {
        let m = auth
            .register(
                &acme(),
                &format!("m{i}@acme.test"),
                "Member",
                crate::common::PASSWORD,
                Role::Trader,
            )
            .await
            .unwrap()
            .id;
        let (s, body) = env
            .call(
                Method::PUT,
                &format!("/api/v1/t/acme/admin/members/{m}/broker"),
                Some(&admin),
                Some(json!({"keyId": format!("PKFAULTS{i:012}"), "secretKey": format!("s3cretFaults{i:028}")})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        members.insert(m);
    }
    let snapshots = format!(
        "SELECT count(*) AS n FROM portfolio_snapshots WHERE snapshot_date = '{SNAPSHOT_DAY}'"
    );
    let board =
        format!("SELECT count(*) AS n FROM leaderboard_daily WHERE date = '{SNAPSHOT_DAY}'");

    // The child runs the job; it is killed once some snapshots are written.
    let mut child = spawn_child(&env, &database_url, &bao.addr(), &broker.uri());
    let log = child.log.clone();
    let health = format!("https://localhost:{}/health", child.public_port);
    let mut exited = None;
    until(
        "the child server to listen",
        Duration::from_secs(120),
        async || {
            if let Ok(Some(status)) = child.process.try_wait() {
                exited = Some(status);
                return true;
            }
            env.http
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    assert!(
        exited.is_none(),
        "the child exited: {:?}\n{}",
        exited,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let ops = operator_client(&env);
    let run = tokio::spawn({
        let ops = ops.clone();
        let url = format!("https://localhost:{}/admin/jobs/snapshot", child.admin_port);
        async move {
            ops.post(url)
                .json(&json!({"date": SNAPSHOT_DAY}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    until("the first snapshots", Duration::from_secs(60), async || {
        count(&env.state, "acme", &snapshots).await >= 2
    })
    .await;
    child.process.kill().unwrap();
    child.process.wait().unwrap();
    let partial = count(&env.state, "acme", &snapshots).await;
    assert!(
        (2..MEMBERS as i64).contains(&partial),
        "not killed half-way: {partial} of {MEMBERS} snapshots"
    );
    // Each member's snapshot and leaderboard row commit together.
    assert_eq!(count(&env.state, "acme", &board).await, partial);
    assert!(
        !matches!(run.await.unwrap(), Ok(200)),
        "the killed run answered"
    );

    // Rerun on the in-process server: the dead process's lock went with its
    // connection; the rerun completes the day without duplicates.
    let rerun = format!(
        "https://localhost:{}/admin/jobs/snapshot",
        env.server.admin_addr.port()
    );
    let mut report = Value::Null;
    until(
        "a rerun that gets the job lock",
        Duration::from_secs(30),
        async || {
            let res = ops
                .post(&rerun)
                .json(&json!({"date": SNAPSHOT_DAY}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            report = res.json::<Value>().await.unwrap()["data"].clone();
            report["ran"] == true
        },
    )
    .await;
    assert_eq!(
        (
            report["succeeded"].as_u64(),
            report["failedMembers"].as_u64()
        ),
        (Some(MEMBERS as u64), Some(0)),
        "{report}"
    );
    assert_eq!(count(&env.state, "acme", &snapshots).await, MEMBERS as i64);
    assert_eq!(count(&env.state, "acme", &board).await, MEMBERS as i64);
    let distinct = format!(
        "SELECT count(DISTINCT user_id) AS n FROM portfolio_snapshots WHERE snapshot_date = '{SNAPSHOT_DAY}'"
    );
    assert_eq!(count(&env.state, "acme", &distinct).await, MEMBERS as i64);
    let ids: Vec<Name> = env
        .state
        .tenants
        .with_tenant(&acme(), async |conn| {
            diesel::sql_query(format!(
                "SELECT user_id::text AS name FROM portfolio_snapshots WHERE snapshot_date = '{SNAPSHOT_DAY}'"
            ))
            .load::<Name>(conn)
            .await
            .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
    let ids: BTreeSet<rampart_auth::UserId> = ids.iter().map(|n| n.name.parse().unwrap()).collect();
    assert_eq!(ids, members, "a member's snapshot is missing");
    eprintln!(
        "faults/snapshot: killed after {partial} of {MEMBERS} snapshots; rerun wrote the rest, {MEMBERS} rows in all"
    );
    env.server.stop().await;
}
