//! The command line: one binary, one subcommand per job.
use clap::{Parser, Subcommand};

use crate::{demo, tenants_cmd};

/// Rampart: a multi-tenant platform for trading and portfolio products.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, global = true, env = "RAMPART_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything with embedded defaults: a PostgreSQL of its own in
    /// `.rampart/` (started and stopped with this command), demo tenants and
    /// data. Ctrl-C stops it cleanly.
    Demo(demo::DemoArgs),
    /// Manage tenants: provision, list, suspend, resume, deactivate, purge,
    /// migrate.
    #[command(subcommand)]
    Tenants(tenants_cmd::TenantsCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Tenants(cmd) => tenants_cmd::run(cmd).await,
    }
}
