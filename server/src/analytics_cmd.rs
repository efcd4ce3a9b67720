//! `rampart analytics`: performance and risk metrics for a CSV of prices or
//! returns, printed as JSON. The work is done by
//! [`rampart_analytics::report::run_csv`]; this file only maps flags to options.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use rampart_analytics::Conventions;
use rampart_analytics::cash_flow::FlowTiming;
use rampart_analytics::metrics::MetricOptions;
use rampart_analytics::report::{InputKind, ReportOptions, run_cash_flow_csv, run_csv};
use rampart_analytics::risk::MonteCarlo;

/// What the CSV columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputArg {
    /// Prices; simple returns are computed from consecutive rows.
    Prices,
    /// Periodic simple returns.
    Returns,
    /// One account: `date,value,flow` (end-of-day value, net external flow);
    /// prints its TWR, Modified Dietz return and XIRR instead of metrics.
    CashFlows,
}

/// When, within a day, a cash flow is assumed to happen (`--input-kind cash-flows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowTimingArg {
    /// At the end of the day: it earns nothing that day.
    EndOfDay,
    /// At the start of the day: it earns the day's return.
    StartOfDay,
}

/// Which library's conventions to follow where they disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConventionsArg {
    /// empyrical (Python), the default.
    Empyrical,
    /// R PerformanceAnalytics.
    PerformanceAnalytics,
}

/// Compute portfolio analytics from a CSV whose first column is an ISO date
/// (YYYY-MM-DD) and whose other columns are one series each. Prints
/// `{"series": {NAME: {"metrics": {METRIC: value, ...}}}}`; undefined values are null.
/// With `--input-kind cash-flows` the CSV is one account (`date,value,flow`)
/// and it prints `{"twr", "modified_dietz", "xirr", "start", "end", "net_flows", ...}`.
#[derive(Debug, clap::Args)]
pub struct AnalyticsArgs {
    /// CSV file to read; `-` or absent reads standard input.
    pub input: Option<PathBuf>,
    /// Whether the columns are prices, returns, or one account's values and cash flows.
    #[arg(long = "input-kind", value_enum, default_value = "prices")]
    pub input_kind: InputArg,
    /// With `--input-kind cash-flows`: when in the day a flow happens.
    #[arg(long = "flow-timing", value_enum, default_value = "end-of-day")]
    pub flow_timing: FlowTimingArg,
    /// Column to use as the benchmark for alpha, beta and excess_sharpe.
    #[arg(long)]
    pub benchmark: Option<String>,
    /// Sampling frequency: daily (252), weekly (52), monthly (12) or periods per year.
    #[arg(long, default_value = "daily")]
    pub period: rampart_analytics::Period,
    /// Risk-free rate per period.
    #[arg(long, default_value_t = 0.0)]
    pub risk_free: f64,
    /// Required return per period (Sortino, downside risk); annual for Omega
    /// under the empyrical conventions.
    #[arg(long, default_value_t = 0.0)]
    pub required_return: f64,
    /// Tail probability for the VaR family (0.05 = 95% VaR).
    #[arg(long, default_value_t = 0.05)]
    pub var_cutoff: f64,
    /// Convention profile.
    #[arg(long, value_enum, default_value = "empyrical")]
    pub conventions: ConventionsArg,
    /// Also compute Monte Carlo VaR/CVaR with this many simulations.
    #[arg(long)]
    pub monte_carlo: Option<usize>,
    /// Seed of the Monte Carlo generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
}

impl AnalyticsArgs {
    /// The report options these flags describe.
    pub fn report_options(&self) -> ReportOptions {
        ReportOptions {
            input: match self.input_kind {
                InputArg::Prices | InputArg::CashFlows => InputKind::Prices,
                InputArg::Returns => InputKind::Returns,
            },
            benchmark: self.benchmark.clone(),
            metrics: MetricOptions {
                period: self.period,
                risk_free: self.risk_free,
                required_return: self.required_return,
                var_cutoff: self.var_cutoff,
                conventions: match self.conventions {
                    ConventionsArg::Empyrical => Conventions::empyrical(),
                    ConventionsArg::PerformanceAnalytics => Conventions::performance_analytics(),
                },
                monte_carlo: self.monte_carlo.map(|simulations| MonteCarlo {
                    simulations,
                    seed: self.seed,
                    ..MonteCarlo::default()
                }),
            },
        }
    }

    /// Reads the CSV, computes the report and prints it to standard output.
    pub fn run(self) -> anyhow::Result<()> {
        let options = self.report_options();
        let reader: Box<dyn Read> = match &self.input {
            Some(path) if path.as_os_str() != "-" => {
                Box::new(File::open(path).with_context(|| format!("opening {}", path.display()))?)
            }
            _ => Box::new(io::stdin().lock()),
        };
        let report = match self.input_kind {
            InputArg::CashFlows => run_cash_flow_csv(
                reader,
                match self.flow_timing {
                    FlowTimingArg::EndOfDay => FlowTiming::EndOfDay,
                    FlowTimingArg::StartOfDay => FlowTiming::StartOfDay,
                },
            )?,
            InputArg::Prices | InputArg::Returns => run_csv(reader, &options)?,
        };
        let text = if self.pretty {
            serde_json::to_string_pretty(&report)?
        } else {
            serde_json::to_string(&report)?
        };
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        Ok(())
    }
}
