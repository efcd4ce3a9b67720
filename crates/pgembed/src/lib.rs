//! # rampart-pgembed
//!
//! Starts a PostgreSQL server of its own on 127.0.0.1 with the installed
//! server binaries (`initdb`, `pg_ctl`; Debian's `/usr/lib/postgresql/*/bin`
//! is searched too): `rampart demo` keeps its cluster in a directory of the
//! user's choosing, and the test kit starts throwaway ones.
//!
//! - **Unprivileged.** `initdb` refuses to run as root; as root, every
//!   PostgreSQL command runs as the `postgres` account.
//! - **A free port.** A probed free port can be taken before the server binds
//!   it, so a start is retried on a few fresh ports (unless a port is given).
//! - **A data directory**: [`PgOptions::data_dir`] is kept (initialised on
//!   first use); without it the cluster lives in a temporary directory deleted
//!   on [`PgServer::shutdown`].
//! - **Stopped with its owner.** Unless [`PgOptions::no_watchdog`], a small
//!   detached shell waits for this process to end, however it ends, and then
//!   stops the server (and deletes a temporary cluster): Rust runs no
//!   destructors on `exit` or on a signal.
//!
//! A missing binary is [`PgError::MissingBinary`] with an install hint.
//!
//! ```no_run
//! use rampart_pgembed::{PgOptions, PgServer};
//!
//! # fn main() -> Result<(), rampart_pgembed::PgError> {
//! let pg = PgServer::start_with(PgOptions {
//!     data_dir: Some(".rampart/pg".into()),
//!     fsync: true,
//!     ..PgOptions::default()
//! })?;
//! println!("connect to {}", pg.url("postgres"));
//! pg.shutdown()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Everything that can go wrong starting or stopping a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A binary (or the `postgres` account) is not installed.
    #[error("`{binary}` not found. {hint}")]
    MissingBinary {
        /// The binary looked for.
        binary: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// A command ran but failed.
    #[error("`{command}` failed: {output}")]
    CommandFailed {
        /// The command that failed.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The data directory is in use by a PostgreSQL server that is running
    /// (another `rampart demo` or process started it there).
    #[error(
        "{data_dir} is in use by a running PostgreSQL server (pid {pid}): stop the process \
         that started it, or use another directory"
    )]
    InUse {
        /// The data directory.
        data_dir: PathBuf,
        /// The running server's process id (from its `postmaster.pid`).
        pid: i32,
    },
    /// An I/O error (directories, spawning a command).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, PgError>;

/// The process id of a PostgreSQL server running on `data`: its
/// `postmaster.pid` names a process that is alive. A file left by a crashed
/// server (a dead pid) is not in the way: `pg_ctl start` replaces it.
fn running_postmaster(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // After a restart (a container's, say) the stale pid may name another
    // process, or a thread of this one: only a `postgres` process counts.
    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        && !comm.starts_with("postgres")
    {
        return None;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        // EPERM: alive, but another account's (the `postgres` account's).
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs the shell snippet `cleanup` once this process has exited, from a
/// detached watchdog process (its own process group, so a Ctrl-C to the
/// owner does not stop it first).
pub fn run_on_exit(cleanup: &str) -> std::io::Result<()> {
    watchdog(cleanup).map(drop)
}

/// The watchdog of [`run_on_exit`], for an owner that stops it itself.
fn watchdog(cleanup: &str) -> std::io::Result<Child> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// `name` in a directory of `PATH`, if any.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn find_postgres_binary(name: &'static str) -> Result<PathBuf> {
    if let Some(p) = find_on_path(name) {
        return Ok(p);
    }
    // Debian keeps server binaries out of PATH.
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        versions.sort();
        for v in versions.iter().rev() {
            let candidate = v.join("bin").join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(PgError::MissingBinary {
        binary: name,
        hint: "Install the PostgreSQL server binaries (`apt-get install -y postgresql`), or run `./scripts/test`, which installs what is missing.",
    })
}

/// Finds a PostgreSQL program (`pg_dump`, `pg_restore`, `psql`, …), preferring
/// the installation whose `initdb` starts the servers, so client and server
/// versions match. A missing program is [`PgError::MissingBinary`] with an
/// install hint.
pub fn postgres_tool(name: &'static str) -> Result<PathBuf> {
    if let Some(dir) = find_postgres_binary("initdb")
        .ok()
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    find_postgres_binary(name)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The unprivileged account (uid, gid) PostgreSQL runs as when this process
/// is root; `None` when it runs as this process's own user. Files the server
/// must own (e.g. a TLS key) are given to this account.
pub fn server_account() -> Result<Option<(u32, u32)>> {
    postgres_account()
}

/// The unprivileged account PostgreSQL runs as when this process is root.
fn postgres_account() -> Result<Option<(u32, u32)>> {
    if !is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        _ => Err(PgError::MissingBinary {
            binary: "postgres (user account)",
            hint: "initdb refuses to run as root and there is no `postgres` user: `useradd --system postgres`, or run `./scripts/test`.",
        }),
    }
}

fn as_account(cmd: &mut Command, account: Option<(u32, u32)>) {
    if let Some((uid, gid)) = account {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

/// Runs `cmd` to its end (no stdin); its stdout and stderr, or
/// [`PgError::CommandFailed`] with them.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(PgError::CommandFailed {
            command: format!("{cmd:?}"),
            output: text,
        })
    }
}

