//! # rampart-dbtls
//!
//! How Rampart's crates connect to PostgreSQL and Redis, with TLS when the
//! deployment asks for it. Every PostgreSQL pool and every Redis client of the
//! workspace is made here, so that one set of rules holds everywhere:
//!
//! * **PostgreSQL** ([`PgConnector`], feature `postgres`) reads libpq's
//!   `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from the URL, or the
//!   typed fields of [`PgTlsConfig`] (which win). `verify-full` checks the
//!   server certificate's chain and its name; `verify-ca` and `require` check
//!   the chain only (libpq's `require` with a root certificate). A
//!   certificate is never accepted unchecked: a TLS mode without a root
//!   certificate (a PEM file, or `system` for the platform's store) is a
//!   configuration error. Without `sslmode` (or with `disable`, `allow`,
//!   `prefer`) connections stay plaintext, as before; a root certificate
//!   given without `sslmode` means `verify-full`.
//! * **Redis** ([`redis_client`], feature `redis`) opens `redis://` URLs as
//!   they are and `rediss://` URLs over rustls, trusting the root certificate
//!   of [`RedisTlsConfig`] (the platform's store when none is given) and
//!   presenting an optional client certificate. `rediss://…#insecure` (no
//!   verification) is refused.
//!
//! Files are read when the connector or client is made, so a missing or
//! malformed file fails at start-up, not at the first query.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_dbtls::DbTlsError> {
//! use rampart_dbtls::{PgConnector, PgTlsConfig, RedisTlsConfig};
//!
//! let tls = PgTlsConfig {
//!     root_cert_file: Some("/etc/rampart/db-ca.pem".into()),
//!     ..PgTlsConfig::default()
//! };
//! let pg = PgConnector::new("postgres://app@db.internal/rampart?sslmode=verify-full", &tls)?;
//! let _pool_manager = pg.diesel_manager();
//!
//! let redis = rampart_dbtls::redis_client(
//!     "rediss://cache.internal:6380",
//!     &RedisTlsConfig { root_cert_file: Some("/etc/rampart/redis-ca.pem".into()), ..Default::default() },
//! )?;
//! # let _ = redis; Ok(()) }
//! ```
//!
//! The rules hold before any connection is made:
//!
//! ```
//! use rampart_dbtls::{PgConnector, PgTlsConfig, RedisTlsConfig, SslMode};
//!
//! let url = "postgres://app@localhost/rampart";
//! // Without sslmode the connection stays plaintext.
//! let plain = PgConnector::new(url, &PgTlsConfig::default())?;
//! assert_eq!(plain.mode(), SslMode::Disable);
//! // A TLS mode without a root certificate is refused: a server
//! // certificate is never accepted unchecked.
//! let unchecked = format!("{url}?sslmode=require");
//! assert!(PgConnector::new(&unchecked, &PgTlsConfig::default()).is_err());
//! // The platform's store counts as a root certificate.
//! let system = format!("{url}?sslmode=verify-full&sslrootcert=system");
//! assert_eq!(PgConnector::new(&system, &PgTlsConfig::default())?.mode(), SslMode::VerifyFull);
//! // Turning certificate verification off on Redis is refused too.
//! let insecure = "rediss://localhost:6380/#insecure";
//! assert!(rampart_dbtls::redis_client(insecure, &RedisTlsConfig::default()).is_err());
//! # Ok::<(), rampart_dbtls::DbTlsError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "postgres")]
pub use postgres::{PgConnector, PgTlsConfig, SslMode};
#[cfg(feature = "redis")]
pub use redis::{RedisTlsConfig, redis_client};

/// Writes the signature checks of a rustls certificate verifier
/// (`verify_tls12_signature`, `verify_tls13_signature` and
/// `supported_verify_schemes`, alike in `ServerCertVerifier` and
/// `ClientCertVerifier`) as calls to the verifier it wraps, named by what
/// follows `self.`: a field (`0`) or a call (`get()`). For verifiers that
/// change only which certificates they accept; used inside their `impl`.
#[doc(hidden)]
#[macro_export]
macro_rules! delegate_signature_checks {
    (@verify $method:ident [$($inner:tt)+]) => {
        fn $method(
            &self,
            message: &[u8],
            cert: &::rustls::pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> ::core::result::Result<
            ::rustls::client::danger::HandshakeSignatureValid,
            ::rustls::Error,
        > {
            self.$($inner)+.$method(message, cert, dss)
        }
    };
    ($($inner:tt)+) => {
        $crate::delegate_signature_checks!(@verify verify_tls12_signature [$($inner)+]);
        $crate::delegate_signature_checks!(@verify verify_tls13_signature [$($inner)+]);

        fn supported_verify_schemes(&self) -> ::std::vec::Vec<::rustls::SignatureScheme> {
            self.$($inner)+.supported_verify_schemes()
        }
    };
}

/// Everything that can go wrong while setting up a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbTlsError {
    /// The URL or the TLS settings are inconsistent or invalid.
    #[error("{0}")]
    Config(String),
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Connecting failed (including a refused server certificate).
    #[error("{0}")]
    Connect(String),
}

/// The value of `sslrootcert` / `root_cert_file` that means the platform's
/// certificate store (as libpq 16 spells it).
pub const SYSTEM_ROOTS: &str = "system";

fn file_error(path: &Path, reason: impl std::fmt::Display) -> DbTlsError {
    DbTlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, DbTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, DbTlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// The roots `root` names: a PEM file, or [`SYSTEM_ROOTS`].
fn root_store(root: &Path) -> Result<RootCertStore, DbTlsError> {
    let mut store = RootCertStore::empty();
    if root.as_os_str() == SYSTEM_ROOTS {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not load a system root certificate");
        }
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(DbTlsError::Config(
                "sslrootcert=system: no root certificate found in the system store".into(),
            ));
        }
    } else {
        for cert in read_certs(root)? {
            store.add(cert).map_err(|e| file_error(root, e))?;
        }
    }
    Ok(store)
}

/// The one crypto provider of the workspace (ring), used explicitly so that
/// connecting does not depend on a process-wide default being installed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client certificate and key, both or neither.
fn client_identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    what: &str,
) -> Result<Option<(PathBuf, PathBuf)>, DbTlsError> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some((c.to_owned(), k.to_owned()))),
        (None, None) => Ok(None),
        _ => Err(DbTlsError::Config(format!(
            "{what}: a client certificate needs both its certificate and its key file"
        ))),
    }
}
