//! Load runs of issue 8 against the real server (release build, both
//! listeners, real PostgreSQL) on loopback, over mTLS keep-alive
//! connections: the refresh grant, a cached portfolio analytics read, an L1
//! quote and an Argon2id login, each at saturation and at half of it (fixed
//! rate); 1,000 concurrent logins; and 1,000 tenants with the load spread
//! over all of them (latency and PostgreSQL catalog size).
//!
//! Measurements, not pass/fail tests (they only fail on errors under load):
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/rampart-release \
//!   cargo test --release -p rampart-server --test tests -- --ignored --nocapture --test-threads 1 load::
//! ```
//!
//! The load generator is in this file: wrk cannot present a client
//! certificate, and oha cannot rotate refresh tokens or give every request
//! another tenant's token. It keeps N TLS 1.3 connections open (each with a
//! client certificate of the test CA), sends one request at a time per
//! connection (HTTP/1.1 keep-alive, no pipelining). In fixed-rate mode a
//! request that is late because the previous answer came late is timed from
//! when it was due, not from when it was sent (the coordinated-omission
//! correction of wrk2 and oha `-q`). Environment: `LOAD_SECONDS` (10),
//! `LOAD_THREADS` (1 generator thread), `LOAD_TENANTS` (1000),
//! `LOAD_TENANT_CACHE_TTL_MS` (the server's default), `LOAD_AUDIT_SEAL_SECS`
//! (the server's default), `LOAD_DATA_DIR` and
//! `LOAD_SKIP_DUMP=1` (the scale run: kept cluster, no `pg_dump`). Results and how to read
//! them: `BENCHMARKS.md`.
use rampart_testkit::valid_slug;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_auth::{AuthServer, Role};
use rampart_ratelimit::Quota;
use rampart_server::config::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{CLIENT_SCOPES, Env, PASSWORD, Pki, argon2_bound, web_client};

// ---------------------------------------------------------------------------
// The load generator.

/// What the connections send.
#[derive(Clone)]
enum Work {
    /// Ready requests, taken round robin across all connections (connection
    /// `c` sends `c`, `c + N`, `c + 2N`, … modulo the list).
    Fixed(Arc<Vec<Vec<u8>>>),
    /// Refresh grants: connection `c` rotates the token chain in slot `c`
    /// (tenant, refresh token) and writes the last token back.
    Refresh(Arc<Mutex<Vec<(String, String)>>>),
}

fn refresh_request(tenant: &str, token: &str) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", "web")
        .append_pair("refresh_token", token)
        .finish();
    post(
        &format!("/t/{tenant}/oauth/token"),
        &[],
        "application/x-www-form-urlencoded",
        &body,
    )
}

fn get(path: &str, bearer: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {bearer}\r\n\r\n")
        .into_bytes()
}

fn post(path: &str, headers: &[(&str, &str)], content_type: &str, body: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// One run of the generator.
#[derive(Clone)]
struct Load {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    connections: usize,
    /// Generator threads (one current-thread runtime each).
    threads: usize,
    duration: Duration,
    /// Requests per second over all connections; `None`: as fast as answered.
    rate: Option<f64>,
    /// Stop each connection after this many requests.
    per_connection: Option<u64>,
}

#[derive(Debug, Default)]
struct Outcome {
    /// Responses with the expected status.
    ok: u64,
    /// Other statuses, by status.
    unexpected: BTreeMap<u16, u64>,
    /// I/O or protocol errors.
    errors: u64,
    first_error: Option<String>,
    /// From the common start to the last response.
    elapsed: Duration,
    /// Latency of every expected response, microseconds.
    latencies: Vec<u64>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * p / 100.0) as usize).min(self.latencies.len() - 1);
        self.latencies[i] as f64 / 1000.0
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        for (s, n) in other.unexpected {
            *self.unexpected.entry(s).or_default() += n;
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latencies.extend(other.latencies);
    }

    fn failures(&self) -> u64 {
        self.errors + self.unexpected.values().sum::<u64>()
    }
}

struct Conn {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    async fn open(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> std::io::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(32 * 1024),
        })
    }

    /// Sends one request, reads one response: status and body.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, &[u8])> {
        let proto = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| proto("head"))?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| proto("status line"))?;
        let mut length = 0usize;
        for line in head.split("\r\n").skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(|_| proto("content-length"))?;
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(proto("chunked responses are not supported"));
                }
            }
        }
        while self.buf.len() < head_end + length {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok((status, &self.buf[head_end..head_end + length]))
    }
}

