//! The portfolio's data: what callers send and what they get back.
use chrono::{DateTime, NaiveDate, Utc};
use rampart_ids::{PortfolioId, UserId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::PortfolioError;

/// How much a caller may do with a portfolio, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read the portfolio, its versions, activity and comments.
    View,
    /// `View`, and add comments.
    Comment,
    /// `Comment`, and change the portfolio and its positions.
    Edit,
    /// `Edit`, and share, revoke and delete.
    Admin,
    /// The owner (everything).
    Owner,
}

impl Access {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::View => "view",
            Access::Comment => "comment",
            Access::Edit => "edit",
            Access::Admin => "admin",
            Access::Owner => "owner",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "view" => Some(Access::View),
            "comment" => Some(Access::Comment),
            "edit" => Some(Access::Edit),
            "admin" => Some(Access::Admin),
            "owner" => Some(Access::Owner),
            _ => None,
        }
    }
}

/// Who is acting, as the caller established it (after authentication).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user.
    pub user_id: UserId,
    /// A tenant administrator sees every portfolio of the tenant with
    /// [`Access::Admin`].
    pub tenant_admin: bool,
    /// Client IP, recorded in the activity trail.
    pub ip: Option<String>,
}

impl Actor {
    /// A plain user (not a tenant administrator).
    pub fn user(user_id: UserId) -> Self {
        Self {
            user_id,
            tenant_admin: false,
            ip: None,
        }
    }
}

/// Whether a position is held as a quantity or as a target weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllocationType {
    /// A number of units.
    #[default]
    Quantity,
    /// A fraction of the portfolio (0–1].
    Weight,
}

impl AllocationType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationType::Quantity => "quantity",
            AllocationType::Weight => "weight",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "quantity" => Some(AllocationType::Quantity),
            "weight" => Some(AllocationType::Weight),
            _ => None,
        }
    }
}

/// A portfolio as a caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    /// Id.
    pub id: PortfolioId,
    /// The owner.
    pub owner_id: UserId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// ISO 4217 code.
    pub base_currency: String,
    /// Visible (read-only) to every user of the tenant.
    pub is_public: bool,
    /// Free-form settings (a JSON object).
    pub settings: serde_json::Value,
    /// Current version (1 at creation, +1 per change).
    pub version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The caller's access.
    pub access: Access,
}

/// A position of a portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Id.
    pub id: Uuid,
    /// Symbol (upper case).
    pub symbol: String,
    /// Quantity or weight.
    pub allocation_type: AllocationType,
    /// Units (for `quantity`).
    #[serde(with = "crate::amount::option")]
    pub quantity: Option<Decimal>,
    /// Target weight (for `weight`; also a rebalancing target for `quantity`).
    #[serde(with = "crate::amount::option")]
    pub target_weight: Option<Decimal>,
    /// Purchase price per unit.
    #[serde(with = "crate::amount::option")]
    pub purchase_price: Option<Decimal>,
    /// Purchase date.
    pub purchase_date: Option<NaiveDate>,
    /// Sector.
    pub sector: Option<String>,
    /// Notes.
    pub notes: String,
}

/// A portfolio with its positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioDetail {
    /// The portfolio.
    #[serde(flatten)]
    pub portfolio: Portfolio,
    /// Its positions, by symbol.
    pub positions: Vec<Position>,
}

/// A position to create or replace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionInput {
    /// Symbol.
    pub symbol: String,
    /// Quantity (default) or weight.
    #[serde(default)]
    pub allocation_type: AllocationType,
    /// Units; required for `quantity`.
    #[serde(default, with = "crate::amount::option")]
    pub quantity: Option<Decimal>,
    /// Weight in (0, 1]; required for `weight`.
    #[serde(default, with = "crate::amount::option")]
    pub target_weight: Option<Decimal>,
    /// Purchase price per unit.
    #[serde(default, with = "crate::amount::option")]
    pub purchase_price: Option<Decimal>,
    /// Purchase date.
    #[serde(default)]
    pub purchase_date: Option<NaiveDate>,
    /// Sector.
    #[serde(default)]
    pub sector: Option<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// Quantities are below 10^15 …