/// Options for [`PgServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Keep the cluster in this directory (created by initdb if empty) instead
    /// of a temporary one; it is not deleted on stop.
    pub data_dir: Option<PathBuf>,
    /// Port to listen on; a free one when `None`.
    pub port: Option<u16>,
    /// Keep fsync on (durability). Off by default: a temporary cluster does
    /// not outlive a crash anyway, and fsync dominates its start-up time.
    pub fsync: bool,
    /// Do not start a watchdog (the owner stops the server itself).
    pub no_watchdog: bool,
    /// Extra server settings, passed as `-c name=value` (values without
    /// spaces), e.g. `("max_locks_per_transaction", "256")`.
    pub settings: Vec<(String, String)>,
}

/// A running PostgreSQL server on 127.0.0.1, superuser `postgres` with
/// `trust` authentication (loopback only).
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    root: PathBuf,
    data: PathBuf,
    account: Option<(u32, u32)>,
    pg_ctl: PathBuf,
    temporary: bool,
    fsync: bool,
    settings: Vec<(String, String)>,
    /// Stops the server if this process dies without [`PgServer::shutdown`];
    /// stopped by it otherwise, so that it cannot outlive the server and stop
    /// the next one started on the same directory.
    watchdog: Option<Child>,
}

impl PgServer {
    /// Starts a server on a temporary cluster (fsync off), stopped and deleted
    /// when this process exits or by [`PgServer::shutdown`].
    pub fn start() -> Result<Self> {
        Self::start_with(PgOptions::default())
    }

    /// Starts a server with options.
    pub fn start_with(options: PgOptions) -> Result<Self> {
        let initdb = find_postgres_binary("initdb")?;
        let pg_ctl = find_postgres_binary("pg_ctl")?;
        let account = postgres_account()?;
        let temporary = options.data_dir.is_none();
        let root = match &options.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                d.canonicalize()?
            }
            // Deleted by `shutdown` or the watchdog, not by `TempDir`'s drop.
            None => tempfile::Builder::new()
                .prefix(&format!("rampart-pg-{}-", std::process::id()))
                .tempdir()?
                .keep(),
        };
        let data = root.join("data");
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))?;
        }
        if !data.join("PG_VERSION").exists() {
            let mut cmd = Command::new(&initdb);
            cmd.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]);
            as_account(&mut cmd, account);
            run(&mut cmd)?;
        }
        if let Some(pid) = running_postmaster(&data) {
            return Err(PgError::InUse {
                data_dir: data,
                pid,
            });
        }
        let mut server = PgServer {
            port: match options.port {
                Some(p) => p,
                None => free_port()?,
            },
            root,
            data,
            account,
            pg_ctl,
            temporary,
            fsync: options.fsync,
            settings: options.settings.clone(),
            watchdog: None,
        };
        // A free port can be taken by another process between our probe and
        // the server's bind: try a few fresh ports before giving up.
        let mut attempt = 0;
        while let Err(e) = server.pg_ctl_start() {
            attempt += 1;
            if options.port.is_some() || attempt >= 4 {
                return Err(e);
            }
            server.port = free_port()?;
        }
        if !options.no_watchdog {
            let cleanup = if temporary {
                format!(
                    "kill -QUIT $(head -1 {data}/postmaster.pid) 2>/dev/null; sleep 1; rm -rf {root}",
                    data = server.data.display(),
                    root = server.root.display()
                )
            } else {
                format!(
                    "kill -INT $(head -1 {}/postmaster.pid) 2>/dev/null",
                    server.data.display()
                )
            };
            server.watchdog = Some(watchdog(&cleanup)?);
        }
        Ok(server)
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=300 -c shared_buffers=64MB",
            self.port,
            self.root.display(),
            if self.fsync { "on" } else { "off" }
        );
        for (name, value) in &self.settings {
            opts.push_str(&format!(" -c {name}={value}"));
        }
        let mut cmd = Command::new(&self.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("pg.log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"]);
        as_account(&mut cmd, self.account);
        run(&mut cmd)?;
        Ok(())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    /// Stops the server (immediate mode) without deleting its data.
    pub fn stop(&self) -> Result<()> {
        let mut cmd = Command::new(&self.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        as_account(&mut cmd, self.account);
        run(&mut cmd)?;
        Ok(())
    }

    /// Starts a stopped server again on the same port and data.
    pub fn restart(&self) -> Result<()> {
        self.pg_ctl_start()
    }

    /// Stops the server gracefully (fast mode) and, for a temporary cluster,
    /// deletes its data.
    pub fn shutdown(mut self) -> Result<()> {
        let mut cmd = Command::new(&self.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        as_account(&mut cmd, self.account);
        run(&mut cmd)?;
        if let Some(mut watchdog) = self.watchdog.take() {
            // Its process group: the shell and the `sleep` it waits in.
            if let Ok(pid) = i32::try_from(watchdog.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = watchdog.wait();
        }
        if self.temporary {
            std::fs::remove_dir_all(&self.root)?;
        }
        Ok(())
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("pg.log")
    }

    /// Runs a PostgreSQL client tool (`pg_dump`, `pg_dumpall`, `pg_restore`,
    /// `psql`, …) of the same installation as the server against this server
    /// as `postgres` (`-h 127.0.0.1 -p <port> -U postgres` come first), and
    /// returns what it printed; a non-zero exit is [`PgError::CommandFailed`].
    pub fn run_tool<I, S>(&self, tool: &'static str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(postgres_tool(tool)?);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(args);
        run(&mut cmd)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_clean_shutdown_stops_the_watchdog() {
        let pg = PgServer::start().unwrap();
        let watchdog = pg.watchdog.as_ref().map(Child::id).unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(watchdog).unwrap());
        assert!(
            nix::sys::signal::kill(pid, None).is_ok(),
            "watchdog running"
        );
        pg.shutdown().unwrap();
        // Gone and reaped: it cannot stop a server started on the same
        // directory after this process exits.
        assert_eq!(
            nix::sys::signal::kill(pid, None),
            Err(nix::errno::Errno::ESRCH)
        );
    }
}
