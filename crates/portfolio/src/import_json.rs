//! Importing a user's data from the JSON export of the browser app (what it
//! kept in `localStorage`): portfolios with their investments.
//!
//! Accepted shape (camelCase as the app writes it; snake_case accepted too):
//!
//! ```json
//! {
//!   "version": 1,                       // optional, ignored
//!   "exportedAt": "2024-06-01T10:00:00Z", // optional, ignored
//!   "portfolios": [{
//!     "id": "p-1700000000000",          // required: the app's id, 1-200 chars
//!     "name": "Retirement",             // required, 1-200 chars
//!     "description": "long term",       // optional
//!     "currency": "USD",                // optional (or "baseCurrency"), default USD
//!     "createdAt": "…",                 // optional, ignored
//!     "investments": [{                 // optional, default []
//!       "id": "i-1",                    // optional, ignored
//!       "symbol": "AAPL",               // required
//!       "shares": 10,                   // required (or "quantity"), > 0
//!       "purchasePrice": 150.0,         // optional, >= 0
//!       "purchaseDate": "2024-01-15",   // optional, YYYY-MM-DD (a full timestamp is cut to its date)
//!       "sector": "Technology",         // optional
//!       "notes": "…",                   // optional (or "name": kept as the note)
//!       "name": "Apple Inc."
//!     }]
//!   }]
//! }
//! ```
//!
//! A bare array of portfolios is accepted as well. Every portfolio is an
//! item of the report: `created`, `skipped` (already imported by this user:
//! the export's id is kept in the portfolio's `settings.import_id`, so
//! importing the same export again creates nothing) or `refused` with its
//! reasons. Any refused item → nothing is applied; otherwise every created
//! portfolio is written in one transaction.
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use rampart_ids::PortfolioId;
use rampart_tenancy::TenantSlug;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Actor, PositionInput, check_description, check_name};
use crate::rows::{NewPortfolioRow, create_portfolio};
use crate::schema::portfolios;
use crate::{PortfolioError, PortfolioService};

/// Most portfolios in one export.
pub const MAX_PORTFOLIOS: usize = 500;

/// What happened to one portfolio of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Created (or, when the import was refused, would have been).
    Created,
    /// Already imported before; left as it is.
    Skipped,
    /// Invalid; see the reasons.
    Refused,
}

/// One portfolio of the export in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportItem {
    /// Position in the export's `portfolios` array (0-based).
    pub index: usize,
    /// The export's id of the portfolio, when it had one.
    pub source_id: Option<String>,
    /// The name, when it had one.
    pub name: Option<String>,
    /// The outcome.
    pub outcome: ItemOutcome,
    /// The created or existing portfolio.
    pub portfolio_id: Option<PortfolioId>,
    /// Investments of the item.
    pub investments: usize,
    /// Why it was refused (`portfolios[0].investments[2].shares: …`).
    pub reasons: Vec<String>,
}

/// The report of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonImportReport {
    /// True when the import was applied (no item refused).
    pub applied: bool,
    /// Portfolios created.
    pub created: usize,
    /// Portfolios skipped (imported before).
    pub skipped: usize,
    /// Portfolios refused.
    pub refused: usize,
    /// Item by item.
    pub items: Vec<ImportItem>,
}

struct Candidate {
    source_id: String,
    name: String,
    description: String,
    currency: String,
    positions: Vec<PositionInput>,
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| o.get(*n))
        .filter(|v| !v.is_null())
}

fn message(e: PortfolioError) -> String {
    match e {
        PortfolioError::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// A number of the export: a JSON number (exact up to 15 significant
/// digits, see [`crate::amount`]) or a numeric string (every digit kept).
fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n.as_f64().and_then(crate::amount::from_f64),
        Value::String(s) => crate::amount::parse(s),
        _ => None,
    }
}

