//! PostgreSQL connections: libpq's TLS parameters over rustls, for
//! tokio-postgres clients and diesel-async pools.
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use futures::FutureExt;
use rustls::CertificateError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{DbTlsError, client_identity, provider, read_certs, read_key, root_store};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// Plaintext (libpq would try TLS only if the server demanded it).
    Allow,
    /// Plaintext: an unverified TLS connection is not offered here.
    Prefer,
    /// TLS, the chain checked against the root certificate (as libpq does
    /// when a root certificate is given).
    Require,
    /// TLS, the chain checked against the root certificate, not the name.
    VerifyCa,
    /// TLS, the chain and the server name checked.
    VerifyFull,
}

impl SslMode {
    /// As libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Result<Self, DbTlsError> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(DbTlsError::Config(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    /// Whether connections in this mode use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS to PostgreSQL. Each field, when set, wins over the same libpq
/// parameter of the URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgTlsConfig {
    /// `sslmode`; `verify-full` when only a root certificate is given,
    /// plaintext when neither is.
    pub sslmode: Option<SslMode>,
    /// PEM file of the CA(s) that sign the server's certificate, or `system`
    /// for the platform's store (`sslrootcert`).
    pub root_cert_file: Option<PathBuf>,
    /// PEM client certificate (chain) presented to the server (`sslcert`).
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (`sslkey`).
    pub client_key_file: Option<PathBuf>,
}

/// Connects to one PostgreSQL URL with its TLS settings resolved and its
/// files loaded. Cheap to clone.
#[derive(Clone)]
pub struct PgConnector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    mode: SslMode,
}

impl std::fmt::Debug for PgConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnector")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The libpq TLS parameters the URL carried, and the URL without them
/// (tokio-postgres knows neither the files nor the `verify-*` modes).
struct UrlTls {
    url: String,
    sslmode: Option<SslMode>,
    root: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn split_url(url: &str) -> Result<UrlTls, DbTlsError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut out = UrlTls {
        url: base.to_owned(),
        sslmode: None,
        root: None,
        cert: None,
        key: None,
    };
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    let mut kept = 0;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "sslmode" => out.sslmode = Some(SslMode::parse(&v)?),
            "sslrootcert" => out.root = Some(PathBuf::from(&*v)),
            "sslcert" => out.cert = Some(PathBuf::from(&*v)),
            "sslkey" => out.key = Some(PathBuf::from(&*v)),
            _ => {
                rest.append_pair(&k, &v);
                kept += 1;
            }
        }
    }
    if kept > 0 {
        out.url.push('?');
        out.url.push_str(&rest.finish());
    }
    Ok(out)
}

impl PgConnector {
    /// Resolves `url`'s TLS parameters with `tls` (whose fields win) and
    /// loads the certificate files.
    pub fn new(url: &str, tls: &PgTlsConfig) -> Result<Self, DbTlsError> {
        let parts = split_url(url)?;
        let root = tls.root_cert_file.clone().or(parts.root);
        let cert = tls.client_cert_file.clone().or(parts.cert);
        let key = tls.client_key_file.clone().or(parts.key);
        let mode = match tls.sslmode.or(parts.sslmode) {
            Some(mode) => mode,
            None if root.is_some() => SslMode::VerifyFull,
            None => SslMode::Disable,
        };
        let mut config = tokio_postgres::Config::from_str(&parts.url)
            .map_err(|e| DbTlsError::Config(format!("PostgreSQL URL: {e}")))?;
        let client = if mode.uses_tls() {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let root = root.ok_or_else(|| {
                DbTlsError::Config(format!(
                    "sslmode={mode} needs a root certificate (sslrootcert / root_cert_file, \
                     or `system`): a server certificate is never accepted unchecked"
                ))
            })?;
            let identity = client_identity(cert.as_deref(), key.as_deref(), "PostgreSQL")?;
            client_config(mode, &root, identity)?
        } else {
            if root.is_some() || cert.is_some() || key.is_some() {
                return Err(DbTlsError::Config(format!(
                    "PostgreSQL TLS files are given but sslmode={mode} does not use TLS \
                     (use verify-full)"
                )));
            }
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            plain_client_config()?
        };
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new(client),
            mode,
        })
    }

    /// The `sslmode` in effect.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// A tokio-postgres client; its connection is driven by a spawned task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, DbTlsError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.connect_error(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    /// A diesel-async connection.
    pub async fn establish(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| ConnectionError::BadConnection(self.connect_error(&e).to_string()))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }

    /// A pool manager (deadpool, bb8, mobc) whose connections are made by
    /// this connector.
    pub fn diesel_manager(&self) -> AsyncDieselConnectionManager<AsyncPgConnection> {
        let connector = Arc::new(self.clone());
        let mut manager_config = ManagerConfig::default();
        manager_config.custom_setup = Box::new(move |_url| {
            let connector = Arc::clone(&connector);
            async move { connector.establish().await }.boxed()
        });
        // The URL is unused by the custom setup; it is not kept twice.
        AsyncDieselConnectionManager::new_with_config("postgres://", manager_config)
    }

    fn connect_error(&self, e: &tokio_postgres::Error) -> DbTlsError {
        // tokio-postgres's Display leaves out the TLS cause (e.g. the refused
        // certificate); the chain of sources carries it.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            let s_text = s.to_string();
            if !text.contains(&s_text) {
                text.push_str(": ");
                text.push_str(&s_text);
            }
            source = s.source();
        }
        if self.mode.uses_tls() {
            DbTlsError::Connect(format!("PostgreSQL (sslmode={}): {text}", self.mode))
        } else {
            DbTlsError::Connect(format!("PostgreSQL: {text}"))
        }
    }
}

/// A client configuration that is never used for a handshake (sslmode
/// disable): tokio-postgres needs one connector type for every mode.
fn plain_client_config() -> Result<rustls::ClientConfig, DbTlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DbTlsError::Config(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn client_config(
    mode: SslMode,
    root: &Path,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<rustls::ClientConfig, DbTlsError> {
    let roots = Arc::new(root_store(root)?);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DbTlsError::Config(e.to_string()))?;
    let builder = if mode == SslMode::VerifyFull {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| DbTlsError::Config(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    };
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(&cert)?, read_key(&key)?)
            .map_err(|e| crate::file_error(&key, e))?,
        None => builder.with_no_client_auth(),
    };
    // PostgreSQL 17's direct TLS negotiation uses ALPN `postgresql`; the
    // classic SSLRequest ignores it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// `verify-ca`: the full webpki check of the chain, signatures and validity,
/// with only a name mismatch forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    crate::delegate_signature_checks!(0);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept() {
        let p = split_url(
            "postgres://u:pw@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.url, "postgres://u:pw@h:5/db?application_name=x");
        assert_eq!(p.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(p.root, Some(PathBuf::from("/ca.pem")));
        assert!(split_url("postgres://h/db?sslmode=bogus").is_err());
    }

    #[test]
    fn tls_modes_need_a_root_and_plain_modes_refuse_files() {
        let e = PgConnector::new(
            "postgres://h/db?sslmode=verify-full",
            &PgTlsConfig::default(),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("needs a root certificate"), "{e}");
        let files = PgTlsConfig {
            root_cert_file: Some("/nonexistent.pem".into()),
            sslmode: Some(SslMode::Disable),
            ..PgTlsConfig::default()
        };
        assert!(PgConnector::new("postgres://h/db", &files).is_err());
        let plain = PgConnector::new("postgres://h/db", &PgTlsConfig::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.mode(), SslMode::Disable);
    }
}