const MAX_QUANTITY: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);
/// … and prices below 10^12 (both fit `numeric(28, 10)`).
const MAX_PRICE: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// A field-level problem with an input.
pub(crate) type FieldError = (&'static str, String);

fn valid_symbol(s: &str) -> bool {
    s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '^')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".^-=".contains(c))
}

impl PositionInput {
    /// Checks the input and normalizes it (symbol upper-cased, text trimmed).
    pub fn validated(mut self) -> Result<Self, PortfolioError> {
        self.check()
            .map_err(|(field, msg)| PortfolioError::Invalid(format!("{field}: {msg}")))?;
        self.symbol = self.symbol.trim().to_ascii_uppercase();
        self.sector = self
            .sector
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        Ok(self)
    }

    pub(crate) fn check(&self) -> Result<(), FieldError> {
        let symbol = self.symbol.trim();
        if !valid_symbol(symbol) {
            return Err((
                "symbol",
                "1-32 of A-Z 0-9 . ^ - =, starting with A-Z, 0-9 or ^".into(),
            ));
        }
        match self.allocation_type {
            AllocationType::Quantity => match self.quantity {
                Some(q) if q > Decimal::ZERO && q < MAX_QUANTITY => {}
                _ => return Err(("quantity", "a positive quantity is required".into())),
            },
            AllocationType::Weight => {
                if self.quantity.is_some() {
                    return Err(("quantity", "a weight position has no quantity".into()));
                }
            }
        }
        if let Some(w) = self.target_weight
            && !(w > Decimal::ZERO && w <= Decimal::ONE)
        {
            return Err(("target_weight", "must be in (0, 1]".into()));
        }
        if self.allocation_type == AllocationType::Weight && self.target_weight.is_none() {
            return Err(("target_weight", "required for a weight position".into()));
        }
        if let Some(p) = self.purchase_price
            && !(Decimal::ZERO..MAX_PRICE).contains(&p)
        {
            return Err(("purchase_price", "must be non-negative".into()));
        }
        if self.sector.as_deref().is_some_and(|s| s.len() > 64) {
            return Err(("sector", "at most 64 characters".into()));
        }
        if self.notes.as_deref().is_some_and(|s| s.len() > 1000) {
            return Err(("notes", "at most 1000 characters".into()));
        }
        Ok(())
    }
}

/// A new portfolio.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPortfolio {
    /// Name (1–200 characters).
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// ISO 4217 code (default `USD`).
    #[serde(default)]
    pub base_currency: Option<String>,
    /// Visible to every user of the tenant (default false).
    #[serde(default)]
    pub is_public: Option<bool>,
    /// Settings (a JSON object).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// Initial positions.
    #[serde(default)]
    pub positions: Vec<PositionInput>,
}

/// Changes to a portfolio's own fields; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortfolioPatch {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// ISO 4217 code.
    pub base_currency: Option<String>,
    /// Public within the tenant.
    pub is_public: Option<bool>,
    /// Settings (replaces the object).
    pub settings: Option<serde_json::Value>,
}

pub(crate) fn check_name(name: &str) -> Result<(), PortfolioError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(PortfolioError::Invalid("name: 1-200 characters".into()));
    }
    Ok(())
}

