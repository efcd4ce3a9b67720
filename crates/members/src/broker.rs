//! Broker accounts: a paper-trading key pair per member, sealed by a
//! [`BrokerCrypto`] with a context that binds it to the tenant and member.
use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::schema::{broker_accounts, leaderboard_daily, portfolio_snapshots};
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
pub(crate) fn seal_context(tenant: &TenantSlug, member: UserId) -> Vec<u8> {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerAccount {
    /// Account id.
    pub id: Uuid,
    /// The member.
    pub member_id: UserId,
    /// `alpaca`.
    pub broker: String,
    /// Always true: only paper accounts are accepted.
    pub paper: bool,
    /// Attached (or re-attached).
    pub updated_at: DateTime<Utc>,
}

/// The columns of a [`BrokerAccount`].
#[derive(Queryable, Selectable)]
#[diesel(table_name = broker_accounts, check_for_backend(Pg))]
struct BrokerAccountRow {
    id: Uuid,
    user_id: UserId,
    broker: String,
    is_paper: bool,
    updated_at: DateTime<Utc>,
}

impl From<BrokerAccountRow> for BrokerAccount {
    fn from(r: BrokerAccountRow) -> Self {
        BrokerAccount {
            id: r.id,
            member_id: r.user_id,
            broker: r.broker,
            paper: r.is_paper,
            updated_at: r.updated_at,
        }
    }
}

/// An account with its sealed key pair, for the snapshot job.
#[derive(Queryable, Selectable)]
#[diesel(table_name = broker_accounts, check_for_backend(Pg))]
pub(crate) struct SealedAccount {
    pub(crate) id: Uuid,
    #[diesel(column_name = user_id)]
    pub(crate) member_id: UserId,
    #[diesel(column_name = sealed_credentials)]
    pub(crate) sealed: String,
}

impl Members {
    /// Validates, seals and stores a member's paper-trading key pair
    /// (replacing any attached one; its snapshots stay).
    pub async fn attach_broker(
        &self,
        tenant: &TenantSlug,
        member: UserId,
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
                diesel::insert_into(broker_accounts::table)
                    .values((
                        broker_accounts::user_id.eq(member),
                        broker_accounts::broker.eq("alpaca"),
                        broker_accounts::is_paper.eq(true),
                        broker_accounts::sealed_credentials.eq(&sealed),
                        broker_accounts::attached_by.eq(&attached_by),
                    ))
                    .on_conflict(broker_accounts::user_id)
                    .do_update()
                    .set((
                        broker_accounts::sealed_credentials
                            .eq(excluded(broker_accounts::sealed_credentials)),
                        broker_accounts::attached_by.eq(excluded(broker_accounts::attached_by)),
                        broker_accounts::updated_at.eq(now),
                    ))
                    .returning(BrokerAccountRow::as_returning())
                    .get_result(conn)
                    .await
                    .map(BrokerAccount::from)
                    .map_err(|e| match e {
                        // The member went away since it was looked up.
                        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                            MembersError::NotFound("member")
                        }
                        other => other.into(),
                    })
            })
            .await
    }

    /// The member's broker account, if one is attached.
    pub async fn broker_account(
        &self,
        tenant: &TenantSlug,
        member: UserId,
    ) -> Result<Option<BrokerAccount>, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let row: Option<BrokerAccountRow> = broker_accounts::table
                    .filter(broker_accounts::user_id.eq(member))
                    .select(BrokerAccountRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                Ok(row.map(BrokerAccount::from))
            })
            .await
    }

    /// Removes the member's key pair and everything derived from it
    /// (snapshots, leaderboard rows). Returns how many snapshots went.
    pub async fn detach_broker(
        &self,
        tenant: &TenantSlug,
        member: UserId,
    ) -> Result<usize, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let snapshots = diesel::delete(
                    portfolio_snapshots::table.filter(portfolio_snapshots::user_id.eq(member)),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    leaderboard_daily::table.filter(leaderboard_daily::user_id.eq(member)),
                )
                .execute(conn)
                .await?;
                let n = diesel::delete(
                    broker_accounts::table.filter(broker_accounts::user_id.eq(member)),
                )
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
