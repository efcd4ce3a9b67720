//! Broker accounts: a paper-trading key pair per member, sealed by a
//! [`BrokerCrypto`] with a context that binds it to the tenant and member.
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::{Members, MembersError, RowProblem};

/// Seals and opens credentials; the server implements it with Vault transit
/// envelope encryption. `context` must be given again to open: a sealed value
/// copied to another member or tenant does not open.
#[async_trait::async_trait]
pub trait BrokerCrypto: Send + Sync {
    /// Encrypts; returns a self-describing text to store.
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, MembersError>;
    /// Decrypts what [`BrokerCrypto::seal`] returned for the same context.
    async fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, MembersError>;
}

/// The context that binds sealed credentials to one member of one tenant.
pub(crate) fn seal_context(tenant: &str, member: Uuid) -> Vec<u8> {
    format!("rampart/broker-credentials/v1/{tenant}/{member}").into_bytes()
}

/// An Alpaca key pair. `Debug` shows neither part; both are wiped on drop.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrokerKeys {
    /// Key id (`APCA-API-KEY-ID`); paper key ids start with `PK`.
    pub key_id: String,
    /// Secret key (`APCA-API-SECRET-KEY`).
    pub secret_key: String,
}

impl std::fmt::Debug for BrokerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerKeys { .. }")
    }
}

impl Drop for BrokerKeys {
    fn drop(&mut self) {
        self.key_id.zeroize();
        self.secret_key.zeroize();
    }
}

/// Checks the shape of a paper-trading key pair: a key id of `PK` and 14–30
/// upper-case letters or digits (live ids start with `AK` and are refused),
/// and a secret of 30–80 characters of `[A-Za-z0-9/+=]`. Messages never
/// echo the keys.
pub fn validate_paper_keys(keys: &BrokerKeys) -> Result<(), MembersError> {
    let mut problems = Vec::new();
    let id = keys.key_id.trim();
    if id.starts_with("AK") {
        problems.push(RowProblem {
            field: "keyId".into(),
            message: "is a live-trading key id; only paper-trading keys (PK…) are accepted".into(),
        });
    } else if !id.starts_with("PK")
        || !(16..=32).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        problems.push(RowProblem {
            field: "keyId".into(),
            message: "is not a paper-trading key id (PK followed by 14–30 letters or digits)"
                .into(),
        });
    }
    let secret = keys.secret_key.trim();
    if !(30..=80).contains(&secret.len())
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=".contains(&b))
    {
        problems.push(RowProblem {
            field: "secretKey".into(),
            message: "is not a broker secret key (30–80 letters, digits, / + =)".into(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MembersError::Invalid { problems })
    }
}

/// A broker account as the API shows it: never the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct BrokerAccount {
    /// Account id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The member.
    #[diesel(sql_type = SqlUuid)]
    pub member_id: Uuid,
    /// `alpaca`.
    #[diesel(sql_type = Text)]
    pub broker: String,
    /// Always true: only paper accounts are accepted.
    #[diesel(sql_type = Bool)]
    pub paper: bool,
    /// Attached (or re-attached).
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
pub(crate) struct SealedAccount {
    #[diesel(sql_type = SqlUuid)]
    pub(crate) id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub(crate) member_id: Uuid,
    #[diesel(sql_type = Text)]
    pub(crate) sealed: String,
}

impl Members {
    /// Validates, seals and stores a member's paper-trading key pair
    /// (replacing any attached one; its snapshots stay).
    pub async fn attach_broker(
        &self,
        tenant: &str,
        member: Uuid,
        keys: &BrokerKeys,
        crypto: &dyn BrokerCrypto,
        attached_by: &str,
    ) -> Result<BrokerAccount, MembersError> {
        validate_paper_keys(keys)?;
        // Refuse unknown members before spending a Vault round trip.
        self.member(tenant, member).await?;
        let clean = BrokerKeys {
            key_id: keys.key_id.trim().to_owned(),
            secret_key: keys.secret_key.trim().to_owned(),
        };
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&clean)
                .map_err(|_| MembersError::Crypto("cannot encode the key pair".into()))?,
        );
        let sealed = crypto
            .seal(&plaintext, &seal_context(tenant, member))
            .await?;
        let attached_by = attached_by.to_owned();
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query(
                    "INSERT INTO broker_accounts (user_id, broker, is_paper, sealed_credentials, attached_by) \
                     SELECT id, 'alpaca', true, $2, $3 FROM users WHERE id = $1 \
                     ON CONFLICT (user_id) DO UPDATE SET sealed_credentials = EXCLUDED.sealed_credentials, \
                     attached_by = EXCLUDED.attached_by, updated_at = now() \
                     RETURNING id, user_id AS member_id, broker, is_paper AS paper, updated_at",
                )
                .bind::<SqlUuid, _>(member)
                .bind::<Text, _>(&sealed)
                .bind::<Text, _>(&attached_by)
                .get_result(conn)
                .await
                .map_err(|e| match e {
                    diesel::result::Error::NotFound => MembersError::NotFound("member"),
                    other => other.into(),
                })
            })
            .await
    }

    /// The member's broker account, if one is attached.
    pub async fn broker_account(
        &self,
        tenant: &str,
        member: Uuid,
    ) -> Result<Option<BrokerAccount>, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query(
                    "SELECT id, user_id AS member_id, broker, is_paper AS paper, updated_at \
                     FROM broker_accounts WHERE user_id = $1",
                )
                .bind::<SqlUuid, _>(member)
                .get_result(conn)
                .await
                .map(Some)
                .or_else(|e| match e {
                    diesel::result::Error::NotFound => Ok(None),
                    other => Err(MembersError::from(other)),
                })
            })
            .await
    }

    /// Removes the member's key pair and everything derived from it
    /// (snapshots, leaderboard rows). Returns how many snapshots went.
    pub async fn detach_broker(&self, tenant: &str, member: Uuid) -> Result<usize, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let snapshots =
                    diesel::sql_query("DELETE FROM portfolio_snapshots WHERE user_id = $1")
                        .bind::<SqlUuid, _>(member)
                        .execute(conn)
                        .await?;
                diesel::sql_query("DELETE FROM leaderboard_daily WHERE user_id = $1")
                    .bind::<SqlUuid, _>(member)
                    .execute(conn)
                    .await?;
                let n = diesel::sql_query("DELETE FROM broker_accounts WHERE user_id = $1")
                    .bind::<SqlUuid, _>(member)
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Err(MembersError::NotFound("broker account"));
                }
                Ok(snapshots)
            })
            .await
    }
}