pub(crate) fn check_description(d: &str) -> Result<(), PortfolioError> {
    if d.chars().count() > 5000 {
        return Err(PortfolioError::Invalid(
            "description: at most 5000 characters".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_currency(c: &str) -> Result<String, PortfolioError> {
    let c = c.trim().to_ascii_uppercase();
    if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(PortfolioError::Invalid(
            "base_currency: a three-letter ISO 4217 code".into(),
        ));
    }
    Ok(c)
}

pub(crate) fn check_settings(s: &serde_json::Value) -> Result<(), PortfolioError> {
    if !s.is_object() || s.to_string().len() > 16 * 1024 {
        return Err(PortfolioError::Invalid(
            "settings: a JSON object of at most 16 KiB".into(),
        ));
    }
    Ok(())
}

/// The sum of target weights must not exceed 1 (by more than the 10^-9
/// that was allowed for rounding when weights were floats).
pub(crate) fn check_weights<'a>(
    weights: impl Iterator<Item = Option<Decimal>> + 'a,
) -> Result<(), PortfolioError> {
    let total = weights
        .flatten()
        .try_fold(Decimal::ZERO, Decimal::checked_add)
        .unwrap_or(Decimal::MAX);
    if total > Decimal::ONE + Decimal::new(1, 9) {
        return Err(PortfolioError::Invalid(format!(
            "target weights add up to {total:.6}, more than 1"
        )));
    }
    Ok(())
}

/// A stored version of a portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Version number.
    pub version: i32,
    /// The portfolio with its positions as they were.
    pub snapshot: serde_json::Value,
    /// Who made the change.
    pub changed_by: Option<Uuid>,
    /// What changed (`create`, `update`, `add_position`, …).
    pub change: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A share of a portfolio with another user of the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The user it is shared with.
    pub user_id: UserId,
    /// Access granted (never `owner`).
    pub access: Access,
    /// Who granted it.
    pub granted_by: Option<Uuid>,
    /// Until when (none: until revoked).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
}

/// A share to grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareGrant {
    /// The user (of the same tenant).
    pub user_id: UserId,
    /// `view`, `comment`, `edit` or `admin`.
    pub access: Access,
    /// Optional expiry.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A comment on a portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Id.
    pub id: Uuid,
    /// Author.
    pub author_id: Uuid,
    /// The comment it answers, if any.
    pub parent_id: Option<Uuid>,
    /// Text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A comment to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// Text (1–5000 characters).
    pub body: String,
    /// The comment this answers.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
}

/// One entry of a portfolio's activity trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Sequence number (increasing).
    pub id: i64,
    /// Who.
    pub actor_id: Option<Uuid>,
    /// What (`create`, `update`, `add_position`, `share`, …).
    pub action: String,
    /// State before (none for a creation).
    pub before: Option<serde_json::Value>,
    /// State after (none for a deletion).
    pub after: Option<serde_json::Value>,
    /// Client IP.
    pub ip: Option<String>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// A page of a list and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page.
    pub next: Option<String>,
}

/// A page size clamped to 1..=100, as the database takes it.
fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, 100)).unwrap_or(100)
}

/// The `after` cursor of a list, parsed; a malformed one is refused.
fn parse_cursor<T: std::str::FromStr>(after: Option<&str>) -> Result<Option<T>, PortfolioError> {
    after
        .map(|a| {
            a.parse()
                .map_err(|_| PortfolioError::Invalid("malformed cursor".into()))
        })
        .transpose()
}

/// A page of a list, `limit` (clamped to 1..=100) items after the cursor
/// `after` (a malformed one is refused before `fetch` runs): `fetch` gets
/// the parsed cursor and one more than the page size, and the extra item
/// says there is a next page ([`Page::from_overfetch`]), whose cursor is
/// `cursor` of the last item kept.
pub(crate) async fn paged<C: std::str::FromStr, T>(
    after: Option<&str>,
    limit: usize,
    fetch: impl AsyncFnOnce(Option<C>, i64) -> Result<Vec<T>, PortfolioError>,
    cursor: impl Fn(&T) -> String,
) -> Result<Page<T>, PortfolioError> {
    let after = parse_cursor(after)?;
    let limit = page_limit(limit);
    let items = fetch(after, limit + 1).await?;
    Ok(Page::from_overfetch(items, limit, cursor))
}

impl<T> Page<T> {
    /// A page of `items` fetched with one more than `limit`: the extra one,
    /// if there, is dropped and says there is a next page, whose cursor is
    /// `cursor` of the last item kept.
    pub(crate) fn from_overfetch(
        mut items: Vec<T>,
        limit: impl TryInto<usize>,
        cursor: impl Fn(&T) -> String,
    ) -> Self {
        let next = if items.len() > limit.try_into().unwrap_or(100) {
            items.pop();
            items.last().map(cursor)
        } else {
            None
        };
        Page { items, next }
    }
}
