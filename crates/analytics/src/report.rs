//! The `rampart analytics` report: CSV of dated prices or returns in, JSON out.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::AnalyticsError;
use crate::metrics::{MetricOptions, Scratch, compute_metrics_in};
use crate::returns::simple_returns;

/// What the CSV columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputKind {
    /// Prices; simple returns are derived from consecutive rows.
    #[default]
    Prices,
    /// Periodic simple returns.
    Returns,
}

/// Options of [`run_csv`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportOptions {
    /// Whether the columns are prices or returns.
    pub input: InputKind,
    /// Column to use as the benchmark for `alpha`, `beta` and `excess_sharpe`
    /// (it is also reported as a series of its own).
    pub benchmark: Option<String>,
    /// Metric parameters.
    pub metrics: MetricOptions,
}

/// A parsed CSV: dates and one column per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Row dates, strictly increasing.
    pub dates: Vec<NaiveDate>,
    /// Column names (the header, without the date column).
    pub names: Vec<String>,
    /// Column values; empty cells and `NaN`/`NA`/`null` are NaN.
    pub columns: Vec<Vec<f64>>,
}

/// Reads a CSV whose first column is an ISO date (`YYYY-MM-DD`) and whose
/// other columns are numbers, one series per column, with a header row.
pub fn read_table<R: Read>(reader: R) -> Result<Table, AnalyticsError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr.headers()?.clone();
    if headers.len() < 2 {
        return Err(AnalyticsError::Csv(
            "need a date column and at least one series column".into(),
        ));
    }
    let names: Vec<String> = headers.iter().skip(1).map(str::to_owned).collect();
    let mut dates = Vec::new();
    let mut columns = vec![Vec::new(); names.len()];
    for (row, record) in rdr.records().enumerate() {
        let record = record?;
        let row = row + 1;
        let raw_date = record.get(0).unwrap_or_default();
        let date =
            NaiveDate::parse_from_str(raw_date, "%Y-%m-%d").map_err(|e| AnalyticsError::Parse {
                row,
                column: headers.get(0).unwrap_or("date").to_owned(),
                reason: format!("`{raw_date}`: {e}"),
            })?;
        if let Some(&prev) = dates.last()
            && date <= prev
        {
            return Err(AnalyticsError::NonIncreasingDates { index: row - 1 });
        }
        dates.push(date);
        for (j, col) in columns.iter_mut().enumerate() {
            let cell = record.get(j + 1).unwrap_or_default();
            col.push(parse_cell(cell).ok_or_else(|| AnalyticsError::Parse {
                row,
                column: names[j].clone(),
                reason: format!("`{cell}` is not a number"),
            })?);
        }
    }
    Ok(Table {
        dates,
        names,
        columns,
    })
}

fn parse_cell(cell: &str) -> Option<f64> {
    match cell {
        "" | "NaN" | "nan" | "NA" | "N/A" | "null" => Some(f64::NAN),
        other => other.parse::<f64>().ok(),
    }
}

