//! TLS for both listeners: rustls with TLS 1.3 and 1.2 (modern suites only),
//! certificates and the client CA reloaded from disk without a restart, the
//! client certificate's identity handed to handlers, and a development CA.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DistinguishedName, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use sha2::{Digest, Sha256};

/// TLS errors.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
}

/// Where the PEM files are.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Server private key (PEM, PKCS#8 / SEC1 / PKCS#1).
    pub key_file: PathBuf,
    /// CA that signs client certificates (PEM). Required by the admin
    /// listener; optional client auth on the public one when set.
    pub client_ca_file: PathBuf,
}

/// Whether a listener asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Ask, accept connections without one.
    Optional,
    /// Refuse connections without a valid one (mutual TLS).
    Required,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

fn load_certified_key(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = load_certs(&files.cert_file)?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| file_err(&files.key_file, e))?;
    let signing = any_supported_type(&key).map_err(|e| file_err(&files.key_file, e))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

fn load_verifier(path: &Path, auth: ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| file_err(path, e))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    );
    let builder = match auth {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    builder.build().map_err(|e| TlsError::Config(e.to_string()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The server certificate, swapped atomically when its files change.
#[derive(Debug)]
struct ReloadableCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The client verifier, swapped atomically when the client CA changes.
#[derive(Debug)]
struct ReloadableVerifier {
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
    /// When not empty, a verified certificate must also name one of these
    /// as its subject or one of its SANs ([`ClientIdentity::matches_any`]).
    operators: Vec<String>,
}

impl ReloadableVerifier {
    fn get(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.current.load())
    }
}

impl ClientCertVerifier for ReloadableVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; clients present their one certificate anyway.
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .get()
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.operators.is_empty()
            || ClientIdentity::from_der(end_entity)
                .is_some_and(|id| id.matches_any(&self.operators))
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    rampart_dbtls::delegate_signature_checks!(get());
}

/// A listener's TLS: its rustls config and the handle that reloads it.
pub struct ListenerTls {
    /// Give this to actix-web (`listen_rustls_0_23`).
    pub config: rustls::ServerConfig,
    /// Reloads the files when they change.
    pub reloader: TlsReloader,
}

/// Reloads certificate and client CA when their files change.
#[derive(Clone)]
pub struct TlsReloader {
    files: TlsFiles,
    auth: ClientAuth,
    cert: Arc<ReloadableCert>,
    verifier: Arc<ReloadableVerifier>,
    stamps: Arc<std::sync::Mutex<[Option<SystemTime>; 3]>>,
}

impl TlsReloader {
    fn stamps(files: &TlsFiles) -> [Option<SystemTime>; 3] {
        [
            modified(&files.cert_file),
            modified(&files.key_file),
            modified(&files.client_ca_file),
        ]
    }

    /// Reloads if a file changed since the last load. A broken new file is
    /// reported and the previous material kept. Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = Self::stamps(&self.files);
        let changed = self.stamps.lock().map(|s| *s != now).unwrap_or(true);
        if !changed {
            return Ok(false);
        }
        let key = load_certified_key(&self.files)?;
        let verifier = load_verifier(&self.files.client_ca_file, self.auth)?;
        self.cert.0.store(key);
        self.verifier.current.store(Arc::new(verifier));
        if let Ok(mut s) = self.stamps.lock() {
            *s = now;
        }
        Ok(true)
    }

    /// Polls the files every `interval` until the returned task is dropped.
    pub fn spawn_watch(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                match self.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(cert = %self.files.cert_file.display(), "TLS material reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; keeping the previous certificates")
                    }
                }
            }
        })
    }
}

/// Builds a listener's rustls configuration (TLS 1.3 and 1.2, ring's modern
/// suites only, ALPN h2 + http/1.1).
pub fn listener_tls(files: &TlsFiles, auth: ClientAuth) -> Result<ListenerTls, TlsError> {
    listener_tls_for(files, auth, Vec::new())
}

/// [`listener_tls`] that, when `operators` is not empty, also requires a
/// client certificate to name one of them (subject or SAN): the admin
/// listener's allow-list.
pub fn listener_tls_for(
    files: &TlsFiles,
    auth: ClientAuth,
    operators: Vec<String>,
) -> Result<ListenerTls, TlsError> {
    let cert = Arc::new(ReloadableCert(ArcSwap::new(load_certified_key(files)?)));
    let verifier = Arc::new(ReloadableVerifier {
        current: ArcSwap::new(Arc::new(load_verifier(&files.client_ca_file, auth)?)),
        mandatory: auth == ClientAuth::Required,
        operators,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier.clone())
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let reloader = TlsReloader {
        files: files.clone(),
        auth,
        cert,
        verifier,
        stamps: Arc::new(std::sync::Mutex::new(TlsReloader::stamps(files))),
    };
    Ok(ListenerTls { config, reloader })
}

/// Who is on the other end of a mutual-TLS connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientIdentity {
    /// Subject distinguished name.
    pub subject: String,
    /// Subject alternative names (DNS, email, URI).
    pub sans: Vec<String>,
    /// SHA-256 of the DER certificate, hex.
    pub fingerprint: String,
}

