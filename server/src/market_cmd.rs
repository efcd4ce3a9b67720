//! `rampart market …`: market-data maintenance.
//!
//! `rampart market backfill --symbols AAPL,^GSPC --from 2015-01-01 [--to 2018-12-31]
//! --database-url postgres://…` fills the shared `market` schema through the
//! provider chain (breakers, fallbacks and each vendor's rate limit apply),
//! fetching only the date ranges never fetched before, with a progress bar,
//! and prints rows inserted, updated and rejected per symbol. The providers
//! come from a JSON [`rampart_market::MarketConfig`] (`--config`); without
//! one, the embedded data set is the only provider. The work is done by
//! [`rampart_market::ProviderChain::backfill_with_progress`]; this file only
//! maps flags to it.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rampart_market::ingest::year_chunks;
use rampart_market::{IngestReport, MarketConfig, NaiveDate, ProviderChain};

/// Market-data commands.
#[derive(Debug, clap::Args)]
pub struct MarketArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MarketCommand,
}

/// The `market` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MarketCommand {
    /// Fetch and store daily bars for symbols over a date range.
    Backfill(BackfillArgs),
}

/// Flags of `rampart market backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Symbols, comma separated (`AAPL,MSFT,^GSPC`).
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub symbols: Vec<String>,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day (YYYY-MM-DD); today by default.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// PostgreSQL URL of the market store (the `market` schema is migrated if needed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// JSON file with a `MarketConfig` (providers, keys, caches); the
    /// embedded provider alone by default.
    #[arg(long, env = "RAMPART_MARKET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the per-symbol reports as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar (e.g. in CI logs).
    #[arg(long)]
    pub quiet: bool,
}

impl MarketArgs {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            MarketCommand::Backfill(args) => args.run().await.map(|_| ()),
        }
    }
}

impl BackfillArgs {
    /// Runs the backfill and returns the per-symbol reports.
    pub async fn run(self) -> anyhow::Result<Vec<IngestReport>> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let to = self.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
        anyhow::ensure!(self.from <= to, "--from {} is after --to {to}", self.from);
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str::<MarketConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => MarketConfig::default(),
        };
        config.store.database_url = Some(self.database_url.clone());
        let chain = ProviderChain::from_config(&config, None, None)
            .await
            .context("building the market chain")?;

        let chunks = year_chunks(self.from, to).len() as u64;
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(chunks * self.symbols.len() as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut reports = Vec::with_capacity(self.symbols.len());
        for symbol in &self.symbols {
            bar.set_message(symbol.clone());
            let report = chain
                .backfill_with_progress(symbol, self.from, to, |r| {
                    bar.set_message(format!("{} +{} rows", r.symbol, r.inserted));
                    bar.inc(1);
                })
                .await;
            match report {
                Ok(r) => reports.push(r),
                Err(e) => {
                    bar.inc(chunks);
                    reports.push(IngestReport {
                        symbol: symbol.clone(),
                        from: Some(self.from),
                        to: Some(to),
                        error: Some(e.to_string()),
                        ..IngestReport::default()
                    });
                }
            }
        }
        bar.finish_and_clear();

        if self.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        } else {
            println!(
                "{:<10} {:>9} {:>8} {:>10} {:>9}  {:<14} error",
                "symbol", "inserted", "updated", "unchanged", "rejected", "provider"
            );
            for r in &reports {
                println!(
                    "{:<10} {:>9} {:>8} {:>10} {:>9}  {:<14} {}",
                    r.symbol,
                    r.inserted,
                    r.updated,
                    r.unchanged,
                    r.rejected_total(),
                    r.provider.as_deref().unwrap_or("-"),
                    r.error.as_deref().unwrap_or("")
                );
            }
        }
        let failed = reports.iter().filter(|r| r.error.is_some()).count();
        anyhow::ensure!(
            failed == 0,
            "{failed} of {} symbols not fully backfilled",
            reports.len()
        );
        Ok(reports)
    }
}