fn investment(v: &Value, at: &str, reasons: &mut Vec<String>) -> Option<PositionInput> {
    let Some(o) = v.as_object() else {
        reasons.push(format!("{at}: an object is expected"));
        return None;
    };
    let before = reasons.len();
    let symbol = match field(o, &["symbol", "ticker"]).and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => String::new(),
    };
    let quantity = match field(o, &["shares", "quantity"]) {
        Some(v) => match number(v) {
            Some(q) => Some(q),
            None => {
                reasons.push(format!("{at}.shares: a number is expected"));
                None
            }
        },
        None => {
            reasons.push(format!("{at}.shares: required"));
            None
        }
    };
    let purchase_price = match field(o, &["purchasePrice", "purchase_price"]) {
        Some(v) => match number(v) {
            Some(p) => Some(p),
            None => {
                reasons.push(format!("{at}.purchasePrice: a number is expected"));
                None
            }
        },
        None => None,
    };
    let purchase_date = match field(o, &["purchaseDate", "purchase_date"]) {
        Some(v) => {
            let parsed = v
                .as_str()
                .and_then(|s| s.get(..10))
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
            if parsed.is_none() {
                reasons.push(format!("{at}.purchaseDate: a YYYY-MM-DD date is expected"));
            }
            parsed
        }
        None => None,
    };
    let text = |names: &[&str]| field(o, names).and_then(Value::as_str).map(str::to_owned);
    let sector = text(&["sector"]);
    let notes = text(&["notes"]).or_else(|| text(&["name"]));
    let parse_failed = reasons.len() > before;
    let input = PositionInput {
        symbol,
        // A placeholder where `shares` was already reported, so the other
        // fields are still checked.
        quantity: if parse_failed && quantity.is_none() {
            Some(Decimal::ONE)
        } else {
            quantity
        },
        purchase_price,
        purchase_date,
        sector,
        notes,
        ..PositionInput::default()
    };
    if let Err((f, m)) = input.check() {
        let shown = if f == "quantity" { "shares" } else { f };
        let prefix = format!("{at}.{shown}");
        if !reasons[before..].iter().any(|r| r.starts_with(&prefix)) {
            reasons.push(format!("{prefix}: {m}"));
        }
        return None;
    }
    if parse_failed {
        return None;
    }
    input
        .validated()
        .map_err(|e| reasons.push(format!("{at}.{}", message(e))))
        .ok()
}

fn candidate(v: &Value, index: usize, item: &mut ImportItem) -> Option<Candidate> {
    let at = format!("portfolios[{index}]");
    let Some(o) = v.as_object() else {
        item.reasons.push(format!("{at}: an object is expected"));
        return None;
    };
    let id = match field(o, &["id"]) {
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match &id {
        Some(s) if !s.is_empty() && s.chars().count() <= 200 => {}
        _ => item
            .reasons
            .push(format!("{at}.id: required text of 1-200 characters")),
    }
    item.source_id = id.clone();
    let name = field(o, &["name"])
        .and_then(Value::as_str)
        .map(str::to_owned);
    item.name = name.clone();
    match &name {
        Some(n) => {
            if let Err(e) = check_name(n) {
                item.reasons.push(format!("{at}.{}", message(e)));
            }
        }
        None => item.reasons.push(format!("{at}.name: required text")),
    }
    let description = match field(o, &["description"]) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            item.reasons
                .push(format!("{at}.description: text expected"));
            String::new()
        }
        None => String::new(),
    };
    if let Err(e) = check_description(&description) {
        item.reasons.push(format!("{at}.{}", message(e)));
    }
    let currency = match field(o, &["currency", "baseCurrency", "base_currency"]) {
        Some(v) => match v.as_str().map(crate::model::check_currency) {
            Some(Ok(c)) => c,
            _ => {
                item.reasons.push(format!(
                    "{at}.currency: a three-letter ISO 4217 code is expected"
                ));
                String::new()
            }
        },
        None => "USD".into(),
    };
    let mut positions = Vec::new();
    match field(o, &["investments", "positions", "holdings"]) {
        None => {}
        Some(Value::Array(list)) => {
            item.investments = list.len();
            if list.len() > crate::import_report::MAX_ROWS {
                item.reasons.push(format!(
                    "{at}.investments: at most {} entries",
                    crate::import_report::MAX_ROWS
                ));
            } else {
                for (i, inv) in list.iter().enumerate() {
                    if let Some(p) =
                        investment(inv, &format!("{at}.investments[{i}]"), &mut item.reasons)
                    {
                        positions.push(p);
                    }
                }
            }
        }
        Some(_) => item
            .reasons
            .push(format!("{at}.investments: an array is expected")),
    }
    if !item.reasons.is_empty() {
        return None;
    }
    Some(Candidate {
        source_id: id.unwrap_or_default(),
        name: name.unwrap_or_default().trim().to_owned(),
        description,
        currency,
        positions,
    })
}