impl ClientIdentity {
    /// Whether the subject or one of the SANs is in `allowed` (exact match,
    /// as `/admin/whoami` shows them: `CN=ops, O=…`, `email:ops@…`).
    pub fn matches_any(&self, allowed: &[String]) -> bool {
        allowed
            .iter()
            .any(|a| *a == self.subject || self.sans.iter().any(|s| s == a))
    }

    /// Reads the identity from a DER certificate.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                    GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                    GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                    _ => {}
                }
            }
        }
        Some(Self {
            subject: cert.subject().to_string(),
            sans,
            fingerprint: hex::encode(Sha256::digest(der)),
        })
    }
}

/// For actix-web's `on_connect`: puts the client's [`ClientIdentity`] into
/// the connection data when it presented a certificate.
pub fn capture_client_identity(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (_, session) = tls.get_ref();
        if let Some(identity) = session
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| ClientIdentity::from_der(c))
        {
            data.insert(identity);
        }
    }
}

/// A development certificate authority (rcgen): signs a server certificate
/// for localhost and client certificates.
pub struct DevCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// Certificate (PEM).
    pub cert_pem: String,
    /// Private key (PEM). Secret.
    pub key_pem: String,
}

fn gen_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// Parameters of a certificate without subject alternative names, its
/// subject `common_name` of `organization`.
fn named(common_name: &str, organization: &str) -> Result<rcgen::CertificateParams, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, organization);
    Ok(params)
}

impl DevCa {
    /// A new CA with the given common name.
    pub fn new(common_name: &str) -> Result<Self, TlsError> {
        let mut params = named(common_name, "Rampart development")?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        Ok(Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).map_err(gen_err)?,
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `hosts` (DNS names or IP addresses).
    pub fn issue_server(&self, hosts: &[&str]) -> Result<IssuedCert, TlsError> {
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            hosts.first().copied().unwrap_or("localhost"),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate for `name`, valid from `not_before` to `not_after`.
    pub fn issue_client(
        &self,
        name: &str,
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> Result<IssuedCert, TlsError> {
        let mut params = named(name, "Rampart operators")?;
        params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            format!("{name}@rampart.local")
                .try_into()
                .map_err(gen_err)?,
        )];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        self.sign(params)
    }

    fn sign(&self, params: rcgen::CertificateParams) -> Result<IssuedCert, TlsError> {
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Files of a development PKI written by [`write_dev_pki`].
#[derive(Debug, Clone)]
pub struct DevPki {
    /// Server certificate, key and client CA (for both listeners).
    pub files: TlsFiles,
    /// The CA certificate (for `curl --cacert`).
    pub ca_file: PathBuf,
    /// An operator client certificate (for the admin listener).
    pub client_cert_file: PathBuf,
    /// Its key.
    pub client_key_file: PathBuf,
}

/// Writes a development PKI into `dir` unless one is there: a CA, a server
/// certificate for localhost/127.0.0.1 and an operator client certificate.
pub fn write_dev_pki(dir: &Path) -> Result<DevPki, TlsError> {
    let path = |name: &str| dir.join(name);
    let pki = DevPki {
        files: TlsFiles {
            cert_file: path("server.pem"),
            key_file: path("server-key.pem"),
            client_ca_file: path("ca.pem"),
        },
        ca_file: path("ca.pem"),
        client_cert_file: path("operator.pem"),
        client_key_file: path("operator-key.pem"),
    };
    let all = [
        &pki.files.cert_file,
        &pki.files.key_file,
        &pki.ca_file,
        &pki.client_cert_file,
        &pki.client_key_file,
    ];
    if all.iter().all(|p| p.exists()) {
        return Ok(pki);
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let ca = DevCa::new("Rampart development CA")?;
    let server = ca.issue_server(&["localhost", "127.0.0.1"])?;
    let client = ca.issue_client("operator", (2025, 1, 1), (2035, 1, 1))?;
    let write = |p: &Path, text: &str, secret: bool| -> Result<(), TlsError> {
        std::fs::write(p, text).map_err(|e| file_err(p, e))?;
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| file_err(p, e))?;
        }
        Ok(())
    };
    write(&pki.ca_file, &ca.cert_pem(), false)?;
    write(&pki.files.cert_file, &server.cert_pem, false)?;
    write(&pki.files.key_file, &server.key_pem, true)?;
    write(&pki.client_cert_file, &client.cert_pem, false)?;
    write(&pki.client_key_file, &client.key_pem, true)?;
    Ok(pki)
}

/// Certificates issued by Vault's PKI engine for the listeners.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VaultTls {
    /// What to request.
    pub request: rampart_vault::PkiRequest,
    /// Where the issued certificate and key are written (0600) for the
    /// listeners to load and reload.
    pub runtime_dir: PathBuf,
    /// A CA only for operators' client certificates (the admin listener).
    /// When absent, the PKI's issuing CA is trusted only together with
    /// `operator_subjects` — that CA also signs the server's own certificate,
    /// and PKI roles issue client-auth certificates by default. With
    /// neither, production refuses to start and dev mode makes a separate
    /// self-signed operator CA in `runtime_dir` (`operator-ca.pem`, with
    /// `operator.pem` / `operator-key.pem`).
    pub client_ca_file: Option<PathBuf>,
    /// Operators allowed on the admin listener: certificate subjects or SANs
    /// exactly as `/admin/whoami` shows them (`CN=ops, O=Example`,
    /// `email:ops@example.com`, `DNS:…`, `URI:…`). Any other certificate is
    /// refused, even one the client CA signed.
    #[serde(default)]
    pub operator_subjects: Vec<String>,
}

impl VaultTls {
    /// Why the admin listener could not tell operators from other holders of
    /// a certificate of this PKI, if it could not.
    pub fn operator_problem(&self) -> Option<&'static str> {
        (self.client_ca_file.is_none() && self.operator_subjects.is_empty()).then_some(
            "tls_vault_pki: set client_ca_file (a CA only for operators) or operator_subjects: \
             the PKI's issuing CA also signs the server's own certificate",
        )
    }
}

