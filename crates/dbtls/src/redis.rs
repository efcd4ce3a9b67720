//! Redis clients: `redis://` as is, `rediss://` over rustls with a root
//! certificate of the deployment's own and an optional client certificate.
use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, TlsCertificates};

use crate::{DbTlsError, client_identity, file_error, read_certs, read_key};

/// TLS to Redis (used with `rediss://` URLs only).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisTlsConfig {
    /// PEM file of the CA(s) that sign the server's certificate; the
    /// platform's store when absent.
    pub root_cert_file: Option<PathBuf>,
    /// PEM client certificate presented to Redis (`tls-auth-clients`).
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

impl RedisTlsConfig {
    /// Whether no file is set.
    pub fn is_empty(&self) -> bool {
        self.root_cert_file.is_none()
            && self.client_cert_file.is_none()
            && self.client_key_file.is_none()
    }
}

/// Reads a PEM file after checking that it holds what it should, so that a
/// wrong path fails here rather than at the first connection.
fn checked_pem(path: &Path, key: bool) -> Result<Vec<u8>, DbTlsError> {
    if key {
        read_key(path)?;
    } else {
        read_certs(path)?;
    }
    std::fs::read(path).map_err(|e| file_error(path, e))
}

/// A client for `url`: `rediss://` URLs verify the server's certificate
/// against `tls.root_cert_file` (or the platform's store) and present the
/// client certificate when one is configured; `redis://` URLs refuse TLS
/// files (they would be silently unused).
pub fn redis_client(url: &str, tls: &RedisTlsConfig) -> Result<redis::Client, DbTlsError> {
    let bad_url = |e: redis::RedisError| DbTlsError::Config(format!("Redis URL: {e}"));
    if !url.starts_with("rediss://") {
        if !tls.is_empty() {
            return Err(DbTlsError::Config(
                "Redis TLS files are given but the URL is not rediss://".into(),
            ));
        }
        return redis::Client::open(url).map_err(bad_url);
    }
    if url.contains('#') {
        // `#insecure` turns certificate verification off.
        return Err(DbTlsError::Config(
            "rediss:// URL fragments (e.g. #insecure) are refused: the server certificate is always verified".into(),
        ));
    }
    let client_tls = match client_identity(
        tls.client_cert_file.as_deref(),
        tls.client_key_file.as_deref(),
        "Redis",
    )? {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: checked_pem(&cert, false)?,
            client_key: checked_pem(&key, true)?,
        }),
        None => None,
    };
    let root_cert = match &tls.root_cert_file {
        Some(path) => Some(checked_pem(path, false)?),
        None => None,
    };
    redis::Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(bad_url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn insecure_and_mismatched_settings_are_refused() {
        let none = RedisTlsConfig::default();
        assert!(redis_client("rediss://127.0.0.1:1/#insecure", &none).is_err());
        let files = RedisTlsConfig {
            root_cert_file: Some("/nonexistent.pem".into()),
            ..RedisTlsConfig::default()
        };
        assert!(redis_client("redis://127.0.0.1:1", &files).is_err());
        assert!(redis_client("rediss://127.0.0.1:1", &files).is_err());
        assert!(redis_client("redis://127.0.0.1:1", &none).is_ok());
    }
}
