//! TOTP second factor (RFC 6238): setup, confirmation, verification without
//! reuse within a step, backup codes, disable.

use diesel::dsl::now;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use rand::Rng;
use totp_rs::{Algorithm, Builder, Totp};

use std::sync::Arc;

use rampart_tenancy::TenantPool;

use crate::audit::{AuditEvent, append};
use crate::config::AuthConfig;
use crate::context::{ClientContext, sha256, tenant_id};
use crate::error::AuthError;
use crate::keys::KeyEncryptionKey;
use crate::schema::{mfa_backup_codes, users};

/// Number of backup codes made when TOTP is confirmed.
pub const BACKUP_CODES: usize = 10;

/// What a user needs to add the account to an authenticator app.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// The shared secret, base32.
    pub secret_base32: String,
    /// `otpauth://totp/...` URL (for a QR code).
    pub otpauth_url: String,
}

fn totp(secret: Vec<u8>, account: &str, issuer: &str) -> Result<Totp, AuthError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| AuthError::Crypto(format!("totp: {e}")))
}

fn backup_hash(user_id: UserId, code: &str) -> Vec<u8> {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    sha256(format!("{user_id}:{normalized}").as_bytes())
}

fn new_backup_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        let idx = rng.random_range(0..ALPHABET.len());
        code.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'a')));
    }
    code
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct TotpRow {
    email: String,
    totp_secret_sealed: Option<String>,
    totp_enabled: bool,
}

/// TOTP second factor of accounts: setup, confirmation, checking and
/// disabling, with backup codes.
#[derive(Clone)]
pub struct MfaService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
    /// Seals TOTP secrets at rest.
    pub(crate) sealer: KeyEncryptionKey,
}

impl std::fmt::Debug for MfaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaService").finish_non_exhaustive()
    }
}

impl MfaService {
    fn totp_for(&self, row: &TotpRow) -> Result<Totp, AuthError> {
        let sealed = row
            .totp_secret_sealed
            .as_deref()
            .ok_or_else(|| AuthError::InvalidRequest("TOTP is not set up".into()))?;
        totp(
            self.sealer.open(sealed)?,
            &row.email,
            &self.config.totp_issuer,
        )
    }

    async fn totp_row(conn: &mut AsyncPgConnection, user_id: UserId) -> Result<TotpRow, AuthError> {
        Ok(users::table
            .find(user_id)
            .select(TotpRow::as_select())
            .first(conn)
            .await?)
    }

