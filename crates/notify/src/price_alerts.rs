//! Price alerts: a user asks to be told when a symbol trades above or below
//! a threshold. [`Notifier::check_price_alerts`] asks the market chain for
//! the symbols with pending alerts and mails each alert once, the first
//! time a fresh quote is at or beyond its threshold (stale quotes, served
//! from cache while every provider fails, never fire one). The conditional
//! `UPDATE … WHERE triggered_at IS NULL` makes "once" hold across replicas.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use rampart_market::ProviderChain;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::mail::{MailKind, Outgoing};
use crate::{Notifier, NotifyError};

/// The most pending and fired alerts one user may keep.
pub const MAX_ALERTS_PER_USER: i64 = 100;

/// Which side of the threshold fires the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fires when the price is at or above the threshold.
    Above,
    /// Fires when the price is at or below the threshold.
    Below,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }

    /// Whether `price` is on the firing side of `threshold`.
    pub fn crossed(self, price: f64, threshold: f64) -> bool {
        match self {
            Direction::Above => price >= threshold,
            Direction::Below => price <= threshold,
        }
    }
}

/// A new alert, as a user asks for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPriceAlert {
    /// Symbol (`AAPL`, `^GSPC`).
    pub symbol: String,
    /// Above or below.
    pub direction: Direction,
    /// The price that fires it (positive, finite).
    pub threshold: f64,
    /// A note of the user's, repeated in the message (at most 200 characters).
    #[serde(default)]
    pub note: String,
}

/// A stored alert.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct PriceAlert {
    /// Id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// Owner.
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    /// Symbol, upper case.
    #[diesel(sql_type = Text)]
    pub symbol: String,
    /// `above` or `below`.
    #[diesel(sql_type = Text)]
    pub direction: String,
    /// Threshold.
    #[diesel(sql_type = Double)]
    pub threshold: f64,
    /// The user's note.
    #[diesel(sql_type = Text)]
    pub note: String,
    /// Created.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// When it fired (then it is done).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub triggered_at: Option<DateTime<Utc>>,
    /// The price that fired it.
    #[diesel(sql_type = Nullable<Double>)]
    pub triggered_price: Option<f64>,
}

const ALERT_COLUMNS: &str =
    "id, user_id, symbol, direction, threshold, note, created_at, triggered_at, triggered_price";

/// The symbol in canonical form, or why not.
pub fn normalize_symbol(symbol: &str) -> Result<String, NotifyError> {
    let s = symbol.trim().to_uppercase();
    if s.is_empty()
        || s.len() > 32
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".^-=".contains(c))
    {
        return Err(NotifyError::InvalidRequest("malformed symbol".into()));
    }
    Ok(s)
}

#[derive(diesel::QueryableByName)]
struct Pending {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Text)]
    direction: String,
    #[diesel(sql_type = Double)]
    threshold: f64,
    #[diesel(sql_type = Text)]
    note: String,
    #[diesel(sql_type = Text)]
    email: String,
}