/// One connection's loop.
async fn drive(
    mut conn: Conn,
    index: usize,
    load: Load,
    work: Work,
    expect: u16,
    start: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let end = start + load.duration;
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(load.connections as f64 / r));
    let mut due = start
        + interval.map_or(Duration::ZERO, |i| {
            i * index as u32 / load.connections as u32
        });
    let mut refresh = match &work {
        Work::Refresh(slots) => Some(slots.lock().unwrap()[index].clone()),
        Work::Fixed(_) => None,
    };
    let mut sent = 0u64;
    tokio::time::sleep_until(start.into()).await;
    let mut done = start;
    loop {
        if load.per_connection.is_some_and(|n| sent >= n) {
            break;
        }
        let began = match interval {
            Some(i) => {
                if due >= end {
                    break;
                }
                let d = due;
                due += i;
                if done > d {
                    // Behind schedule because the previous answer came late:
                    // this request has been waiting since it was due.
                    d
                } else {
                    // On schedule: from when it is sent (the timer may wake
                    // up to a millisecond late, which is not the server's).
                    tokio::time::sleep_until(d.into()).await;
                    Instant::now()
                }
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        let owned;
        let request: &[u8] = match (&work, &refresh) {
            (Work::Fixed(list), _) => {
                &list[(index + sent as usize * load.connections) % list.len()]
            }
            (Work::Refresh(_), Some((tenant, token))) => {
                owned = refresh_request(tenant, token);
                &owned
            }
            (Work::Refresh(_), None) => unreachable!(),
        };
        sent += 1;
        let answer = conn.exchange(request).await;
        done = Instant::now();
        match answer {
            Ok((status, body)) if status == expect => {
                out.latencies
                    .push(done.duration_since(began).as_micros() as u64);
                out.ok += 1;
                if let Some((_, token)) = refresh.as_mut() {
                    let text = String::from_utf8_lossy(body);
                    match text
                        .split("\"refresh_token\":\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                    {
                        Some(next) => *token = next.to_owned(),
                        None => {
                            out.errors += 1;
                            out.first_error = Some(format!("no refresh token in {text}"));
                            break;
                        }
                    }
                }
            }
            Ok((status, body)) => {
                *out.unexpected.entry(status).or_default() += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(format!(
                        "status {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ));
                }
                // A refused refresh token ends its chain.
                if refresh.is_some() {
                    break;
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
                break;
            }
        }
    }
    out.elapsed = start.elapsed();
    if let (Work::Refresh(slots), Some(last)) = (&work, refresh) {
        slots.lock().unwrap()[index] = last;
    }
    out
}

/// Opens every connection, then runs them from one common start.
fn run_load(load: &Load, work: &Work, expect: u16) -> Outcome {
    let threads = load.threads.max(1).min(load.connections);
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let start_at = Arc::new(Mutex::new(None::<Instant>));
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (load, work, barrier, start_at) = (
                    load.clone(),
                    work.clone(),
                    barrier.clone(),
                    start_at.clone(),
                );
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let mine: Vec<usize> = (t..load.connections).step_by(threads).collect();
                    let conns: Vec<Conn> = rt.block_on(async {
                        futures::future::try_join_all(
                            mine.iter().map(|_| Conn::open(load.addr, load.tls.clone())),
                        )
                        .await
                        .expect("connecting to the server")
                    });
                    barrier.wait();
                    // Shortly after the last connection is open.
                    let start = *start_at
                        .lock()
                        .unwrap()
                        .get_or_insert_with(|| Instant::now() + Duration::from_millis(20));
                    rt.block_on(async {
                        let tasks: Vec<_> = conns
                            .into_iter()
                            .zip(mine)
                            .map(|(conn, index)| {
                                tokio::spawn(drive(
                                    conn,
                                    index,
                                    load.clone(),
                                    work.clone(),
                                    expect,
                                    start,
                                ))
                            })
                            .collect();
                        let mut out = Outcome::default();
                        for t in tasks {
                            out.merge(t.await.unwrap());
                        }
                        out
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut out = Outcome::default();
    for r in results {
        out.merge(r);
    }
    out
}

/// This process's resident memory (`VmRSS` of /proc/self/status).
fn vm_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Rows of the printed table.
struct Table(Vec<String>);

impl Table {
    fn new() -> Self {
        Table(vec![
            "| scenario | load | conns | req/s | p50 ms | p99 ms | failed | loadavg (1/5/15 min) |"
                .into(),
            "|---|---|---:|---:|---:|---:|---:|---|".into(),
        ])
    }

    fn row(&mut self, scenario: &str, mode: &str, conns: usize, out: &mut Outcome, avg: &str) {
        let (p50, p99) = (out.percentile_ms(50.0), out.percentile_ms(99.0));
        let line = format!(
            "| {scenario} | {mode} | {conns} | {:.0} | {p50:.2} | {p99:.2} | {} | {avg} |",
            out.rps(),
            out.failures()
        );
        println!("{line}");
        if let Some(e) = &out.first_error {
            println!("    first failure: {e}");
        }
        self.0.push(line);
    }

    fn print(&self, title: &str) {
        println!("\n## {title}\n{}\n", self.0.join("\n"));
    }
}

/// Saturation (no rate, `conns` connections), then a fixed rate of half of
/// what saturation reached, on the same number of connections; both rows
/// into the table. Returns the saturation outcome.
async fn saturation_and_half(
    table: &mut Table,
    scenario: &str,
    base: &Load,
    work: &Work,
    expect: u16,
    warm: impl AsyncFn(),
) -> (f64, f64) {
    warm().await;
    let mut sat = {
        let (load, work) = (base.clone(), work.clone());
        let avg = loadavg();
        let out = tokio::task::spawn_blocking(move || run_load(&load, &work, expect))
            .await
            .unwrap();
        (out, avg)
    };
    table.row(scenario, "saturation", base.connections, &mut sat.0, &sat.1);
    let half_rate = sat.0.rps() / 2.0;
    warm().await;
    let mut half = {
        let (mut load, work) = (base.clone(), work.clone());
        load.rate = Some(half_rate);
        let avg = loadavg();
        let out = tokio::task::spawn_blocking(move || run_load(&load, &work, expect))
            .await
            .unwrap();
        (out, avg)
    };
    table.row(
        scenario,
        &format!("fixed {half_rate:.0}/s"),
        base.connections,
        &mut half.0,
        &half.1,
    );
    for (name, out) in [("saturation", &sat.0), ("half", &half.0)] {
        assert_eq!(
            out.failures(),
            0,
            "{scenario} ({name}): failures under load: {:?} {:?}",
            out.unexpected,
            out.first_error
        );
    }
    (sat.0.rps(), half.0.percentile_ms(99.0))
}

// ---------------------------------------------------------------------------
// The server and its data.

struct Server {
    env: Env,
    tls: Arc<rustls::ClientConfig>,
}

/// The server as `rampart serve` runs it (both listeners, every scheduled
/// job, the request log, rate limiting on with quotas far above the load,
/// in memory: no Redis), PostgreSQL from
/// the test kit, production Argon2id parameters unless `cheap_passwords`.
async fn start_server(cheap_passwords: bool) -> Server {
    start_server_on(cheap_passwords, None).await
}

/// [`start_server`] on the database `database_url` when given (the scale
/// run's own cluster), else on a fresh database of the kit's server.
async fn start_server_on(cheap_passwords: bool, database_url: Option<String>) -> Server {
    // The request log of `rampart serve --log-json` (level info), each line
    // formatted and written (one write per line, as to stderr) to /dev/null.
    let sink = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(Mutex::new(sink))
        .try_init();
    let pki = Pki::new();
    let mut config: ServerConfig = crate::common::config(&pki).await;
    if let Some(url) = database_url {
        config.database.database_url = url;
        // Set-up of many tenants takes longer than an access token lives:
        // the tokens made during it still have to work in the runs after.
        config.auth.access_token_ttl_secs = 12 * 3600;
    }
    config.http.workers = 0; // one per core
    config.database.max_connections = 16;
    // The tenant registry cache (default 2 s): how soon other replicas see a
    // suspension, and how often each tenant is read again under load.
    if let Some(ms) = env_number("LOAD_TENANT_CACHE_TTL_MS") {
        config.database.tenant_cache_ttl_ms = ms;
    }
    // How often the audit sealer runs (default 10 s): each pass seals what
    // the refresh grants appended since the last one.
    if let Some(secs) = env_number("LOAD_AUDIT_SEAL_SECS") {
        config.auth.audit_seal_secs = secs;
    }
    if !cheap_passwords {
        let defaults = rampart_auth::AuthConfig::default();
        config.auth.argon2_m_kib = defaults.argon2_m_kib;
        config.auth.argon2_t = defaults.argon2_t;
        config.auth.argon2_p = defaults.argon2_p;
    }
    let lots = Quota::new(100_000_000, Duration::from_secs(60), 10_000_000);
    config.rate_limit.per_ip = lots;
    config.rate_limit.per_tenant = lots;
    config.rate_limit.per_tenant_authenticated = lots;
    // One account logs in from every connection: the per-account bound on
    // concurrent Argon2id work (an abuse defence, 429 past it) is lifted so
    // the run measures the hashing path, not the refusal.
    config.auth.account_hash_concurrency = 2_000;
    // For the same reason the per-account-and-source login budget (an
    // abuse defence: 429 past it) is lifted; the bound under test is the
    // hasher's.
    config.auth.rate_limit_attempts = 100_000_000;
    // Concurrent attempts of one account from one source count as failures
    // until they settle, so they would also be slowed down progressively.
    config.auth.backoff_base_ms = 0;
    config.auth.backoff_cap_ms = 0;
    // And 1,000 logins at once from one address are that many attempts in
    // flight: the per-source and lockout bounds are lifted as well.
    config.auth.source_attempts = 100_000_000;
    config.auth.lockout_threshold = 100_000_000;
    let env = Env::start(pki, config).await;
    // The load generator's TLS: the test CA, and a client certificate.
    let client = env
        .pki
        .ca
        .issue_client("load", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(env.pki.ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    Server {
        env,
        tls: Arc::new(tls),
    }
}

impl Server {
    fn auth(&self) -> Arc<AuthServer> {
        self.env.auth()
    }

    fn load(&self, connections: usize, seconds: u64) -> Load {
        Load {
            addr: self.env.addr,
            tls: self.tls.clone(),
            connections,
            threads: env_number("LOAD_THREADS").unwrap_or(1),
            duration: Duration::from_secs(seconds),
            rate: None,
            per_connection: None,
        }
    }

    fn url(&self, path: &str) -> String {
        self.env.url(path)
    }
}

/// The number in the environment variable `name`, when it is set to one.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// How long each run lasts: `LOAD_SECONDS` (10 s).
fn load_seconds() -> u64 {
    env_number("LOAD_SECONDS").unwrap_or(10)
}

/// The database name of a PostgreSQL URL.
fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// A tenant ready for the scenarios: a public client `web` (code flow and
/// refresh), a trader with a session, and a portfolio.
struct Tenant {
    slug: String,
    session: String,
    access: String,
    portfolio: String,
}

/// Provisions tenant `slug` (display name: the slug).
async fn provision(s: &Server, slug: &str) {
    let tenants = &s.env.state.tenants;
    tenants.provision(&valid_slug(slug), slug).await.unwrap();
}

async fn setup_tenant(s: &Server, slug: &str, provisioned: bool) -> Tenant {
    if !provisioned {
        provision(s, slug).await;
    }
    populate_tenant(s, slug, provisioned).await
}

/// A provisioned tenant's client, user, session, token and portfolio. With
/// `resuming`, a client or user an interrupted run made already is kept.
async fn populate_tenant(s: &Server, slug: &str, resuming: bool) -> Tenant {
    let auth = s.auth();
    let kept = |r: Result<_, rampart_auth::AuthError>| match r {
        Ok(_) => {}
        Err(rampart_auth::AuthError::Conflict(_)) if resuming => {}
        Err(e) => panic!("{slug}: {e}"),
    };
    kept(
        auth.register_client(
            &valid_slug(slug),
            &web_client(&["authorization_code", "refresh_token"]),
        )
        .await
        .map(drop),
    );
    let email = format!("ada@{slug}.test");
    kept(
        auth.register(&valid_slug(slug), &email, "Ada", PASSWORD, Role::Trader)
            .await
            .map(drop),
    );
    let session = crate::common::login(&auth, slug, &email, PASSWORD).await;
    let (access, _) = code_flow(&auth, slug, &session.token).await;
    let res = s
        .env
        .http
        .post(s.url(&format!("/api/v1/t/{slug}/portfolios")))
        .bearer_auth(&access)
        .json(&serde_json::json!({"name": "Tech", "positions": [
            {"symbol": "AAPL", "quantity": 100, "target_weight": 0.5, "sector": "Technology"},
            {"symbol": "MSFT", "quantity": 200, "purchase_date": "2006-06-01", "sector": "Technology"},
            {"symbol": "IBM", "quantity": 10, "sector": "Services"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    Tenant {
        slug: slug.to_owned(),
        session: session.token,
        access,
        portfolio: body["data"]["id"].as_str().unwrap().to_owned(),
    }
}

/// A tenant an earlier, interrupted run set up: a new session and token
/// (the server's keys are new), the recorded portfolio.
async fn resume_tenant(s: &Server, slug: &str, portfolio: &str) -> Tenant {
    let auth = s.auth();
    let session = crate::common::login(&auth, slug, &format!("ada@{slug}.test"), PASSWORD).await;
    let (access, _) = code_flow(&auth, slug, &session.token).await;
    Tenant {
        slug: slug.to_owned(),
        session: session.token,
        access,
        portfolio: portfolio.to_owned(),
    }
}

impl Tenant {
    /// Its line in the scale run's `populated.tsv`.
    fn line(&self) -> String {
        format!("{}\t{}\n", self.slug, self.portfolio)
    }
}

/// Appends the tenants set up since the last call to `populated.tsv` (when
/// the run is resumable) and empties `done`.
fn record_progress(progress: Option<&std::path::Path>, done: &mut Vec<String>) {
    if let Some(path) = progress {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(done.concat().as_bytes()).unwrap();
        file.sync_data().unwrap();
    }
    done.clear();
}

/// The scale run's own PostgreSQL (settings for many schemas: a lock table
/// large enough for `pg_dump` to lock every table of 10,000 schemas in one
/// transaction, 1 GiB of shared buffers for their catalogs) and the database
/// the server uses on it. With `data_dir` the cluster is kept there and the
/// database `rampart_scale` reused: a run that stops part way resumes.
async fn scale_postgres(
    data_dir: Option<std::path::PathBuf>,
) -> (&'static rampart_testkit::PgServer, String) {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    static PG: std::sync::OnceLock<rampart_testkit::PgServer> = std::sync::OnceLock::new();
    let resumable = data_dir.is_some();
    if let Some(dir) = &data_dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    let pg = PG.get_or_init(|| {
        rampart_testkit::PgServer::start_with(rampart_testkit::PgOptions {
            data_dir,
            settings: SCALE_PG_SETTINGS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        })
        .unwrap()
    });
    if !resumable {
        return (pg, pg.fresh_database().await.unwrap().url);
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&pg.url("postgres"))
        .await
        .unwrap();
    // Already there when the run resumes.
    let _ = conn
        .batch_execute("CREATE DATABASE rampart_scale ENCODING 'UTF8' TEMPLATE template0")
        .await;
    (pg, pg.url("rampart_scale"))
}

/// The PostgreSQL settings of the scale run (stated in BENCHMARKS.md).
const SCALE_PG_SETTINGS: &[(&str, &str)] = &[
    ("max_locks_per_transaction", "8192"),
    ("shared_buffers", "1GB"),
    ("max_connections", "100"),
];

/// Access and refresh token through the authorization code flow with PKCE
/// for an existing session.
async fn code_flow(auth: &AuthServer, tenant: &str, session: &str) -> (String, String) {
    let (access, refresh) = crate::common::code_flow(auth, tenant, session, CLIENT_SCOPES).await;
    (access, refresh.expect("a refresh token for the web client"))
}

/// The refresh-grant work: one token chain per connection.
async fn refresh_chains(auth: &AuthServer, t: &Tenant, conns: usize) -> Work {
    let mut chains = Vec::new();
    for _ in 0..conns {
        chains.push((t.slug.clone(), code_flow(auth, &t.slug, &t.session).await.1));
    }
    Work::Refresh(Arc::new(Mutex::new(chains)))
}

const WINDOW: &str = "from=2005-01-01&to=2009-12-31";

fn analytics_path(t: &Tenant) -> String {
    format!(
        "/api/v1/t/{}/portfolios/{}/analytics?{WINDOW}",
        t.slug, t.portfolio
    )
}

fn analytics_request(t: &Tenant) -> Vec<u8> {
    get(&analytics_path(t), &t.access)
}

fn quote_path(t: &Tenant) -> String {
    format!("/api/v1/t/{}/quotes/AAPL", t.slug)
}

fn quote_request(t: &Tenant) -> Vec<u8> {
    get(&quote_path(t), &t.access)
}

const CSRF: &str = "load-run-csrf-token";

fn login_request(t: &Tenant) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", &format!("ada@{}.test", t.slug))
        .append_pair("password", PASSWORD)
        .append_pair(
            "return_to",
            &format!(
                "/t/{}/oauth/authorize?response_type=code&client_id=web",
                t.slug
            ),
        )
        .append_pair("csrf", CSRF)
        .finish();
    // Double submit: the form field and the (https) cookie carry one value.
    post(
        &format!("/t/{}/oauth/login", t.slug),
        &[("Cookie", &format!("__Secure-rampart_csrf={CSRF}"))],
        "application/x-www-form-urlencoded",
        &body,
    )
}

/// Every request once (analytics computed and cached, quotes in L1, tokens
/// in the verified-token cache), checking the answers.
async fn warm(s: &Server, requests: &[Vec<u8>], connections: usize) {
    let load = Load {
        per_connection: Some(requests.len().div_ceil(connections) as u64),
        duration: Duration::from_secs(600),
        ..s.load(connections.min(requests.len()), 600)
    };
    let work = Work::Fixed(Arc::new(requests.to_vec()));
    let out = tokio::task::spawn_blocking(move || run_load(&load, &work, 200))
        .await
        .unwrap();
    assert_eq!(
        out.failures(),
        0,
        "warm-up failed: {:?} {:?}",
        out.unexpected,
        out.first_error
    );
}

/// [`saturation_and_half`] of `requests` (round robin, answered 200) on
/// `conns` connections for `seconds`, each half after [`warm`] with
/// `warm_connections`.
async fn cached_reads(
    table: &mut Table,
    scenario: &str,
    s: &Server,
    (conns, seconds): (usize, u64),
    requests: &[Vec<u8>],
    warm_connections: usize,
) -> (f64, f64) {
    saturation_and_half(
        table,
        scenario,
        &s.load(conns, seconds),
        &Work::Fixed(Arc::new(requests.to_vec())),
        200,
        async || warm(s, requests, warm_connections).await,
    )
    .await
}

/// (1) The refresh grant at saturation and half of it, one token chain of
/// `t` per connection.
async fn refresh_grant(
    table: &mut Table,
    s: &Server,
    t: &Tenant,
    (conns, seconds): (usize, u64),
) -> (f64, f64) {
    let refresh = refresh_chains(&s.auth(), t, conns).await;
    saturation_and_half(
        table,
        "(1) refresh grant",
        &s.load(conns, seconds),
        &refresh,
        200,
        async || {},
    )
    .await
}

/// The server ([`start_server`]) with its tenant `acme` set up.
async fn server_with_acme(cheap_passwords: bool) -> (Server, Tenant) {
    let s = start_server(cheap_passwords).await;
    let t = setup_tenant(&s, "acme", false).await;
    (s, t)
}

// ---------------------------------------------------------------------------
// The runs.

/// Issue 8, load runs (1)–(4) at saturation and half of it, and 1,000
/// concurrent logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement: run with --release, see the module docs"]
async fn load_runs() {
    let (s, t) = server_with_acme(false).await;
    let auth = s.auth();
    let conns = 32;
    let seconds = load_seconds();
    let mut table = Table::new();
    println!("{}", table.0.join("\n"));

    // (1) Refresh grant: one token chain per connection.
    let (refresh_rps, refresh_p99) = refresh_grant(&mut table, &s, &t, (conns, seconds)).await;

    // (2) Portfolio analytics served from cache.
    let analytics = vec![analytics_request(&t)];
    let body = s.env.expect_get(200, &analytics_path(&t), &t.access).await;
    assert!(body["data"]["report"]["risk"]["sharpe"].is_f64(), "{body}");
    let (analytics_rps, analytics_p99) = cached_reads(
        &mut table,
        "(2) portfolio analytics (cached)",
        &s,
        (conns, seconds),
        &analytics,
        1,
    )
    .await;

    // (3) A quote from L1.
    let quotes = vec![quote_request(&t)];
    warm(&s, &quotes, 1).await;
    let body = s.env.expect_get(200, &quote_path(&t), &t.access).await;
    assert_eq!(body["data"]["source"]["layer"], "l1", "{body}");
    let (quote_rps, quote_p99) = cached_reads(
        &mut table,
        "(3) quote from L1",
        &s,
        (conns, seconds),
        &quotes,
        1,
    )
    .await;

    // (4) Login with Argon2id (production parameters).
    let (hash_ms, bound) = argon2_bound(&auth).await;
    let login = Work::Fixed(Arc::new(vec![login_request(&t)]));
    let (login_rps, login_p99) = saturation_and_half(
        &mut table,
        "(4) login (Argon2id)",
        &s.load(8, seconds),
        &login,
        303,
        async || {},
    )
    .await;

    // 1,000 concurrent logins: 1,000 connections, one login each, at once.
    let burst = Load {
        per_connection: Some(1),
        duration: Duration::from_secs(600),
        ..s.load(1000, 600)
    };
    let avg = loadavg();
    let mut out = tokio::task::spawn_blocking(move || run_load(&burst, &login, 303))
        .await
        .unwrap();
    let (p50, p99) = (out.percentile_ms(50.0), out.percentile_ms(99.0));
    let burst_line = format!(
        "1,000 concurrent logins: {} ok, {} failed, all done in {:.1} s ({:.0}/s), p50 {p50:.0} ms, p99 {p99:.0} ms, loadavg {avg}",
        out.ok,
        out.failures(),
        out.elapsed.as_secs_f64(),
        out.rps(),
    );
    assert_eq!(out.failures(), 0, "{:?}", out.first_error);

    table.print("Load runs");
    println!("{burst_line}");
    println!(
        "Argon2id (m = 19 MiB, t = 2, p = 1): {hash_ms:.1} ms per hash, bound {bound:.0}/s on \
         {} cores; login reached {:.0} % of it",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        login_rps * 100.0 / bound
    );
    println!(
        "aims: (1) {refresh_rps:.0}/s vs 10,000; (2) {analytics_rps:.0}/s vs 20,000; (3) {quote_rps:.0}/s vs 20,000; \
         p99 at half load: {refresh_p99:.2} / {analytics_p99:.2} / {quote_p99:.2} / {login_p99:.2} ms vs 10 ms"
    );
    println!(
        "10,000 requests per minute = 167/s: (2) saturates at {:.0}x that",
        analytics_rps / (10_000.0 / 60.0)
    );
    s.env.server.stop().await;
}

#[derive(diesel::QueryableByName, Debug)]
struct Catalog {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    database_bytes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    catalog_bytes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    relations: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    attributes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    tenant_schemas: i64,
}

async fn catalog(s: &Server) -> Catalog {
    use diesel_async::RunQueryDsl;
    let mut conn = s.env.state.tenants.raw_pool().get().await.unwrap();
    diesel::sql_query(
        "SELECT pg_database_size(current_database()) AS database_bytes, \
         (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c \
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pg_catalog')::bigint AS catalog_bytes, \
         (SELECT count(*) FROM pg_class) AS relations, \
         (SELECT count(*) FROM pg_attribute) AS attributes, \
         (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%') AS tenant_schemas",
    )
    .get_result(&mut conn)
    .await
    .unwrap()
}

fn catalog_line(when: &str, c: &Catalog) -> String {
    format!(
        "| {when} | {} | {:.1} | {:.1} | {} | {} |",
        c.tenant_schemas,
        c.database_bytes as f64 / 1_048_576.0,
        c.catalog_bytes as f64 / 1_048_576.0,
        c.relations,
        c.attributes
    )
}

/// Provisions `n` tenants one at a time, each after a replenish of the
/// spare schemas (what the `spares` job does between sign-ups), checks that
/// each took a spare, and purges them again (a kept cluster keeps only their
/// registry tombstones). The durations in ms, sorted.
async fn sign_ups_with_spares(s: &Server, n: usize) -> Vec<f64> {
    let tenants = &s.env.state.tenants;
    let run = chrono::Utc::now().timestamp();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        tenants.replenish_spares().await.unwrap();
        let slug = format!("signup{run}x{i}");
        let at = Instant::now();
        tenants
            .provision(&valid_slug(&slug), "Sign-up")
            .await
            .unwrap();
        times.push(at.elapsed().as_secs_f64() * 1000.0);
        let events = tenants.events(&valid_slug(&slug)).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.event == "provisioned" && e.detail["spare"] == true),
            "{slug} built its schema although a spare was ready"
        );
        tenants
            .deactivate(&valid_slug(&slug), None, Some("load"))
            .await
            .unwrap();
        tenants
            .purge(&valid_slug(&slug), true, Some("load"))
            .await
            .unwrap();
    }
    times.sort_by(f64::total_cmp);
    times
}

/// Issue 8, tenants at scale: (2) and (3) on one tenant, then 1,000 tenants
/// provisioned and the same load spread over all of them (each request
/// another tenant's path and token, round robin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement: run with --release, see the module docs"]
async fn tenants_at_scale() {
    let tenants_wanted: usize = env_number("LOAD_TENANTS").unwrap_or(1000);
    let seconds = load_seconds();
    // Logins are not measured here: cheap password hashing keeps the setup
    // of 1,000 users short.
    let data_dir = std::env::var_os("LOAD_DATA_DIR").map(std::path::PathBuf::from);
    let (pg, database_url) = scale_postgres(data_dir.clone()).await;
    let s = start_server_on(true, Some(database_url)).await;
    // A resumed run's tenants may be behind the template of this build: one
    // migrate-all brings them to it first (what an operator runs on
    // upgrade: `rampart tenants migrate`).
    let caught_up = s.env.state.tenants.migrate_all().await.unwrap();
    assert!(caught_up.failed.is_empty(), "{caught_up:?}");
    let caught_up = format!(
        "| migrate-all on resume ({} tenants behind) | {:.1} s |",
        caught_up.behind,
        caught_up.elapsed.as_secs_f64()
    );
    let conns = 32;
    let mut table = Table::new();
    let mut catalogs = vec![
        "| when | tenant schemas | database MiB | pg_catalog MiB | pg_class rows | pg_attribute rows |"
            .to_owned(),
        "|---|---:|---:|---:|---:|---:|".to_owned(),
    ];
    // What an interrupted run (`LOAD_DATA_DIR`) already did: the tenants in
    // the registry, and those fully set up (`populated.tsv`: slug, portfolio).
    let provisioned: std::collections::HashSet<String> = s
        .env
        .state
        .tenants
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug.as_str().to_owned())
        .collect();
    let progress = data_dir.as_ref().map(|d| d.join("populated.tsv"));
    let populated: BTreeMap<String, String> = progress
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(slug, portfolio)| (slug.to_owned(), portfolio.to_owned()))
        .collect();
    if provisioned.is_empty() {
        catalogs.push(catalog_line("no tenant", &catalog(&s).await));
    }
    let mut done = Vec::new();
    let first = match populated.get("t00000") {
        Some(portfolio) => resume_tenant(&s, "t00000", portfolio).await,
        None => {
            let t = setup_tenant(&s, "t00000", provisioned.contains("t00000")).await;
            done.push(t.line());
            t
        }
    };
    if provisioned.is_empty() {
        catalogs.push(catalog_line("1 tenant", &catalog(&s).await));
    }
    record_progress(progress.as_deref(), &mut done);

    let run = (conns, seconds);
    let one_analytics = vec![analytics_request(&first)];
    let one_quotes = vec![quote_request(&first)];
    cached_reads(
        &mut table,
        "(2) analytics, 1 tenant",
        &s,
        run,
        &one_analytics,
        1,
    )
    .await;
    cached_reads(&mut table, "(3) quote, 1 tenant", &s, run, &one_quotes, 1).await;

    let started = Instant::now();
    let mut all = vec![first];
    let slugs: Vec<String> = (1..tenants_wanted).map(|i| format!("t{i:05}")).collect();
    // Provisioning alone (schema from the baseline, registry rows), one at a
    // time so each duration is its own; then the rest of each tenant's set-up
    // (client, user, session, token, portfolio), 4 at a time. A resumed run
    // skips what is done (and logs in again where a tenant is set up).
    let mut provisioning = Vec::with_capacity(slugs.len());
    for (i, slug) in slugs.iter().enumerate() {
        if provisioned.contains(slug) {
            continue;
        }
        let at = Instant::now();
        provision(&s, slug).await;
        provisioning.push(at.elapsed().as_secs_f64() * 1000.0);
        if (i + 1) % 1000 == 0 {
            eprintln!(
                "provisioned {} tenants, {:.0} s, load average {}",
                i + 1,
                started.elapsed().as_secs_f64(),
                loadavg()
            );
        }
    }
    let provision_secs = started.elapsed().as_secs_f64();
    for (i, chunk) in slugs.chunks(4).enumerate() {
        let made = futures::future::join_all(chunk.iter().map(|slug| async {
            match populated.get(slug) {
                Some(portfolio) => (resume_tenant(&s, slug, portfolio).await, false),
                None => (
                    populate_tenant(&s, slug, provisioned.contains(slug)).await,
                    true,
                ),
            }
        }))
        .await;
        for (t, new) in made {
            if new {
                done.push(t.line());
            }
            all.push(t);
        }
        if done.len() >= 200 || (i + 1) * 4 >= slugs.len() {
            record_progress(progress.as_deref(), &mut done);
        }
        if ((i + 1) * 4) % 1000 == 0 {
            eprintln!(
                "set up {} tenants, {:.0} s, load average {}",
                (i + 1) * 4,
                started.elapsed().as_secs_f64(),
                loadavg()
            );
        }
    }
    let setup_secs = started.elapsed().as_secs_f64();
    catalogs.push(catalog_line(
        &format!("{} tenants", all.len()),
        &catalog(&s).await,
    ));
    // Sign-ups with a spare ready, at the full catalog: the `spares` job
    // keeps schemas built, and a provisioning renames one.
    let sign_ups = sign_ups_with_spares(&s, 20).await;
    provisioning.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        provisioning
            .get(((provisioning.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut operations = vec![
        "| operation | figure |".to_owned(),
        "|---|---:|".to_owned(),
        format!(
            "| provisioning, p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        ),
        format!(
            "| provisioning with a spare ready, {} sign-ups, p50 / max | {:.1} / {:.1} ms |",
            sign_ups.len(),
            sign_ups[sign_ups.len() / 2],
            sign_ups[sign_ups.len() - 1]
        ),
        format!(
            "| provisioning, all {} (this run) | {provision_secs:.0} s |",
            provisioning.len()
        ),
        format!(
            "| set-up (provisioning + populating; a resumed run logs in again) | {setup_secs:.0} s |"
        ),
        caught_up,
    ];
    // migrate-all with nothing to do, then with one new migration.
    let no_op = s.env.state.tenants.migrate_all().await.unwrap();
    assert_eq!(no_op.behind, 0, "{no_op:?}");
    operations.push(format!(
        "| migrate-all, nothing to do | {:.2} s |",
        no_op.elapsed.as_secs_f64()
    ));
    // A version of this run's own (a resumed run's tenants may carry an
    // earlier run's): the latest real version followed by the Unix time.
    // Versions compare as text, so it sorts after this build's migrations
    // and after an earlier run's, but before any later real migration
    // (`20261205000000…` < `20261206…`): a resumed run's migrate-all still
    // sees the tenants behind a newer build. (A `9999…` version here once
    // hid every later real migration from migrate-all on the kept cluster.)
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let embedded = rampart_tenancy::MigrationSet::embedded_tenant();
    let latest = embedded.latest_version().to_owned();
    let next = embedded
        .with([rampart_tenancy::TemplateMigration::new(
            format!("{latest}{stamp:010}"),
            "scale_note",
            format!("ALTER TABLE portfolios ADD COLUMN scale_note_{stamp} text"),
        )])
        .unwrap();
    let newer = rampart_tenancy::TenantPool::connect_with_template(
        s.env.state.config.database.clone(),
        next,
    )
    .await
    .unwrap();
    let one = newer.migrate_all().await.unwrap();
    assert!(one.failed.is_empty() && one.behind == all.len(), "{one:?}");
    operations.push(format!(
        "| migrate-all, one new migration | {:.1} s |",
        one.elapsed.as_secs_f64()
    ));
    // The whole database with pg_dump (custom format).
    let database = database_name(&s.env.state.config.database.database_url);
    let dump_dir = tempfile::tempdir().unwrap();
    let dump = dump_dir.path().join("all.dump");
    let at = Instant::now();
    // `LOAD_SKIP_DUMP=1` (a resumed run measuring the rest) skips it.
    let skip_dump = std::env::var("LOAD_SKIP_DUMP").is_ok_and(|v| v == "1");
    if !skip_dump {
        pg.server()
            .run_tool(
                "pg_dump",
                [
                    "-Fc".to_owned(),
                    "-f".into(),
                    dump.display().to_string(),
                    database,
                ],
            )
            .unwrap();
        operations.push(format!(
            "| pg_dump -Fc of the database | {:.0} s, {:.0} MiB |",
            at.elapsed().as_secs_f64(),
            std::fs::metadata(&dump).unwrap().len() as f64 / 1048576.0
        ));
    }
    operations.push(format!(
        "| process memory (server and load generator), VmRSS | {} |",
        vm_rss()
    ));

    let many_analytics: Vec<Vec<u8>> = all.iter().map(analytics_request).collect();
    let many_quotes: Vec<Vec<u8>> = all.iter().map(quote_request).collect();
    let n = all.len();
    let scenario = format!("(2) analytics, {n} tenants");
    cached_reads(&mut table, &scenario, &s, run, &many_analytics, 4).await;
    let scenario = format!("(3) quote, {n} tenants");
    cached_reads(&mut table, &scenario, &s, run, &many_quotes, 4).await;

    table.print("Tenants at scale");
    println!("{}\n", catalogs.join("\n"));
    println!("{}\n", operations.join("\n"));
    println!(
        "{} tenants provisioned and set up (schema, client, user, session, token, portfolio) in {setup_secs:.0} s",
        n - 1
    );
    s.env.server.stop().await;
}

// ---------------------------------------------------------------------------
// The physical reference for the refresh grant (issue 14).

/// The statements of one refresh grant as the server sends them (one
/// transaction: tenant routing, then one statement that rotates the token,
/// inserts its successor and the audit event and reads the user; access
/// tokens have no rows), for `pgbench`. Each transaction
/// presents one of `BENCH_TOKENS` seeded refresh tokens at random, found by
/// its hash like the server finds it (the unique index); one already
/// rotated (a repeat draw, a few per cent) is found and not rotated again.
/// Crypto, HTTP and TLS are not in it: what pgbench reaches is what
/// PostgreSQL alone allows on this machine.
/// Refresh tokens seeded for the pgbench reference.
const BENCH_TOKENS: u32 = 200_000;

fn pgbench_refresh_script(t: &rampart_tenancy::Tenant, client: &str) -> String {
    format!(
        "\\set i random(1, {BENCH_TOKENS})
BEGIN;
SELECT set_config('role', '{role}', true), set_config('search_path', '{schema}', true), set_config('statement_timeout', '30000ms', true), set_config('lock_timeout', '10000ms', true);
WITH old AS (UPDATE refresh_tokens SET rotated_at = now(), successor_id = gen_random_uuid(), successor_sealed = NULL WHERE token_hash = sha256(int4send(:i)) AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now() AND family_expires_at > now() RETURNING family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, family_expires_at), ins AS (INSERT INTO refresh_tokens (id, token_hash, family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, expires_at, family_expires_at) SELECT gen_random_uuid(), sha256(gen_random_uuid()::text::bytea), family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, least(now() + interval '30 days', family_expires_at), family_expires_at FROM old RETURNING id), audit AS (INSERT INTO audit_log (occurred_at, tenant_id, user_id, actor, action, result, ip, user_agent, detail) SELECT now(), '{tenant}', user_id, '{client}', 'token_refresh', 'success', '127.0.0.1', NULL, '{{}}'::jsonb FROM old) SELECT old.family_id, old.user_id, old.session_id, old.scope, old.auth_time, u.email, u.display_name, u.role, u.totp_enabled FROM old LEFT JOIN users u ON u.id = old.user_id AND u.status = 'active';
COMMIT;
",
        role = t.role_name,
        schema = t.schema_name,
        tenant = t.id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement: run with --release, see the module docs"]
async fn refresh_beside_pgbench() {
    let (s, t) = server_with_acme(true).await;
    let conns = 32;
    let seconds = load_seconds();
    let mut table = Table::new();
    let (server_rps, _) = refresh_grant(&mut table, &s, &t, (conns, seconds)).await;
    table.print("Refresh grant through the server");

    // BENCH_TOKENS refresh tokens to present, copied from a real one.
    let tenant = s
        .env
        .state
        .tenants
        .tenant(&valid_slug(&t.slug))
        .await
        .unwrap();
    let url = s.env.state.config.database.database_url.clone();
    let database = database_name(&url);
    {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO {schema}.refresh_tokens (id, token_hash, family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, expires_at, family_expires_at) \
             SELECT gen_random_uuid(), sha256(int4send(i)), md5(i::text)::uuid, r.client_id, r.user_id, r.session_id, r.scope, r.auth_code_hash, r.auth_time, now() + interval '30 days', now() + interval '30 days' \
             FROM generate_series(1, {BENCH_TOKENS}) i, (SELECT * FROM {schema}.refresh_tokens LIMIT 1) r; \
             ANALYZE {schema}.refresh_tokens",
            schema = tenant.schema_name,
        ))
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("refresh.sql");
    std::fs::write(&script, pgbench_refresh_script(&tenant, "web")).unwrap();
    let pg = rampart_testkit::postgres().unwrap();
    let avg = loadavg();
    let out = pg
        .server()
        .run_tool(
            "pgbench",
            [
                "-n".to_owned(),
                "-M".into(),
                "prepared".into(),
                "-c".into(),
                conns.to_string(),
                "-j".into(),
                "2".into(),
                "-T".into(),
                seconds.to_string(),
                "-f".into(),
                script.display().to_string(),
                database,
            ],
        )
        .unwrap();
    let tps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{out}"));
    let latency = out
        .lines()
        .find(|l| l.starts_with("latency average"))
        .unwrap_or("");
    println!(
        "\n## Refresh grant beside its pgbench reference\n\n| what | conns | per second | loadavg |\n|---|---:|---:|---|\n\
         | server refresh grant (saturation) | {conns} | {server_rps:.0} | |\n\
         | pgbench, the same statements | {conns} | {tps:.0} | {avg} |\n\n\
         server / pgbench = {:.0} %; pgbench {latency}\n",
        100.0 * server_rps / tps
    );
    assert!(
        tps > 0.0 && out.contains("number of failed transactions: 0"),
        "{out}"
    );
}
