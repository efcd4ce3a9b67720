//! `rampart tenants …`: tenant administration from the command line.
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rampart_tenancy::TenantSlug;
use rampart_tenancy::{MigrationProgress, TenancyConfig, TenantPool};

/// Where the platform database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// PostgreSQL URL of the platform database.
    #[arg(long, env = "RAMPART_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (schema, role, template tables).
    Provision {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Slug: lowercase [a-z][a-z0-9_]{2,39}.
        slug: TenantSlug,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Migrate this tenant first in `migrate`.
        #[arg(long)]
        canary: bool,
        /// Invite the tenant's first administrator: the accept link is
        /// mailed when SMTP is configured, printed otherwise.
        #[arg(long)]
        admin_email: Option<String>,
        /// The server's configuration file (`public_base_url`, `[notify]`).
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// The public URL links point to, when no configuration file is given.
        #[arg(long, env = "RAMPART_PUBLIC_BASE_URL")]
        public_url: Option<String>,
    },
    /// List tenants with status and migration state.
    List {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Suspend an active tenant (requests refused, data intact).
    Suspend {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenant slug.
        slug: TenantSlug,
        /// Why (recorded in the event log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a suspended tenant.
    Resume {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenant slug.
        slug: TenantSlug,
    },
    /// Deactivate a tenant; data is kept for the retention period.
    Deactivate {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenant slug.
        slug: TenantSlug,
        /// Days to keep the data.
        #[arg(long)]
        retention_days: Option<i64>,
    },
    /// Drop a deactivated tenant's schema and role (keeps a tombstone).
    Purge {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenant slug.
        slug: TenantSlug,
        /// Purge even before the retention deadline.
        #[arg(long)]
        force: bool,
    },
    /// Export one tenant (consistent snapshot) into a new archive directory.
    Export {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenant slug.
        slug: TenantSlug,
        /// Archive directory to create (must not exist or be empty).
        path: std::path::PathBuf,
    },
    /// Restore an archive made by `export` into a tenant (created if missing).
    Restore {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Archive directory.
        path: std::path::PathBuf,
        /// Target tenant slug (may differ from the exported one).
        slug: TenantSlug,
        /// Overwrite the data of an existing tenant (refused otherwise).
        #[arg(long)]
        replace: bool,
        /// Display name of a newly created tenant (default: the archive's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Bring every tenant schema to the newest template, with a progress bar.
    Migrate {
        /// The platform database.
        #[command(flatten)]
        db: DbArgs,
        /// Tenants migrated at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

async fn connect(db: &DbArgs, concurrency: Option<usize>) -> anyhow::Result<TenantPool> {
    let mut config = TenancyConfig {
        database_url: db.database_url.clone(),
        ..TenancyConfig::default()
    };
    if let Some(c) = concurrency {
        config.migrate_concurrency = c;
        config.max_connections = config.max_connections.max(c + 2);
    }
    Ok(TenantPool::connect(config).await?)
}

/// Runs the command.
pub async fn run(cmd: TenantsCommand) -> anyhow::Result<()> {
    match cmd {
        TenantsCommand::Provision {
            db,
            slug,
            name,
            canary,
            admin_email,
            config,
            public_url,
        } => {
            // Read first: a bad configuration must not leave a tenant behind.
            let links = crate::onboarding::link_config(config.as_deref(), public_url.as_deref())?;
            let pool = connect(&db, None).await?;
            let started = std::time::Instant::now();
            let options = rampart_tenancy::ProvisionOptions {
                canary,
                actor: Some("cli".into()),
                ..Default::default()
            };
            let t = pool
                .provision_with(&slug, name.as_deref().unwrap_or(slug.as_str()), options)
                .await?;
            println!(
                "provisioned {} (schema {}) in {:.1} ms",
                t.slug,
                t.schema_name,
                started.elapsed().as_secs_f64() * 1e3
            );
            if let Some(email) = admin_email {
                use crate::onboarding;
                let auth = onboarding::row_admin(pool.clone(), &links).await?;
                let issued = onboarding::invite_first_admin(&auth, &slug, &email, "cli").await?;
                let delivered = onboarding::deliver(&links, &pool, &slug, issued).await?;
                onboarding::print_delivered(&delivered);
            }
        }
        TenantsCommand::List { db } => {
            let pool = connect(&db, None).await?;
            println!(
                "{:<24} {:<12} {:<28} {:<8}",
                "SLUG", "STATUS", "SCHEMA", "CANARY"
            );
            for t in pool.list().await? {
                println!(
                    "{:<24} {:<12} {:<28} {:<8}",
                    t.slug, t.status, t.schema_name, t.is_canary
                );
            }
        }
        TenantsCommand::Suspend { db, slug, reason } => {
            let t = connect(&db, None)
                .await?
                .suspend(&slug, &reason, Some("cli"))
                .await?;
            println!("{} is {}", t.slug, t.status);
        }
        TenantsCommand::Resume { db, slug } => {
            let t = connect(&db, None).await?.resume(&slug, Some("cli")).await?;
            println!("{} is {}", t.slug, t.status);
        }
        TenantsCommand::Deactivate {
            db,
            slug,
            retention_days,
        } => {
            let t = connect(&db, None)
                .await?
                .deactivate(&slug, retention_days.map(chrono_days), Some("cli"))
                .await?;
            println!(
                "{} is {} (data kept until {:?})",
                t.slug, t.status, t.retention_deadline
            );
        }
        TenantsCommand::Purge { db, slug, force } => {
            let t = connect(&db, None)
                .await?
                .purge(&slug, force, Some("cli"))
                .await?;
            println!("{} is {}", t.slug, t.status);
        }
        TenantsCommand::Export { db, slug, path } => {
            let report = connect(&db, None)
                .await?
                .export_tenant(&slug, &path)
                .await?;
            println!(
                "exported {slug}: {} tables, {} rows, {} bytes to {} in {:.2?}",
                report.manifest.tables.len(),
                report.rows,
                report.bytes,
                report.path.display(),
                report.elapsed
            );
        }
        TenantsCommand::Restore {
            db,
            path,
            slug,
            replace,
            name,
        } => {
            let options = rampart_tenancy::RestoreOptions {
                replace_existing: replace,
                display_name: name,
                actor: Some("cli".into()),
            };
            let report = connect(&db, None)
                .await?
                .restore_tenant(&path, &slug, options)
                .await?;
            println!(
                "{} {}: {} tables, {} rows verified, in {:.2?} (status {})",
                if report.created {
                    "restored new tenant"
                } else {
                    "replaced data of"
                },
                report.tenant.slug,
                report.tables,
                report.rows,
                report.elapsed,
                report.tenant.status
            );
        }
        TenantsCommand::Migrate { db, concurrency } => {
            let pool = connect(&db, Some(concurrency)).await?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let report = pool
                .migrate_all_with_progress(|p| match p {
                    MigrationProgress::Started { total } => bar.set_length(total as u64),
                    MigrationProgress::TenantDone { slug, ok } => {
                        bar.set_message(format!("{slug} {}", if ok { "ok" } else { "FAILED" }));
                        bar.inc(1);
                    }
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "target {}: {} behind, {} migrated, {} failed, {} busy, {} not attempted, in {:.2?}",
                report.target_version,
                report.behind,
                report.succeeded.len(),
                report.failed.len(),
                report.busy.len(),
                report.not_attempted.len(),
                report.elapsed
            );
            for f in &report.failed {
                println!("  FAILED {}: {}", f.slug, f.error.as_deref().unwrap_or(""));
            }
            if !report.is_complete() {
                anyhow::bail!("migration incomplete; rerun after fixing the failures above");
            }
        }
    }
    Ok(())
}

fn chrono_days(days: i64) -> chrono::Duration {
    chrono::Duration::days(days)
}
