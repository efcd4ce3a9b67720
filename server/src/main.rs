//! `rampart`: the Rampart reference server and its operator commands.
#![forbid(unsafe_code)]

use clap::Parser;
use rampart_server::cli;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // Before anything builds an HTTP client (the trace exporter has one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _telemetry = cli::init_tracing(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::run(cli))
}