    /// Deletes every backup code of the user.
    async fn delete_backup_codes(
        conn: &mut AsyncPgConnection,
        user_id: UserId,
    ) -> Result<(), AuthError> {
        diesel::delete(mfa_backup_codes::table.filter(mfa_backup_codes::user_id.eq(user_id)))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Starts TOTP setup: a new secret (sealed at rest), not active until
    /// [`MfaService::confirm_totp`].
    pub async fn begin_totp_setup(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<TotpSetup, AuthError> {
        let mut secret = vec![0u8; 20];
        rand::rng().fill(&mut secret[..]);
        let sealed = self.sealer.seal(&secret)?;
        let email = self
            .pool
            .with_tenant(tenant, async |conn| {
                let row = Self::totp_row(conn, user_id).await?;
                if row.totp_enabled {
                    return Err(AuthError::Conflict("TOTP already enabled".into()));
                }
                diesel::update(users::table.find(user_id))
                    .set(users::totp_secret_sealed.eq(&sealed))
                    .execute(conn)
                    .await?;
                Ok(row.email)
            })
            .await?;
        let t = totp(secret, &email, &self.config.totp_issuer)?;
        Ok(TotpSetup {
            secret_base32: t.secret().to_base32(),
            otpauth_url: t.to_url().map_err(|e| AuthError::Crypto(e.to_string()))?,
        })
    }

    /// Confirms setup with a current code; enables TOTP and returns the
    /// backup codes (shown once, stored hashed).
    pub async fn confirm_totp(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        code: &str,
        ctx: &ClientContext,
    ) -> Result<Vec<String>, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let codes: Vec<String> = (0..BACKUP_CODES).map(|_| new_backup_code()).collect();
        self.pool
            .with_tenant(tenant, async |conn| {
                let row = Self::totp_row(conn, user_id).await?;
                if row.totp_enabled {
                    return Err(AuthError::Conflict("TOTP already enabled".into()));
                }
                let t = self.totp_for(&row)?;
                let Some(step) = t.check(code, now_secs()) else {
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("mfa_enable", "failure", user_id, ctx),
                    )
                    .await?;
                    return Ok(Err(AuthError::InvalidGrant("wrong code".into())));
                };
                diesel::update(users::table.find(user_id))
                    .set((
                        users::totp_enabled.eq(true),
                        users::totp_last_step.eq(i64::try_from(step).unwrap_or(i64::MAX)),
                    ))
                    .execute(conn)
                    .await?;
                Self::delete_backup_codes(conn, user_id).await?;
                let rows: Vec<_> = codes
                    .iter()
                    .map(|c| {
                        (
                            mfa_backup_codes::user_id.eq(user_id),
                            mfa_backup_codes::code_hash.eq(backup_hash(user_id, c)),
                        )
                    })
                    .collect();
                diesel::insert_into(mfa_backup_codes::table)
                    .values(&rows)
                    .execute(conn)
                    .await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("mfa_enable", "success", user_id, ctx),
                )
                .await?;
                Ok(Ok(codes.clone()))
            })
            .await?
    }

    /// Turns TOTP off; needs a valid code (TOTP or backup).
    pub async fn disable_totp(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        code: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                if self
                    .check_second_factor(conn, user_id, code)
                    .await?
                    .is_none()
                {
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("mfa_disable", "failure", user_id, ctx),
                    )
                    .await?;
                    return Ok(Err(AuthError::InvalidCredentials));
                }
                diesel::update(users::table.find(user_id))
                    .set((
                        users::totp_enabled.eq(false),
                        users::totp_secret_sealed.eq(None::<String>),
                        users::totp_last_step.eq(None::<i64>),
                    ))
                    .execute(conn)
                    .await?;
                Self::delete_backup_codes(conn, user_id).await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("mfa_disable", "success", user_id, ctx),
                )
                .await?;
                Ok::<_, AuthError>(Ok(()))
            })
            .await?
    }

    /// Checks a TOTP code (refusing a step already used) or a backup code
    /// (single use). Returns which method matched.
    pub(crate) async fn check_second_factor(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
        code: &str,
    ) -> Result<Option<&'static str>, AuthError> {
        let row = Self::totp_row(conn, user_id).await?;
        if !row.totp_enabled {
            return Ok(None);
        }
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let t = self.totp_for(&row)?;
            let Some(step) = t.check(code, now_secs()) else {
                return Ok(None);
            };
            // Atomic: only a step newer than the last accepted one counts.
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            let n = diesel::update(
                users::table.find(user_id).filter(
                    users::totp_last_step
                        .is_null()
                        .or(users::totp_last_step.lt(step)),
                ),
            )
            .set(users::totp_last_step.eq(step))
            .execute(conn)
            .await?;
            return Ok((n == 1).then_some("totp"));
        }
        // One conditional update on the code itself: of concurrent spends of
        // the same code exactly one sees `used_at IS NULL`.
        let n = diesel::update(
            mfa_backup_codes::table
                .filter(mfa_backup_codes::user_id.eq(user_id))
                .filter(mfa_backup_codes::code_hash.eq(backup_hash(user_id, code)))
                .filter(mfa_backup_codes::used_at.is_null()),
        )
        .set(mfa_backup_codes::used_at.eq(now))
        .execute(conn)
        .await?;
        Ok((n > 0).then_some("backup_code"))
    }
}

fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// The current TOTP code for a base32 secret (for tests and tools).
pub fn current_totp_code(secret_base32: &str, at_unix: u64) -> Result<String, AuthError> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32)
        .map_err(|e| AuthError::InvalidRequest(format!("secret: {e}")))?;
    let t = totp(secret.as_ref().to_vec(), "x", "x")?;
    Ok(t.generate(at_unix).to_string())
}
