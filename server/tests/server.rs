//! The reference server over real TLS: mutual TLS on the admin listener,
//! envelope and headers, metrics exposition, shared rate limits, TLS reload,
//! Vault degradation, and the embedded-mode command as a process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_docs
)]

#[path = "server/api.rs"]
mod api;
#[path = "server/demo.rs"]
mod demo;
#[path = "server/http.rs"]
mod http;
#[path = "server/mtls.rs"]
mod mtls;
#[path = "server/ratelimit.rs"]
mod ratelimit;
#[path = "server/vault.rs"]
mod vault;

use std::path::{Path, PathBuf};

use rampart_server::app::RunningServer;
use rampart_server::config::ServerConfig;
use rampart_server::tls::{DevCa, IssuedCert, TlsFiles};

/// A development PKI written to a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub files: TlsFiles,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("Test CA").unwrap();
        let server = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let files = TlsFiles {
            cert_file: dir.path().join("server.pem"),
            key_file: dir.path().join("server-key.pem"),
            client_ca_file: dir.path().join("ca.pem"),
        };
        std::fs::write(&files.cert_file, &server.cert_pem).unwrap();
        std::fs::write(&files.key_file, &server.key_pem).unwrap();
        std::fs::write(&files.client_ca_file, ca.cert_pem()).unwrap();
        Pki { dir, ca, files }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub async fn config(pki: &Pki) -> ServerConfig {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::postgres()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let mut config = ServerConfig {
        public_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        tls: Some(pki.files.clone()),
        tls_reload_secs: 1,
        dev_secrets_dir: pki.path("dev-secrets"),
        ..ServerConfig::default()
    };
    config.database.database_url = db.url;
    config.database.max_connections = 6;
    config.auth.argon2_m_kib = 1024;
    config.auth.argon2_t = 1;
    config.http.workers = 1;
    config.http.shutdown_timeout_secs = 1;
    config
}

pub async fn start(config: ServerConfig) -> (RunningServer, rampart_server::app::AppState) {
    let state = rampart_server::serve::build_state(config).await.unwrap();
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    (server, state)
}

/// An HTTPS client trusting only `ca_pem`, optionally presenting `identity`.
pub fn client(ca_pem: &str, identity: Option<&IssuedCert>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap());
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
