//! JWT access tokens (RFC 9068) and ID tokens: issuing and verifying.
//!
//! An access token carries the tenant only as `tid`, a compact JWE
//! (`dir` + `A256GCM`, with a `kid`) that only the platform can open: AES-GCM's
//! random IV makes the same tenant look different in every token, so clients
//! cannot enumerate or correlate tenants, while any resource server can still
//! check the signature against the JWKS.
//!
//! Verification parses the compact form itself before any cryptography and
//! refuses `alg: none`, any HMAC algorithm (so a public key can never be used
//! as an HMAC secret), a `kid` that is not one of ours or names a key of
//! another algorithm, `jku`/`jwk`/`x5u`/`x5c`/`crit` headers, a wrong `typ`,
//! and expired, not-yet-valid or foreign (`iss`/`aud`) tokens. Verified tokens
//! are kept in a bounded cache keyed by the SHA-256 of the token and evicted
//! when the token expires.

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::context::unix_now;
use crate::error::AuthError;
use crate::jose_header::{ACCESS_TOKEN_TYP, ID_TOKEN_TYP, TidHeader, jws_header_b64};
use crate::keys::{KeyKind, KeyRing, KeySet, LiveKey, SigningAlg};

/// Largest token we even look at.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// `aud`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `expected`.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Audience::One(a) => a == expected,
            Audience::Many(all) => all.iter().any(|a| a == expected),
        }
    }
}

/// The claims of an access token (RFC 9068), as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the tenant's issuer URL.
    pub iss: String,
    /// Subject: the user id, or the client id for `client_credentials`.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Roles of the subject.
    pub roles: Vec<String>,
    /// The tenant id as a compact JWE only the platform can open.
    pub tid: String,
    /// The login session, when the token comes from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The refresh-token family the token belongs to (its code exchange and
    /// the refreshes after it): revoking the family revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// When the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// What to put into a new access token.
#[derive(Debug, Clone)]
pub struct AccessTokenRequest {
    /// Tenant (encrypted into `tid`).
    pub tenant_id: Uuid,
    /// Issuer URL.
    pub issuer: String,
    /// Audience.
    pub audience: String,
    /// Subject.
    pub subject: String,
    /// Client id.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Session id.
    pub session_id: Option<Uuid>,
    /// Refresh-token family.
    pub family_id: Option<Uuid>,
    /// Authentication time.
    pub auth_time: Option<i64>,
    /// Signing algorithm (per client).
    pub alg: SigningAlg,
}

/// An access token after successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    /// The signed claims.
    pub claims: AccessTokenClaims,
    /// The decrypted tenant id.
    pub tenant_id: Uuid,
}

/// Claims of an OpenID Connect ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (user id).
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Time of authentication.
    pub auth_time: i64,
    /// The nonce from the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Access token hash (left half of SHA-256, base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// E-mail (scope `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name (scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct IncomingHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    jku: Option<serde_json::Value>,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    x5u: Option<serde_json::Value>,
    #[serde(default)]
    x5c: Option<serde_json::Value>,
}

struct CachedToken {
    verified: Arc<VerifiedAccessToken>,
    generation: u64,
}

struct ExpireWithToken;

impl moka::Expiry<[u8; 32], Arc<CachedToken>> for ExpireWithToken {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<CachedToken>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = value.verified.claims.exp.saturating_sub(unix_now()).max(0);
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// Issues and verifies access and ID tokens with the keys of a [`KeyRing`].
pub struct TokenService {
    ring: Arc<KeyRing>,
    access_ttl: Duration,
    id_ttl: Duration,
    skew: i64,
    cache: moka::sync::Cache<[u8; 32], Arc<CachedToken>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidToken(reason.to_owned())
}

fn is_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn ttl_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl TokenService {
    /// A token service over `ring` with the lifetimes of `config`.
    pub fn new(ring: Arc<KeyRing>, config: &crate::config::AuthConfig) -> Self {
        Self {
            ring,
            access_ttl: config.access_token_ttl(),
            id_ttl: config.id_token_ttl(),
            skew: ttl_secs(config.clock_skew()),
            cache: moka::sync::Cache::builder()
                .max_capacity(config.verified_token_cache_entries)
                .expire_after(ExpireWithToken)
                .build(),
        }
    }

    /// The key ring.
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Encrypts a tenant id into a fresh compact JWE (`dir` + `A256GCM`)
    /// with the active tenant-encryption key.
    pub fn encrypt_tenant(&self, tenant_id: Uuid) -> Result<String, AuthError> {
        let set = self.ring.snapshot();
        let key = set
            .active
            .get(&KeyKind::TenantEncryption)
            .ok_or_else(|| AuthError::KeyStore("no active tenant-encryption key".into()))?;
        let (Some(cipher), Some(header)) = (&key.tid_cipher, &key.tid_header) else {
            return Err(AuthError::KeyStore("tenant key cannot encrypt".into()));
        };
        let mut iv = [0u8; TID_IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        let mut body = *tenant_id.as_bytes();
        // The protected header, as base64url, is the additional authenticated
        // data (RFC 7516 §5.1 step 14).
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&iv), header.as_bytes(), &mut body)
            .map_err(|_| AuthError::Crypto("tid encryption failed".into()))?;
        // header . (empty encrypted key) . iv . ciphertext . tag
        let mut out = String::with_capacity(header.len() + 70);
        out.push_str(header);
        out.push_str("..");
        B64.encode_string(iv, &mut out);
        out.push('.');
        B64.encode_string(body, &mut out);
        out.push('.');
        B64.encode_string(tag, &mut out);
        Ok(out)
    }

