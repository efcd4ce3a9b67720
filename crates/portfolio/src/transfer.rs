//! Positions in and out as CSV: every row validated and reported before
//! anything is applied, and then applied as one change.
use chrono::NaiveDate;
use rampart_ids::PortfolioId;
use rampart_tenancy::TenantSlug;
use rust_decimal::Decimal;

pub use crate::import_report::{ImportReport, MAX_BYTES, MAX_ROWS, RowError};
use crate::model::{Actor, AllocationType, PortfolioDetail, PositionInput, check_weights};
use crate::{Access, PortfolioError, PortfolioService};

/// The CSV columns, in export order (import needs `symbol` and accepts
/// the others in any order).
pub const COLUMNS: [&str; 8] = [
    "symbol",
    "allocation_type",
    "quantity",
    "target_weight",
    "purchase_price",
    "purchase_date",
    "sector",
    "notes",
];

/// A number cell, every digit kept.
fn parse_number(raw: &str) -> Result<Option<Decimal>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    crate::amount::parse(t)
        .map(Some)
        .ok_or_else(|| format!("{t:?} is not a number"))
}

/// Parses and validates a positions CSV; `Err` carries the report of every
/// broken row.
pub fn parse_positions(bytes: &[u8]) -> Result<Vec<PositionInput>, PortfolioError> {
    if bytes.len() > MAX_BYTES {
        return Err(PortfolioError::TooLarge {
            limit: MAX_BYTES,
            unit: "bytes",
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let reject = |errors: Vec<RowError>, rows: usize| {
        PortfolioError::CsvRejected(Box::new(ImportReport {
            rows,
            applied: 0,
            errors,
        }))
    };
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => {
            return Err(reject(
                vec![RowError {
                    line: 1,
                    field: String::new(),
                    message: format!("unreadable header: {e}"),
                }],
                0,
            ));
        }
    };
    let mut header_errors = Vec::new();
    for h in &headers {
        if !COLUMNS.contains(&h.as_str()) {
            header_errors.push(RowError {
                line: 1,
                field: h.clone(),
                message: "unknown column".into(),
            });
        }
    }
    if !headers.iter().any(|h| h == "symbol") {
        header_errors.push(RowError {
            line: 1,
            field: "symbol".into(),
            message: "missing column".into(),
        });
    }
    if !header_errors.is_empty() {
        return Err(reject(header_errors, 0));
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let cols: Vec<Option<usize>> = COLUMNS.iter().map(|c| col(c)).collect();
    let mut positions = Vec::new();
    let mut errors = Vec::new();
    let mut rows = 0usize;
    for record in reader.records() {
        rows += 1;
        if rows > MAX_ROWS {
            return Err(PortfolioError::TooLarge {
                limit: MAX_ROWS,
                unit: "rows",
            });
        }
        let line = rows as u64 + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line: e.position().map_or(line, |p| p.line()),
                    field: String::new(),
                    message: format!("malformed row: {e}"),
                });
                continue;
            }
        };
        let get = |i: usize| cols[i].and_then(|c| record.get(c)).unwrap_or("");
        let text = |i: usize| from_text_cell(get(i)).to_owned();
        let mut fail = |field: &str, message: String| {
            errors.push(RowError {
                line,
                field: field.into(),
                message,
            })
        };
        let allocation_type = match get(1).to_ascii_lowercase().as_str() {
            "" | "quantity" => AllocationType::Quantity,
            "weight" => AllocationType::Weight,
            other => {
                fail("allocation_type", format!("{other:?}: quantity or weight"));
                continue;
            }
        };
        let mut numbers = [None; 3];
        let mut bad = false;
        for (slot, (i, name)) in
            numbers
                .iter_mut()
                .zip([(2, "quantity"), (3, "target_weight"), (4, "purchase_price")])
        {
            match parse_number(get(i)) {
                Ok(v) => *slot = v,
                Err(m) => {
                    fail(name, m);
                    bad = true;
                }
            }
        }
        let date = get(5);
        let purchase_date = if date.is_empty() {
            None
        } else {
            match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    fail("purchase_date", format!("{date:?}: expected YYYY-MM-DD"));
                    bad = true;
                    None
                }
            }
        };
        if bad {
            continue;
        }
        let input = PositionInput {
            symbol: text(0),
            allocation_type,
            quantity: numbers[0],
            target_weight: numbers[1],
            purchase_price: numbers[2],
            purchase_date,
            sector: Some(text(6)),
            notes: Some(text(7)),
        };
        if let Err((field, message)) = input.check() {
            fail(field, message);
            continue;
        }
        match input.validated() {
            Ok(p) => positions.push(p),
            Err(e) => fail("", e.to_string()),
        }
    }
    if errors.is_empty()
        && let Err(e) = check_weights(positions.iter().map(|p| p.target_weight))
    {
        errors.push(RowError {
            line: 0,
            field: "target_weight".into(),
            message: e.to_string(),
        });
    }
    if !errors.is_empty() {
        return Err(reject(errors, rows));
    }
    Ok(positions)
}