/// Runs the report: reads the CSV, computes every metric of every column and
/// returns `{"series": {NAME: {"metrics": {METRIC: value, ...}}}}` with NaN
/// and infinities as `null`.
///
/// ```
/// use rampart_analytics::report::{run_csv, InputKind, ReportOptions};
/// let csv = "date,fund,index\n2024-01-01,100,50\n2024-01-02,101,50.5\n2024-01-03,99,50.2\n2024-01-04,102,51\n";
/// let options = ReportOptions { input: InputKind::Prices, benchmark: Some("index".into()), ..Default::default() };
/// let json = run_csv(csv.as_bytes(), &options).unwrap();
/// assert!(json["series"]["fund"]["metrics"]["max_drawdown"].as_f64().unwrap() < 0.0);
/// assert!(json["series"]["fund"]["metrics"]["beta"].is_number());
/// ```
pub fn run_csv<R: Read>(reader: R, options: &ReportOptions) -> Result<Value, AnalyticsError> {
    options.metrics.validate()?;
    let table = read_table(reader)?;
    let columns: Vec<Vec<f64>> = match options.input {
        InputKind::Prices => table.columns.iter().map(|c| simple_returns(c)).collect(),
        InputKind::Returns => table.columns,
    };
    let benchmark = match &options.benchmark {
        Some(name) => {
            let i = table
                .names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| AnalyticsError::UnknownColumn(name.clone()))?;
            Some(columns[i].as_slice())
        }
        None => None,
    };
    let mut scratch = Scratch::default();
    let mut series = BTreeMap::new();
    for (name, col) in table.names.iter().zip(&columns) {
        let set = compute_metrics_in(col, benchmark, &options.metrics, &mut scratch)?;
        let metrics: Map<String, Value> = set
            .entries()
            .iter()
            .map(|&(k, v)| (k.to_owned(), number(v)))
            .collect();
        let mut entry = Map::new();
        entry.insert("metrics".into(), Value::Object(metrics));
        series.insert(name.clone(), Value::Object(entry));
    }
    let mut root = Map::new();
    root.insert("series".into(), Value::Object(series.into_iter().collect()));
    Ok(Value::Object(root))
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The account report behind `rampart analytics --input-kind cash-flows`:
/// a CSV with a `date` column, a `value` column (the account's market value
/// at the end of each day, after that day's flows) and an optional `flow`
/// column (net external flow that day, positive = contribution; empty = 0).
/// The first row is the opening value (its flow is ignored).
///
/// Returns the time-weighted return (daily-linked sub-periods), the Modified
/// Dietz return over the whole span, and the money-weighted return (XIRR,
/// annualised; `null` with `xirr_error` when it has no root), with the span
/// and net flows they were computed over.
///
/// ```
/// use rampart_analytics::cash_flow::FlowTiming;
/// use rampart_analytics::report::run_cash_flow_csv;
/// let csv = "date,value,flow\n2024-01-01,100,\n2024-01-02,110,\n2024-01-03,160,50\n2024-01-04,176,\n";
/// let json = run_cash_flow_csv(csv.as_bytes(), FlowTiming::EndOfDay).unwrap();
/// assert!((json["twr"].as_f64().unwrap() - 0.21).abs() < 1e-12);
/// assert_eq!(json["net_flows"].as_f64(), Some(50.0));
/// ```
pub fn run_cash_flow_csv<R: Read>(
    reader: R,
    timing: crate::cash_flow::FlowTiming,
) -> Result<Value, AnalyticsError> {
    use crate::cash_flow::{CashFlow, Valuation, modified_dietz, time_weighted_return, xirr};

    let table = read_table(reader)?;
    let column = |name: &str| table.names.iter().position(|n| n == name);
    let values = column("value").ok_or_else(|| AnalyticsError::UnknownColumn("value".into()))?;
    let flows = column("flow");
    let valuations: Vec<Valuation> = table
        .dates
        .iter()
        .enumerate()
        .map(|(i, &date)| {
            let flow = match flows {
                Some(f) if i > 0 && !table.columns[f][i].is_nan() => table.columns[f][i],
                _ => 0.0,
            };
            Valuation {
                date,
                value: table.columns[values][i],
                flow,
            }
        })
        .collect();
    let twr = time_weighted_return(&valuations, timing)?;
    let (first, last) = match (valuations.first(), valuations.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => return Err(AnalyticsError::Empty),
    };
    let external: Vec<CashFlow> = valuations[1..]
        .iter()
        .filter(|v| v.flow != 0.0)
        .map(|v| CashFlow {
            date: v.date,
            amount: v.flow,
        })
        .collect();
    let dietz = modified_dietz(first.date, first.value, last.date, last.value, &external)?;
    // XIRR takes the investor's signs: paid in negative, received positive.
    let mut investor = vec![CashFlow {
        date: first.date,
        amount: -first.value,
    }];
    investor.extend(external.iter().map(|f| CashFlow {
        date: f.date,
        amount: -f.amount,
    }));
    investor.push(CashFlow {
        date: last.date,
        amount: last.value,
    });
    let mut out = Map::new();
    out.insert("start".into(), Value::from(first.date.to_string()));
    out.insert("end".into(), Value::from(last.date.to_string()));
    out.insert("start_value".into(), number(first.value));
    out.insert("end_value".into(), number(last.value));
    out.insert(
        "net_flows".into(),
        number(external.iter().map(|f| f.amount).sum()),
    );
    out.insert("twr".into(), number(twr));
    out.insert("modified_dietz".into(), number(dietz));
    match xirr(&investor) {
        Ok(rate) => {
            out.insert("xirr".into(), number(rate));
        }
        Err(e) => {
            out.insert("xirr".into(), Value::Null);
            out.insert("xirr_error".into(), Value::from(e.to_string()));
        }
    }
    Ok(Value::Object(out))
}