    /// Opens a `tid` JWE (any live tenant-encryption key, chosen by `kid`).
    pub fn decrypt_tenant(&self, tid: &str) -> Result<Uuid, AuthError> {
        decrypt_tid(&self.ring.snapshot(), tid)
    }

    fn sign(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, AuthError> {
        let set = self.ring.snapshot();
        let key = set
            .active
            .get(&alg.kind())
            .ok_or_else(|| AuthError::KeyStore(format!("no active {} key", alg.as_str())))?;
        let signer = key
            .signer
            .as_ref()
            .ok_or_else(|| AuthError::KeyStore("key cannot sign".into()))?;
        let header = jws_header_b64(alg.as_str(), typ, &key.meta.kid)?;
        let payload = serde_json::to_vec(claims).map_err(|e| AuthError::Crypto(e.to_string()))?;
        let mut out = String::with_capacity(header.len() + payload.len() * 2 + 128);
        out.push_str(&header);
        out.push('.');
        B64.encode_string(&payload, &mut out);
        let signature = signer.sign(out.as_bytes())?;
        out.push('.');
        B64.encode_string(&signature, &mut out);
        Ok(out)
    }

    /// Issues an access token; returns the compact JWT and its claims.
    pub fn issue_access_token(
        &self,
        request: &AccessTokenRequest,
    ) -> Result<(String, AccessTokenClaims), AuthError> {
        let now = unix_now();
        let claims = AccessTokenClaims {
            iss: request.issuer.clone(),
            sub: request.subject.clone(),
            aud: Audience::One(request.audience.clone()),
            exp: now + ttl_secs(self.access_ttl),
            iat: now,
            // A UUIDv7: the revocation feed reads the issue time in
            // milliseconds from it.
            jti: Uuid::now_v7().to_string(),
            client_id: request.client_id.clone(),
            scope: request.scope.clone(),
            roles: request.roles.clone(),
            tid: self.encrypt_tenant(request.tenant_id)?,
            sid: request.session_id.map(|s| s.to_string()),
            fam: request.family_id.map(|f| f.to_string()),
            auth_time: request.auth_time,
        };
        let token = self.sign(request.alg, "at+jwt", &claims)?;
        Ok((token, claims))
    }

    /// Issues an OpenID Connect ID token (`exp`/`iat` are filled in here).
    pub fn issue_id_token(
        &self,
        alg: SigningAlg,
        mut claims: IdTokenClaims,
        access_token: Option<&str>,
    ) -> Result<String, AuthError> {
        let now = unix_now();
        claims.iat = now;
        claims.exp = now + ttl_secs(self.id_ttl);
        if let Some(at) = access_token {
            let digest = Sha256::digest(at.as_bytes());
            claims.at_hash = Some(B64.encode(&digest[..16]));
        }
        self.sign(alg, "JWT", &claims)
    }

    /// Verifies an access token for `expected_issuer` and `expected_audience`
    /// and returns its claims and decrypted tenant id.
    pub fn verify_access_token(
        &self,
        token: &str,
        expected_issuer: &str,
        expected_audience: &str,
    ) -> Result<VerifiedAccessToken, AuthError> {
        self.verify_access_token_shared(token, expected_issuer, expected_audience)
            .map(Arc::unwrap_or_clone)
    }

    /// [`TokenService::verify_access_token`], sharing the cached result
    /// instead of copying its claims (the request path verifies a token
    /// more than once: the rate limiter, then the extractor).
    pub fn verify_access_token_shared(
        &self,
        token: &str,
        expected_issuer: &str,
        expected_audience: &str,
    ) -> Result<Arc<VerifiedAccessToken>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let generation = self.ring.generation();
        let now = unix_now();
        if let Some(hit) = self.cache.get(&key)
            && hit.generation == generation
        {
            let claims = &hit.verified.claims;
            if claims.exp + self.skew <= now {
                return Err(invalid("token expired"));
            }
            if claims.iss != expected_issuer {
                return Err(invalid("token from another issuer"));
            }
            if !claims.aud.contains(expected_audience) {
                return Err(invalid("token for another audience"));
            }
            return Ok(hit.verified.clone());
        }
        let verified = Arc::new(self.verify_uncached(token, now)?);
        let claims = &verified.claims;
        if claims.iss != expected_issuer {
            return Err(invalid("token from another issuer"));
        }
        if !claims.aud.contains(expected_audience) {
            return Err(invalid("token for another audience"));
        }
        self.cache.insert(
            key,
            Arc::new(CachedToken {
                verified: verified.clone(),
                generation,
            }),
        );
        Ok(verified)
    }

