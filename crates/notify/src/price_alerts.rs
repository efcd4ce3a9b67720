//! Price alerts: a user asks to be told when a symbol trades above or below
//! a threshold. [`Notifier::check_price_alerts`] asks the market chain for
//! the symbols with pending alerts and mails each alert once, the first
//! time a fresh quote is at or beyond its threshold (stale quotes, served
//! from cache while every provider fails, never fire one). The conditional
//! `UPDATE … WHERE triggered_at IS NULL` makes "once" hold across replicas.

use rampart_auth::directory;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_amount as amount;
use rampart_market::ProviderChain;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::mail::{MailKind, Outgoing};
use crate::schema::price_alerts;
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
    pub fn crossed(self, price: Decimal, threshold: Decimal) -> bool {
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
    /// The price that fires it: positive, below 10^17, rounded to 10
    /// decimal places and then exact (a JSON number keeps its digits, see
    /// `rampart_amount`).
    #[serde(with = "amount")]
    pub threshold: Decimal,
    /// A note of the user's, repeated in the message (at most 200 characters).
    #[serde(default)]
    pub note: String,
}

/// A stored alert.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = price_alerts, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct PriceAlert {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: UserId,
    /// Symbol, upper case.
    pub symbol: String,
    /// `above` or `below`.
    pub direction: String,
    /// Threshold, exact.
    #[serde(with = "amount")]
    pub threshold: Decimal,
    /// The user's note.
    pub note: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// When it fired (then it is done).
    pub triggered_at: Option<DateTime<Utc>>,
    /// The quote that fired it.
    #[serde(with = "amount::option")]
    pub triggered_price: Option<Decimal>,
}

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

/// An alert not yet fired, with the address of its (active) owner.
struct Pending {
    id: Uuid,
    user_id: UserId,
    symbol: String,
    direction: String,
    threshold: Decimal,
    note: String,
    email: String,
}

impl Notifier {
    /// Creates an alert for `user_id`.
    pub async fn create_price_alert(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        alert: &NewPriceAlert,
    ) -> Result<PriceAlert, NotifyError> {
        let symbol = normalize_symbol(&alert.symbol)?;
        // Stored as numeric(28, 10): rounded to 10 places (a float a client
        // computed, `price * 0.9`, may carry more), then kept exactly.
        let threshold = alert.threshold.round_dp(10).normalize();
        if threshold <= Decimal::ZERO || threshold >= Decimal::from(100_000_000_000_000_000_i64) {
            return Err(NotifyError::InvalidRequest(
                "threshold must be a positive number below 10^17".into(),
            ));
        }
        if alert.note.chars().count() > 200 {
            return Err(NotifyError::InvalidRequest(
                "note is longer than 200 characters".into(),
            ));
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                // Serializes creations of one user, so the limit holds.
                directory::lock_user(conn, user_id).await?;
                let count: i64 = price_alerts::table
                    .filter(price_alerts::user_id.eq(user_id))
                    .count()
                    .get_result(conn)
                    .await?;
                if count >= MAX_ALERTS_PER_USER {
                    return Err(NotifyError::Limit(format!(
                        "at most {MAX_ALERTS_PER_USER} price alerts"
                    )));
                }
                Ok(diesel::insert_into(price_alerts::table)
                    .values((
                        price_alerts::user_id.eq(user_id),
                        price_alerts::symbol.eq(&symbol),
                        price_alerts::direction.eq(alert.direction.as_str()),
                        price_alerts::threshold.eq(threshold),
                        price_alerts::note.eq(&alert.note),
                    ))
                    .returning(PriceAlert::as_returning())
                    .get_result(conn)
                    .await?)
            })
            .await
    }

    /// The alerts of `user_id`, newest first.
    pub async fn list_price_alerts(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<Vec<PriceAlert>, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = price_alerts::table
                    .filter(price_alerts::user_id.eq(user_id))
                    .select(PriceAlert::as_select())
                    .order((price_alerts::created_at.desc(), price_alerts::id))
                    .load(conn)
                    .await?;
                Ok::<_, NotifyError>(rows)
            })
            .await
    }

    /// One alert of `user_id` (another user's is [`NotifyError::NotFound`]).
    pub async fn price_alert(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        id: Uuid,
    ) -> Result<PriceAlert, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                price_alerts::table
                    .find(id)
                    .filter(price_alerts::user_id.eq(user_id))
                    .select(PriceAlert::as_select())
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or(NotifyError::NotFound("price alert"))
            })
            .await
    }

    /// Deletes one alert of `user_id`.
    pub async fn delete_price_alert(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        id: Uuid,
    ) -> Result<(), NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let n = diesel::delete(
                    price_alerts::table
                        .find(id)
                        .filter(price_alerts::user_id.eq(user_id)),
                )
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
        tenant: &TenantSlug,
        market: &ProviderChain,
    ) -> Result<usize, NotifyError> {
        let pending: Vec<Pending> = self
            .pool
            .with_tenant(tenant, async |conn| {
                let alerts: Vec<(Uuid, UserId, String, String, Decimal, String)> =
                    price_alerts::table
                        .filter(price_alerts::triggered_at.is_null())
                        .select((
                            price_alerts::id,
                            price_alerts::user_id,
                            price_alerts::symbol,
                            price_alerts::direction,
                            price_alerts::threshold,
                            price_alerts::note,
                        ))
                        .load(conn)
                        .await?;
                let owners: Vec<UserId> = alerts.iter().map(|a| a.1).collect();
                let addresses = directory::active_addresses(conn, &owners).await?;
                let rows = alerts
                    .into_iter()
                    .filter_map(|(id, user_id, symbol, direction, threshold, note)| {
                        let email = addresses.get(&user_id)?.clone();
                        Some(Pending {
                            id,
                            user_id,
                            symbol,
                            direction,
                            threshold,
                            note,
                            email,
                        })
                    })
                    .collect();
                Ok::<_, NotifyError>(rows)
            })
            .await?;
        let symbols: BTreeSet<&str> = pending.iter().map(|p| p.symbol.as_str()).collect();
        let mut fired = 0;
        for symbol in symbols {
            let price = match market.quote(symbol).await {
                // The quote's exact price, rounded to the column's 10 places.
                Ok(served) if !served.stale => served.value.price.round_dp(10).normalize(),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(%tenant, symbol, error = %e, "price alert: no quote");
                    continue;
                }
            };
            for alert in pending.iter().filter(|p| p.symbol == symbol) {
                let direction = if alert.direction == "below" {
                    Direction::Below
                } else {
                    Direction::Above
                };
                let threshold = alert.threshold.normalize();
                if !direction.crossed(price, threshold) {
                    continue;
                }
                let claimed = self
                    .pool
                    .with_tenant(tenant, async |conn| {
                        let n = diesel::update(
                            price_alerts::table
                                .find(alert.id)
                                .filter(price_alerts::triggered_at.is_null()),
                        )
                        .set((
                            price_alerts::triggered_at.eq(now),
                            price_alerts::triggered_price.eq(price),
                        ))
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
                    .mail(
                        tenant,
                        Outgoing {
                            user_id: alert.user_id,
                            to: &alert.email,
                            kind: MailKind::PriceAlert,
                            html: None,
                            subject: format!("{symbol} is {} {}", direction.as_str(), threshold),
                            body: format!(
                                "{symbol} traded at {} ({} your alert at {}).\n{note}\n\
                                 This alert is now done; set a new one to be told again.\n",
                                price,
                                if direction == Direction::Above {
                                    "at or above"
                                } else {
                                    "at or below"
                                },
                                threshold,
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
