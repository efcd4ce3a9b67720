//! The command line: one binary, one subcommand per job.
use clap::{Parser, Subcommand};

use crate::{
    analytics_cmd, audit_cmd, demo, idps_cmd, keys_cmd, market_cmd, onboard_cmd, serve, tenants_cmd,
};

/// Rampart: a multi-tenant platform for trading and portfolio products.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, global = true, env = "RAMPART_LOG_JSON")]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server from configuration (TOML file + `RAMPART_*`
    /// environment): public and admin (mutual TLS) listeners.
    Serve(serve::ServeArgs),
    /// Run everything with embedded defaults: a PostgreSQL of its own in
    /// `.rampart/` (started and stopped with this command), demo tenants and
    /// data. Ctrl-C or SIGTERM stops it cleanly.
    Demo(demo::DemoArgs),
    /// Manage tenants: provision, list, suspend, resume, deactivate, purge,
    /// export, restore, migrate.
    #[command(subcommand)]
    Tenants(tenants_cmd::TenantsCommand),
    /// A tenant's OAuth clients: create, list, show, update, rotate-secret,
    /// disable, delete.
    #[command(subcommand)]
    Clients(onboard_cmd::ClientsCommand),
    /// A tenant's upstream identity providers (OpenID): list, show, add,
    /// update, disable, enable, remove.
    #[command(subcommand)]
    Idps(idps_cmd::IdpsCommand),
    /// A tenant's invitations: create, list, resend, revoke.
    #[command(subcommand)]
    Invitations(onboard_cmd::InvitationsCommand),
    /// Performance and risk metrics for a CSV of dated prices or returns
    /// (one column per series), printed as JSON.
    Analytics(analytics_cmd::AnalyticsArgs),
    /// Signing and encryption keys in Vault: rotate, revoke, list.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Tenant audit logs (verifiable logs): verify one against its signed
    /// tree heads.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Market data: backfill daily bars through the provider chain.
    Market(market_cmd::MarketArgs),
    /// Print the OpenAPI 3 document of the API (no server needed).
    Openapi,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Tenants(cmd) => tenants_cmd::run(cmd).await,
        Command::Clients(cmd) => onboard_cmd::run_clients(cmd).await,
        Command::Invitations(cmd) => onboard_cmd::run_invitations(cmd).await,
        Command::Idps(cmd) => idps_cmd::run(cmd).await,
        Command::Analytics(args) => args.run(),
        Command::Serve(args) => serve::run(args).await,
        Command::Market(args) => args.run().await,
        Command::Keys(cmd) => keys_cmd::run(cmd).await,
        Command::Audit(cmd) => audit_cmd::run(cmd).await,
        Command::Openapi => {
            println!("{}", crate::openapi::document());
            Ok(())
        }
    }
}

/// Starts logging (text on standard error, or JSON lines with
/// `--log-json`; the filter comes from `RAMPART_LOG`, default `info`) and,
/// when `[telemetry] otlp_endpoint` is configured, trace export. Keep the
/// guard until the command ends: dropping it flushes the last spans.
pub fn init_tracing(cli: &Cli) -> anyhow::Result<crate::telemetry::TelemetryGuard> {
    let telemetry = crate::telemetry::TelemetryConfig::load(cli.config_file())
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    crate::telemetry::init(cli.log_json, &telemetry)
}

impl Cli {
    /// The configuration file this command reads, if any.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        match &self.command {
            Command::Serve(args) => args.config.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};
    use crate::tenants_cmd::TenantsCommand;

    #[test]
    fn backup_commands_parse() {
        let cli = Cli::try_parse_from([
            "rampart",
            "tenants",
            "restore",
            "/backups/acme",
            "acme_copy",
            "--replace",
            "--database-url",
            "postgres://localhost/rampart",
        ]);
        assert!(
            matches!(
                cli.as_ref().map(|c| &c.command),
                Ok(Command::Tenants(TenantsCommand::Restore { slug, replace: true, .. })) if slug == "acme_copy"
            ),
            "{cli:?}"
        );
        let cli = Cli::try_parse_from([
            "rampart",
            "tenants",
            "export",
            "acme",
            "/backups/acme",
            "--database-url",
            "postgres://localhost/rampart",
        ]);
        assert!(
            matches!(
                cli.as_ref().map(|c| &c.command),
                Ok(Command::Tenants(TenantsCommand::Export { slug, .. })) if slug == "acme"
            ),
            "{cli:?}"
        );
    }
}