    /// Signature, header and time checks plus tenant decryption, without the
    /// cache and without issuer/audience checks.
    pub fn verify_uncached(&self, token: &str, now: i64) -> Result<VerifiedAccessToken, AuthError> {
        let set = self.ring.snapshot();
        let payload = verify_signature(&set, token, ACCESS_TOKEN_TYP)?;
        let claims: AccessTokenClaims =
            serde_json::from_slice(&payload).map_err(|_| invalid("malformed claims"))?;
        if claims.exp + self.skew <= now {
            return Err(invalid("token expired"));
        }
        if claims.iat > now + self.skew {
            return Err(invalid("token issued in the future"));
        }
        let tenant_id = decrypt_tid(&set, &claims.tid)?;
        Ok(VerifiedAccessToken { claims, tenant_id })
    }

    /// Verifies an ID token we issued (signature, `typ: JWT`, expiry) and
    /// returns its claims; used for `id_token_hint`.
    pub fn verify_id_token(&self, token: &str) -> Result<IdTokenClaims, AuthError> {
        let payload = verify_signature(&self.ring.snapshot(), token, ID_TOKEN_TYP)?;
        let claims: IdTokenClaims =
            serde_json::from_slice(&payload).map_err(|_| invalid("malformed claims"))?;
        if claims.exp + self.skew <= unix_now() {
            return Err(invalid("token expired"));
        }
        Ok(claims)
    }

    /// Drops every cached verification (after a key revocation elsewhere).
    pub fn clear_cache(&self) {
        self.cache.invalidate_all();
    }
}

/// AES-GCM IV length of a `tid` JWE.
const TID_IV_LEN: usize = 12;
/// AES-GCM tag length of a `tid` JWE.
const TID_TAG_LEN: usize = 16;
/// Largest signature we accept (RSA 4096).
const MAX_SIGNATURE_LEN: usize = 512;

/// Decodes base64url `input` into `out`, which must be filled exactly.
fn decode_exact(input: &str, out: &mut [u8]) -> Result<(), AuthError> {
    // base64 0.22 wants room for its estimate, which can exceed the exact size
    // by up to two bytes.
    let mut buf = [0u8; 40];
    let room = buf
        .get_mut(..out.len() + 3)
        .ok_or_else(|| invalid("malformed tid"))?;
    match B64.decode_slice(input, room) {
        Ok(n) if n == out.len() => {
            out.copy_from_slice(room.get(..n).ok_or_else(|| invalid("malformed tid"))?);
            Ok(())
        }
        _ => Err(invalid("malformed tid")),
    }
}