impl PortfolioService {
    /// Imports the actor's portfolios from a browser-app export (see the
    /// [module docs](crate::import_json) for the accepted shape). `Err` only
    /// for a document that is not an export at all or a storage failure;
    /// refused items come back in a report with `applied: false`.
    pub async fn import_json(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        export: &Value,
    ) -> Result<JsonImportReport, PortfolioError> {
        let list = match export {
            Value::Array(list) => list,
            Value::Object(o) => match o.get("portfolios") {
                Some(Value::Array(list)) => list,
                _ => {
                    return Err(PortfolioError::Invalid(
                        "portfolios: an array is expected".into(),
                    ));
                }
            },
            _ => {
                return Err(PortfolioError::Invalid(
                    "an object with a `portfolios` array is expected".into(),
                ));
            }
        };
        if list.len() > MAX_PORTFOLIOS {
            return Err(PortfolioError::TooLarge {
                limit: MAX_PORTFOLIOS,
                unit: "portfolios",
            });
        }
        let mut items = Vec::with_capacity(list.len());
        let mut candidates = Vec::with_capacity(list.len());
        let mut seen = std::collections::HashSet::new();
        for (index, v) in list.iter().enumerate() {
            let mut item = ImportItem {
                index,
                source_id: None,
                name: None,
                outcome: ItemOutcome::Refused,
                portfolio_id: None,
                investments: 0,
                reasons: Vec::new(),
            };
            let c = candidate(v, index, &mut item);
            if let Some(id) = &item.source_id
                && !seen.insert(id.clone())
            {
                item.reasons
                    .push(format!("portfolios[{index}].id: {id:?} appears twice"));
            }
            match c {
                Some(c) if item.reasons.is_empty() => {
                    item.outcome = ItemOutcome::Created;
                    candidates.push(Some(c));
                }
                _ => candidates.push(None),
            }
            items.push(item);
        }
        let refused = items
            .iter()
            .filter(|i| i.outcome == ItemOutcome::Refused)
            .count();
        self.pool()
            .with_tenant(tenant, async |conn| {
                // One import per user at a time: the existence check and the
                // inserts below then cannot interleave with a concurrent
                // import of the same export.
                // raw SQL: a transaction-scoped advisory lock.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                    .bind::<Text, _>(format!("import_json:{}", actor.user_id))
                    .execute(conn)
                    .await?;
                for (item, c) in items.iter_mut().zip(&candidates) {
                    let Some(c) = c else { continue };
                    let found: Option<PortfolioId> = portfolios::table
                        .filter(portfolios::owner_id.eq(actor.user_id))
                        .filter(portfolios::deleted_at.is_null())
                        .filter(
                            portfolios::settings
                                .retrieve_as_text("import_id")
                                .eq(&c.source_id),
                        )
                        .select(portfolios::id)
                        .first(conn)
                        .await
                        .optional()?;
                    if let Some(id) = found {
                        item.outcome = ItemOutcome::Skipped;
                        item.portfolio_id = Some(id);
                    }
                }
                if refused > 0 {
                    return Ok(());
                }
                for (item, c) in items.iter_mut().zip(&candidates) {
                    let (Some(c), ItemOutcome::Created) = (c, item.outcome) else {
                        continue;
                    };
                    let settings = serde_json::json!({
                        "import_id": c.source_id,
                        "import_source": "browser_export",
                    });
                    let d = create_portfolio(
                        conn,
                        actor,
                        &NewPortfolioRow {
                            name: &c.name,
                            description: &c.description,
                            base_currency: &c.currency,
                            is_public: false,
                            settings: &settings,
                        },
                        &c.positions,
                        "import",
                    )
                    .await?;
                    let id = d.portfolio.id;
                    item.portfolio_id = Some(id);
                }
                Ok::<(), PortfolioError>(())
            })
            .await?;
        let count = |o: ItemOutcome| items.iter().filter(|i| i.outcome == o).count();
        Ok(JsonImportReport {
            applied: refused == 0,
            created: if refused == 0 {
                count(ItemOutcome::Created)
            } else {
                0
            },
            skipped: count(ItemOutcome::Skipped),
            refused,
            items,
        })
    }
}
