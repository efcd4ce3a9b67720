//! Password hashing (Argon2id, OWASP parameters) and the password policy.
//!
//! Hashing runs on the blocking pool behind a semaphore sized to the core
//! count, so a login flood queues instead of allocating 19 MiB per request
//! without bound. Verifying against an unknown user hashes against a dummy
//! hash so that unknown users take as long as known ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::AuthError;

/// Common passwords refused by the policy (long ones: shorter ones fail the
/// length rule anyway). Compared case-insensitively.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Minimum length in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum length in bytes (bounds hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy: at least 12 characters, at
/// most 1 KiB, not a bundled common password and not the e-mail address.
pub fn check_password_policy(password: &str, email: Option<&str>) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::WeakPassword("too long".into()));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .any(|common| !common.is_empty() && common == lower)
    {
        return Err(AuthError::WeakPassword("too common".into()));
    }
    if let Some(email) = email
        && (lower == email.to_lowercase()
            || email
                .split('@')
                .next()
                .is_some_and(|local| local.len() >= 4 && lower == local.to_lowercase()))
    {
        return Err(AuthError::WeakPassword(
            "must not be the e-mail address".into(),
        ));
    }
    Ok(())
}

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCheck {
    /// Whether the password matched.
    pub valid: bool,
    /// A new hash with the current parameters, when the stored one was
    /// made with older parameters and the password matched.
    pub upgraded_hash: Option<String>,
}

/// Argon2id hashing with capped concurrency.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
}

fn hash_err(e: impl std::fmt::Display) -> AuthError {
    AuthError::Crypto(format!("argon2: {e}"))
}

impl PasswordHasher {
    /// A hasher with the Argon2id parameters of `config` and at most
    /// `config.effective_hash_concurrency()` hashes at a time.
    pub fn new(config: &crate::config::AuthConfig) -> Result<Self, AuthError> {
        let params = Params::new(config.argon2_m_kib, config.argon2_t, config.argon2_p, None)
            .map_err(hash_err)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // A real hash of a random secret: same parameters, same cost.
        let dummy = argon
            .hash_password(uuid::Uuid::new_v4().as_bytes())
            .map_err(hash_err)?
            .to_string();
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(config.effective_hash_concurrency())),
            dummy_hash: dummy.into(),
            verifications: Arc::default(),
        })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a password (PHC string with algorithm, version, parameters and salt).
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let _permit = self.permits.acquire().await.map_err(hash_err)?;
        let argon = self.argon();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(hash_err)
        })
        .await
        .map_err(hash_err)?
    }

    /// Verifies `password` against `stored` (or against a dummy hash when
    /// there is no stored hash, so unknown users cost the same). Returns a
    /// re-hash when the stored parameters are outdated.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<PasswordCheck, AuthError> {
        let known = stored.is_some();
        let hash = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let outdated = known && self.is_outdated(&hash);
        let valid = {
            let _permit = self.permits.acquire().await.map_err(hash_err)?;
            self.verifications.fetch_add(1, Ordering::Relaxed);
            let argon = self.argon();
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
                Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            })
            .await
            .map_err(hash_err)?
        };
        let valid = valid && known;
        let upgraded_hash = if valid && outdated {
            Some(self.hash(password).await?)
        } else {
            None
        };
        Ok(PasswordCheck {
            valid,
            upgraded_hash,
        })
    }

    /// How many password verifications (Argon2id computations, dummy ones
    /// included) this hasher has started: what a login flood costs.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Whether a stored hash was made with other parameters than ours.
    pub fn is_outdated(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// Hashes `password` synchronously on this thread (benchmarks).
    pub fn hash_blocking(&self, password: &str) -> Result<String, AuthError> {
        self.argon()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(hash_err)
    }
}