/// Opens a compact `dir` + `A256GCM` JWE carrying a 16-byte tenant id.
///
/// The header is accepted fast when it is byte-for-byte one we write;
/// otherwise it is parsed and must name `dir`, `A256GCM`, no compression, no
/// `crit`, nothing else, and a `kid` of a live tenant-encryption key.
fn decrypt_tid(set: &KeySet, tid: &str) -> Result<Uuid, AuthError> {
    if tid.len() > 1024 {
        return Err(invalid("malformed tid"));
    }
    let mut parts = tid.split('.');
    let (Some(h64), Some(ek64), Some(iv64), Some(ct64), Some(tag64), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid("malformed tid"));
    };
    // `dir` has no encrypted key.
    if !ek64.is_empty() {
        return Err(invalid("tid cannot be decrypted"));
    }
    let key = match set.tid_headers.get(h64) {
        Some(key) => key,
        None => {
            let bytes = B64
                .decode(h64)
                .map_err(|_| invalid("tid cannot be decrypted"))?;
            let header: TidHeader =
                serde_json::from_slice(&bytes).map_err(|_| invalid("tid cannot be decrypted"))?;
            if header.alg != "dir"
                || header.enc != "A256GCM"
                || header.zip.is_some()
                || header.crit.is_some()
            {
                return Err(invalid("tid cannot be decrypted"));
            }
            header
                .kid
                .as_deref()
                .filter(|kid| is_safe_kid(kid))
                .and_then(|kid| set.by_kid.get(kid))
                .filter(|key| key.meta.kind == KeyKind::TenantEncryption)
                .ok_or_else(|| invalid("tid cannot be decrypted"))?
        }
    };
    let cipher = key
        .tid_cipher
        .as_ref()
        .ok_or_else(|| invalid("tid cannot be decrypted"))?;
    let mut iv = [0u8; TID_IV_LEN];
    let mut body = [0u8; 16];
    let mut tag = [0u8; TID_TAG_LEN];
    decode_exact(iv64, &mut iv)?;
    decode_exact(ct64, &mut body).map_err(|_| invalid("tid is not a tenant id"))?;
    decode_exact(tag64, &mut tag)?;
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&iv),
            h64.as_bytes(),
            &mut body,
            Tag::from_slice(&tag),
        )
        .map_err(|_| invalid("tid cannot be decrypted"))?;
    Ok(Uuid::from_bytes(body))
}

/// Checks the compact JWS structure, header policy and signature; returns
/// the decoded payload.
fn verify_signature(set: &KeySet, token: &str, expected_typ: &str) -> Result<Vec<u8>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a compact JWS"));
    };
    let key = match set.jws_headers.get(h64) {
        // Byte-for-byte a header we write: alg, typ and kid are known good.
        Some((key, typ)) => {
            if *typ != expected_typ {
                return Err(invalid("wrong token type"));
            }
            key
        }
        None => key_for_foreign_header(set, h64, expected_typ)?,
    };
    let verifier = key
        .verifier
        .as_ref()
        .ok_or_else(|| invalid("key cannot verify"))?;
    let mut signature = [0u8; MAX_SIGNATURE_LEN + 3];
    let signature_len = B64
        .decode_slice(s64, &mut signature)
        .map_err(|_| invalid("signature is not base64url"))?;
    let signature = signature
        .get(..signature_len)
        .ok_or_else(|| invalid("malformed signature"))?;
    let signed_len = h64.len() + 1 + p64.len();
    let message = token
        .get(..signed_len)
        .ok_or_else(|| invalid("malformed token"))?;
    verifier
        .verify(message.as_bytes(), signature)
        .map_err(|_| invalid("bad signature"))?;
    B64.decode(p64)
        .map_err(|_| invalid("payload is not base64url"))
}

/// The header policy for a header we did not write byte for byte: parse it,
/// refuse what we never accept, and let the key (by `kid`) decide the
/// algorithm.
fn key_for_foreign_header<'s>(
    set: &'s KeySet,
    h64: &str,
    expected_typ: &str,
) -> Result<&'s Arc<LiveKey>, AuthError> {
    if h64.len() > 1024 {
        return Err(invalid("header too long"));
    }
    let header_bytes = B64
        .decode(h64)
        .map_err(|_| invalid("header is not base64url"))?;
    let header: IncomingHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| invalid("malformed header"))?;
    if header.crit.is_some()
        || header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
    {
        return Err(invalid("unsupported header parameter"));
    }
    let alg = SigningAlg::parse(&header.alg).ok_or_else(|| invalid("algorithm not allowed"))?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(expected_typ)
            || t.get(..12)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/"))
                && t.get(12..)
                    .is_some_and(|r| r.eq_ignore_ascii_case(expected_typ))
    });
    if !typ_ok {
        return Err(invalid("wrong token type"));
    }
    let kid = header
        .kid
        .as_deref()
        .filter(|k| is_safe_kid(k))
        .ok_or_else(|| invalid("bad kid"))?;
    let key = set.by_kid.get(kid).ok_or_else(|| invalid("unknown kid"))?;
    // The key decides the algorithm, never the header alone.
    if key.meta.kind != alg.kind() {
        return Err(invalid("algorithm does not match key"));
    }
    Ok(key)
}

/// Decodes an unverified compact JWT's claims for display only. Never use
/// this for authorization.
pub fn peek_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}
