//! A test certificate authority (rcgen) and PostgreSQL / Redis servers that
//! speak TLS with certificates it issued.
//!
//! [`test_ca`] is shared by a test binary; [`postgres_tls`] and [`redis_tls`]
//! serve certificates for `localhost` and `127.0.0.1` from it. A test that
//! needs a certificate from *another* authority makes one with
//! [`TestCa::new`].
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::{
    PgServer, RedisServer, Result, TestkitError, make_scratch_dir, shared, spawn_watchdog,
};

/// A certificate authority and what it issued, as PEM files in a directory
/// of their own (deleted when the test process exits): the CA certificate,
/// a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate (CN `rampart-test-client`).
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
    ca_pem: String,
}

fn gen_err(e: impl std::fmt::Display) -> TestkitError {
    crate::PgError::CommandFailed {
        command: "rcgen".into(),
        output: e.to_string(),
    }
    .into()
}

impl TestCa {
    /// A new authority named `name` with its server and client certificates.
    pub fn new(name: &str) -> Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let issuer = rcgen::CertifiedIssuer::self_signed(
            params,
            rcgen::KeyPair::generate().map_err(gen_err)?,
        )
        .map_err(gen_err)?;

        let dir = make_scratch_dir("ca")?;
        spawn_watchdog(&format!("rm -rf {}", dir.display()))?;
        let write = |name: &str, pem: &str| std::fs::write(dir.join(name), pem);
        write("ca.pem", &issuer.pem())?;

        let mut server =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
                .map_err(gen_err)?;
        server
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        write(
            "server.pem",
            &server.signed_by(&key, &issuer).map_err(gen_err)?.pem(),
        )?;
        write("server-key.pem", &key.serialize_pem())?;

        let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        client
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart-test-client");
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        write(
            "client.pem",
            &client.signed_by(&key, &issuer).map_err(gen_err)?.pem(),
        )?;
        write("client-key.pem", &key.serialize_pem())?;

        // PostgreSQL refuses a key file others can read, and runs as the
        // `postgres` account when the tests run as root.
        use std::os::unix::fs::PermissionsExt;
        let server_key = dir.join("server-key.pem");
        std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = rampart_pgembed::server_account()? {
            std::os::unix::fs::chown(&server_key, Some(uid), Some(gid))?;
        }
        Ok(Self {
            dir,
            ca_pem: issuer.pem(),
        })
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate's file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate's file (for `localhost` and `127.0.0.1`).
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server key's file.
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// The client certificate's file.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client key's file.
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }

    /// `url` with libpq's `sslmode=verify-full` and `sslrootcert` set to this
    /// CA (the path is percent-encoded).
    pub fn verify_full_url(&self, url: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        let root: String = self
            .ca_file()
            .display()
            .to_string()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("{url}{sep}sslmode=verify-full&sslrootcert={root}")
    }
}

static SHARED_CA: OnceLock<std::result::Result<TestCa, String>> = OnceLock::new();
static SHARED_PG_TLS: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();
static SHARED_REDIS_TLS: OnceLock<std::result::Result<RedisServer, String>> = OnceLock::new();

/// The test CA shared by the tests of this binary.
pub fn test_ca() -> Result<&'static TestCa> {
    shared(&SHARED_CA, "test CA", || TestCa::new("Rampart test CA"))
}

/// A PostgreSQL server shared by the tests of this binary with `ssl=on`,
/// serving [`test_ca`]'s server certificate and verifying client
/// certificates from it when one is presented. Plaintext connections are
/// still accepted (so [`PgServer::fresh_database`] works): tests check the
/// connection's TLS state in `pg_stat_ssl`.
pub fn postgres_tls() -> Result<&'static PgServer> {
    shared(&SHARED_PG_TLS, "PostgreSQL (TLS)", || {
        PgServer::start_tls(test_ca()?)
    })
}

/// A Redis server shared by the tests of this binary that listens on TLS
/// only ([`RedisServer::url`] is `rediss://`), with [`test_ca`]'s server
/// certificate; client certificates are optional.
pub fn redis_tls() -> Result<&'static RedisServer> {
    shared(&SHARED_REDIS_TLS, "Redis (TLS)", || {
        RedisServer::start_tls(test_ca()?, false)
    })
}

impl PgServer {
    /// A throwaway server with `ssl=on` and `ca`'s server certificate.
    pub fn start_tls(ca: &TestCa) -> Result<Self> {
        let path = |p: PathBuf| p.display().to_string();
        Self::start_with(crate::PgOptions {
            settings: vec![
                ("ssl".into(), "on".into()),
                ("ssl_cert_file".into(), path(ca.server_cert_file())),
                ("ssl_key_file".into(), path(ca.server_key_file())),
                ("ssl_ca_file".into(), path(ca.ca_file())),
            ],
            ..crate::PgOptions::default()
        })
    }
}

/// The TLS files a Redis server is started with.
#[derive(Debug, Clone)]
pub(crate) struct RedisTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: PathBuf,
    pub(crate) require_client_cert: bool,
}

impl RedisTls {
    pub(crate) fn args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["--tls-cert-file".into(), self.cert.clone().into()];
        args.extend(["--tls-key-file".into(), self.key.clone().into()]);
        args.extend(["--tls-ca-cert-file".into(), self.ca.clone().into()]);
        args.push("--tls-auth-clients".into());
        args.push(
            if self.require_client_cert {
                "yes"
            } else {
                "optional"
            }
            .into(),
        );
        args
    }
}

impl RedisServer {
    /// A throwaway server listening on TLS only with `ca`'s server
    /// certificate; `require_client_cert` makes a client certificate from
    /// `ca` mandatory.
    pub fn start_tls(ca: &TestCa, require_client_cert: bool) -> Result<Self> {
        Self::start_inner(Some(RedisTls {
            cert: ca.server_cert_file(),
            key: ca.server_key_file(),
            ca: ca.ca_file(),
            require_client_cert,
        }))
    }
}