/// The dev-mode operator CA of a Vault PKI setup without one: a separate
/// self-signed CA in `dir` and an operator certificate from it; returns the
/// CA file.
fn dev_operator_ca(dir: &Path) -> Result<PathBuf, TlsError> {
    let ca_file = dir.join("operator-ca.pem");
    if ca_file.exists() {
        return Ok(ca_file);
    }
    let ca = DevCa::new("Rampart development operator CA")?;
    let operator = ca.issue_client("operator", (2025, 1, 1), (2035, 1, 1))?;
    let key_file = dir.join("operator-key.pem");
    std::fs::write(&key_file, &operator.key_pem).map_err(|e| file_err(&key_file, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| file_err(&key_file, e))?;
    }
    let cert_file = dir.join("operator.pem");
    std::fs::write(&cert_file, &operator.cert_pem).map_err(|e| file_err(&cert_file, e))?;
    std::fs::write(&ca_file, ca.cert_pem()).map_err(|e| file_err(&ca_file, e))?;
    Ok(ca_file)
}

/// Issues the server certificate from Vault and writes it where the
/// listeners read it; returns the files and when to renew.
pub async fn issue_from_vault(
    store: &rampart_vault::SecretStore,
    cfg: &VaultTls,
) -> Result<(TlsFiles, Duration), TlsError> {
    let issued = store
        .issue_certificate(&cfg.request)
        .await
        .map_err(|e| TlsError::Config(format!("Vault PKI: {e}")))?;
    std::fs::create_dir_all(&cfg.runtime_dir).map_err(|e| file_err(&cfg.runtime_dir, e))?;
    // The issuing CA is trusted for operators only behind an allow-list.
    let trust_issuing_ca = cfg.client_ca_file.is_none() && !cfg.operator_subjects.is_empty();
    let client_ca_file = match &cfg.client_ca_file {
        Some(file) => file.clone(),
        None if trust_issuing_ca => cfg.runtime_dir.join("client-ca.pem"),
        None => dev_operator_ca(&cfg.runtime_dir)?,
    };
    let files = TlsFiles {
        cert_file: cfg.runtime_dir.join("server.pem"),
        key_file: cfg.runtime_dir.join("server-key.pem"),
        client_ca_file,
    };
    // Key first, then certificate: the reloader compares both stamps.
    let key_tmp = cfg.runtime_dir.join(".server-key.pem.tmp");
    std::fs::write(
        &key_tmp,
        rampart_vault::ExposeSecret::expose_secret(&issued.key_pem),
    )
    .map_err(|e| file_err(&key_tmp, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| file_err(&key_tmp, e))?;
    }
    std::fs::rename(&key_tmp, &files.key_file).map_err(|e| file_err(&files.key_file, e))?;
    std::fs::write(&files.cert_file, &issued.cert_chain_pem)
        .map_err(|e| file_err(&files.cert_file, e))?;
    if trust_issuing_ca {
        std::fs::write(&files.client_ca_file, &issued.issuing_ca_pem)
            .map_err(|e| file_err(&files.client_ca_file, e))?;
    }
    // Renew at two thirds of the lifetime.
    let lifetime = issued
        .expires_at
        .map(|e| {
            (e - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::from_secs(60))
        })
        .unwrap_or(Duration::from_secs(3600));
    Ok((files, lifetime * 2 / 3))
}

/// Renews the Vault-issued certificate before it expires, forever; the
/// listeners' reloaders pick up the new files. Failures retry every 30 s
/// while the current certificate is still valid.
pub fn spawn_vault_renewal(
    store: rampart_vault::SecretStore,
    cfg: VaultTls,
    first_renewal: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = first_renewal;
        loop {
            tokio::time::sleep(wait).await;
            match issue_from_vault(&store, &cfg).await {
                Ok((_, next)) => {
                    tracing::info!(
                        renew_in_secs = next.as_secs(),
                        "server certificate renewed from Vault PKI"
                    );
                    wait = next;
                }
                Err(e) => {
                    tracing::error!(error = %e, "certificate renewal from Vault failed; retrying");
                    wait = Duration::from_secs(30);
                }
            }
        }
    })
}