/// A text cell safe to open in a spreadsheet: one starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula
/// (CSV/formula injection), so it gets a leading `'`. Only text cells go
/// through here; numbers (negative ones too) stay numbers.
fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The inverse of [`text_cell`]: a cell that starts with `'` followed by a
/// formula character is read without the `'`, so an exported file imports
/// unchanged (spreadsheets drop that `'` too when they save).
fn from_text_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// A portfolio holding just `positions` (nil ids, the epoch), for
/// round-trip checks of [`positions_csv`] and [`parse_positions`] (the
/// fuzz target and tests).
#[doc(hidden)]
pub fn detail_of(positions: &[PositionInput]) -> PortfolioDetail {
    let epoch = chrono::DateTime::UNIX_EPOCH;
    PortfolioDetail {
        portfolio: crate::Portfolio {
            id: uuid::Uuid::nil().into(),
            owner_id: uuid::Uuid::nil().into(),
            name: "round trip".into(),
            description: String::new(),
            base_currency: "USD".into(),
            is_public: false,
            settings: serde_json::json!({}),
            version: 1,
            created_at: epoch,
            updated_at: epoch,
            access: crate::Access::Owner,
        },
        positions: positions
            .iter()
            .map(|p| crate::Position {
                id: uuid::Uuid::nil(),
                symbol: p.symbol.clone(),
                allocation_type: p.allocation_type,
                quantity: p.quantity,
                target_weight: p.target_weight,
                purchase_price: p.purchase_price,
                purchase_date: p.purchase_date,
                sector: p.sector.clone(),
                notes: p.notes.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// Writes positions as CSV (the [`COLUMNS`], header first); text cells are
/// neutralised against formula injection (a leading `'`).
pub fn positions_csv(detail: &PortfolioDetail) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(COLUMNS);
    let num = |v: Option<Decimal>| v.map(|x| x.normalize().to_string()).unwrap_or_default();
    for p in &detail.positions {
        let _ = w.write_record([
            text_cell(&p.symbol),
            p.allocation_type.as_str().to_owned(),
            num(p.quantity),
            num(p.target_weight),
            num(p.purchase_price),
            p.purchase_date.map(|d| d.to_string()).unwrap_or_default(),
            text_cell(p.sector.as_deref().unwrap_or_default()),
            text_cell(&p.notes),
        ]);
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl PortfolioService {
    /// Imports positions from CSV (needs `edit`): every row is validated
    /// first; if any is broken nothing is applied and
    /// [`PortfolioError::CsvRejected`] reports each one. Otherwise the rows
    /// replace (or, with `replace = false`, extend) the positions as one
    /// new version.
    pub async fn import_csv(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        bytes: &[u8],
        replace: bool,
    ) -> Result<(ImportReport, PortfolioDetail), PortfolioError> {
        let positions = parse_positions(bytes)?;
        let detail = self
            .apply_positions(tenant, actor, id, &positions, replace)
            .await?;
        Ok((
            ImportReport {
                rows: positions.len(),
                applied: positions.len(),
                errors: Vec::new(),
            },
            detail,
        ))
    }

    /// The positions as CSV (needs `view`).
    pub async fn export_csv(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
    ) -> Result<String, PortfolioError> {
        self.with_portfolio(tenant, actor, id, Access::View, async |_, d| {
            Ok(positions_csv(&d))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The input the fuzzer found (`fuzz/fuzz_targets/csv_import.rs`): a
    /// symbol starting with `-` was accepted, exported as `'-MNFT` and then
    /// refused on import.
    #[test]
    fn a_symbol_must_not_start_with_a_formula_character() {
        for csv in ["symbol,quantity\n-MNFT,2\n", "symbol,quantity\n=1+2,2\n"] {
            match parse_positions(csv.as_bytes()) {
                Err(PortfolioError::CsvRejected(report)) => {
                    assert_eq!(report.errors[0].field, "symbol", "{csv}")
                }
                other => panic!("{csv}: {other:?}"),
            }
        }
        assert!(parse_positions(b"symbol,quantity\n^GSPC,1\nBRK-B,2\n").is_ok());
    }

    /// Text cells neutralised on export (`'-…`, `'=…`) import as they were.
    #[test]
    fn neutralised_text_cells_round_trip() {
        let csv = "symbol,quantity,sector,notes\nAAPL,1,-tech,=SUM(A1)\nMSFT,2,'plain,@home\n";
        let positions = parse_positions(csv.as_bytes()).unwrap();
        assert_eq!(positions[0].notes.as_deref(), Some("=SUM(A1)"));
        assert_eq!(positions[1].sector.as_deref(), Some("'plain"));
        let exported = positions_csv(&detail_of(&positions));
        assert!(exported.contains("'-tech") && exported.contains("'=SUM(A1)"));
        assert_eq!(parse_positions(exported.as_bytes()).unwrap(), positions);
    }
}
