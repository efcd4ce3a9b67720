//! `rampart demo`: the whole platform with embedded defaults.
use std::path::PathBuf;

use clap::Args;
use rampart_tenancy::{TenancyConfig, TenantPool};
use rampart_testkit::{PgOptions, PgServer};

/// Options of the embedded mode.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the embedded PostgreSQL keeps its data (created on first run).
    #[arg(long, default_value = ".rampart/pg", env = "RAMPART_DEMO_DIR")]
    pub data_dir: PathBuf,
    /// Exit after provisioning and printing (instead of waiting for Ctrl-C).
    #[arg(long)]
    pub once: bool,
}

/// Demo tenants: slug and display name.
const DEMO_TENANTS: &[(&str, &str)] = &[("acme", "Acme Capital"), ("globex", "Globex Investments")];

/// Runs the command.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || {
        PgServer::start_with(PgOptions { data_dir: Some(data_dir), fsync: true, ..PgOptions::default() })
    })
    .await??;
    let result = serve(&pg, &args).await;
    let stopped = tokio::task::spawn_blocking(move || pg.shutdown()).await?;
    result?;
    stopped?;
    println!("stopped.");
    Ok(())
}

async fn serve(pg: &PgServer, args: &DemoArgs) -> anyhow::Result<()> {
    let url = pg.url("postgres");
    println!("embedded PostgreSQL on 127.0.0.1:{} (data in {})", pg.port(), args.data_dir.display());
    let pool = TenantPool::connect(TenancyConfig { database_url: url, ..TenancyConfig::default() }).await?;
    for (slug, name) in DEMO_TENANTS {
        let started = std::time::Instant::now();
        let t = pool.ensure_tenant(slug, name).await?;
        println!("tenant {:<8} {:<22} schema {:<16} status {} ({:.1} ms)", t.slug, t.display_name, t.schema_name, t.status, started.elapsed().as_secs_f64() * 1e3);
    }
    let report = pool.migrate_all().await?;
    println!("template version {}: {} tenants were behind", report.target_version, report.behind);
    if args.once {
        return Ok(());
    }
    println!("Ready. Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