impl Notifier {
    /// Creates an alert for `user_id`.
    pub async fn create_price_alert(
        &self,
        tenant: &str,
        user_id: Uuid,
        alert: &NewPriceAlert,
    ) -> Result<PriceAlert, NotifyError> {
        let symbol = normalize_symbol(&alert.symbol)?;
        if !alert.threshold.is_finite() || alert.threshold <= 0.0 {
            return Err(NotifyError::InvalidRequest(
                "threshold must be a positive number".into(),
            ));
        }
        if alert.note.chars().count() > 200 {
            return Err(NotifyError::InvalidRequest(
                "note is longer than 200 characters".into(),
            ));
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                // Serializes creations of one user, so the limit holds.
                diesel::sql_query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                    .bind::<SqlUuid, _>(user_id)
                    .execute(conn)
                    .await?;
                let count: Count =
                    diesel::sql_query("SELECT count(*) AS n FROM price_alerts WHERE user_id = $1")
                        .bind::<SqlUuid, _>(user_id)
                        .get_result(conn)
                        .await?;
                if count.n >= MAX_ALERTS_PER_USER {
                    return Err(NotifyError::Limit(format!(
                        "at most {MAX_ALERTS_PER_USER} price alerts"
                    )));
                }
                let row: PriceAlert = diesel::sql_query(format!(
                    "INSERT INTO price_alerts (user_id, symbol, direction, threshold, note) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {ALERT_COLUMNS}"
                ))
                .bind::<SqlUuid, _>(user_id)
                .bind::<Text, _>(&symbol)
                .bind::<Text, _>(alert.direction.as_str())
                .bind::<Double, _>(alert.threshold)
                .bind::<Text, _>(&alert.note)
                .get_result(conn)
                .await?;
                Ok(row)
            })
            .await
    }

    /// The alerts of `user_id`, newest first.
    pub async fn list_price_alerts(
        &self,
        tenant: &str,
        user_id: Uuid,
    ) -> Result<Vec<PriceAlert>, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = diesel::sql_query(format!(
                    "SELECT {ALERT_COLUMNS} FROM price_alerts WHERE user_id = $1 \
                     ORDER BY created_at DESC, id"
                ))
                .bind::<SqlUuid, _>(user_id)
                .load(conn)
                .await?;
                Ok::<_, NotifyError>(rows)
            })
            .await
    }

    /// One alert of `user_id` (another user's is [`NotifyError::NotFound`]).
    pub async fn price_alert(
        &self,
        tenant: &str,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<PriceAlert, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<PriceAlert> = diesel::sql_query(format!(
                    "SELECT {ALERT_COLUMNS} FROM price_alerts WHERE id = $1 AND user_id = $2"
                ))
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(user_id)
                .load(conn)
                .await?;
                rows.into_iter()
                    .next()
                    .ok_or(NotifyError::NotFound("price alert"))
            })
            .await
    }

    /// Deletes one alert of `user_id`.
    pub async fn delete_price_alert(
        &self,
        tenant: &str,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<(), NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let n =
                    diesel::sql_query("DELETE FROM price_alerts WHERE id = $1 AND user_id = $2")
                        .bind::<SqlUuid, _>(id)
                        .bind::<SqlUuid, _>(user_id)
                        .execute(conn)
                        .await?;
                if n == 0 {
                    return Err(NotifyError::NotFound("price alert"));
                }
                Ok(())
            })
            .await
    }

    /// Quotes every symbol with pending alerts in `tenant` through `market`
    /// and mails each alert whose threshold is crossed, once. Returns how
    /// many fired. A symbol the chain cannot quote is skipped until the next
    /// run.
    pub async fn check_price_alerts(
        &self,
        tenant: &str,
        market: &ProviderChain,
    ) -> Result<usize, NotifyError> {
        let pending: Vec<Pending> = self
            .pool
            .with_tenant(tenant, async |conn| {
                let rows = diesel::sql_query(
                    "SELECT a.id, a.user_id, a.symbol, a.direction, a.threshold, a.note, u.email \
                     FROM price_alerts a JOIN users u ON u.id = a.user_id \
                     WHERE a.triggered_at IS NULL AND u.status = 'active'",
                )
                .load(conn)
                .await?;
                Ok::<_, NotifyError>(rows)
            })
            .await?;
        let symbols: BTreeSet<&str> = pending.iter().map(|p| p.symbol.as_str()).collect();
        let mut fired = 0;
        for symbol in symbols {
            let quote = match market.quote(symbol).await {
                Ok(served) if !served.stale => served.value,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(tenant, symbol, error = %e, "price alert: no quote");
                    continue;
                }
            };
            for alert in pending.iter().filter(|p| p.symbol == symbol) {
                let direction = if alert.direction == "below" {
                    Direction::Below
                } else {
                    Direction::Above
                };
                if !direction.crossed(quote.price, alert.threshold) {
                    continue;
                }
                let claimed = self
                    .pool
                    .with_tenant(tenant, async |conn| {
                        let n = diesel::sql_query(
                            "UPDATE price_alerts SET triggered_at = now(), triggered_price = $2 \
                             WHERE id = $1 AND triggered_at IS NULL",
                        )
                        .bind::<SqlUuid, _>(alert.id)
                        .bind::<Double, _>(quote.price)
                        .execute(conn)
                        .await?;
                        Ok::<_, NotifyError>(n == 1)
                    })
                    .await?;
                if !claimed {
                    continue;
                }
                let note = if alert.note.is_empty() {
                    String::new()
                } else {
                    format!("\nYour note: {}\n", alert.note)
                };
                let sent = self
                    .mailer
                    .send(
                        &self.pool,
                        tenant,
                        Outgoing {
                            user_id: alert.user_id,
                            to: &alert.email,
                            kind: MailKind::PriceAlert,
                            subject: format!(
                                "{symbol} is {} {}",
                                direction.as_str(),
                                alert.threshold
                            ),
                            body: format!(
                                "{symbol} traded at {} ({} your alert at {}).\n{note}\n\
                                 This alert is now done; set a new one to be told again.\n",
                                quote.price,
                                if direction == Direction::Above {
                                    "at or above"
                                } else {
                                    "at or below"
                                },
                                alert.threshold,
                            ),
                        },
                    )
                    .await;
                if sent.is_ok() {
                    fired += 1;
                }
            }
        }
        Ok(fired)
    }
}
