//! `rampart audit …`: a tenant's audit log checked as a verifiable log.
//!
//! `rampart audit verify TENANT` recomputes the tenant's Merkle tree from
//! its audit rows and checks every signed tree head (root at its size,
//! ES256 signature with the platform's keys from Vault). It prints the
//! first position that differs and exits non-zero when a sealed row was
//! changed, inserted, reordered or deleted, the table truncated, or a tree
//! head forged. Rows after the newest tree head are reported as unsealed.
use rampart_tenancy::TenantSlug;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use rampart_auth::audit_tree::{DifferenceKind, HeadProblem, LogVerification};
use rampart_auth::{AuditService, KeyEncryptionKey, KeyRing, MemoryKeyStore, RotationPolicy};
use rampart_tenancy::TenantPool;

use crate::config::ServerConfig;

/// Audit log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a tenant's audit log against its signed tree heads; exits
    /// non-zero, naming the first position that differs, on tampering.
    Verify(VerifyArgs),
}

/// `rampart audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The server's configuration (`[database]`; `[vault]` holds the keys
    /// that signed the tree heads).
    #[arg(long, short, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// The tenant's slug.
    pub tenant: TenantSlug,
}

/// Runs the command.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(args) => {
            let config = ServerConfig::load(args.config.as_deref())?;
            let v = verify(&config, &args.tenant).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for line in describe(&args.tenant, &v) {
                    println!("{line}");
                }
            }
            if !v.ok() {
                anyhow::bail!("the audit log of {} was tampered with", args.tenant);
            }
            Ok(())
        }
    }
}

/// Verifies `tenant`'s audit log with the database and keys of `config`
/// (without `[vault]` the signatures cannot be checked: the roots are).
pub async fn verify(config: &ServerConfig, tenant: &TenantSlug) -> anyhow::Result<LogVerification> {
    let ring = if config.vault.is_some() {
        crate::keys_cmd::vault_key_ring(config).await?
    } else {
        eprintln!(
            "note: no [vault]: the signing keys are not available, so tree head signatures \
             are not checked (their roots are)"
        );
        KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            KeyEncryptionKey::generate(),
            RotationPolicy::from_config(&config.auth),
        )
        .await?
    };
    let pool = TenantPool::connect(config.database.clone()).await?;
    Ok(AuditService::new(pool, ring).verify_log(tenant).await?)
}

/// The result in words, one line each.
pub fn describe(tenant: &str, v: &LogVerification) -> Vec<String> {
    let mut lines = vec![format!(
        "audit log of {tenant}: {} rows; {} sealed under {} signed tree heads; {} unsealed (not yet provable)",
        v.rows, v.tree_size, v.heads, v.unsealed
    )];
    let id = |id: Option<i64>| id.map_or_else(|| "none".to_owned(), |i| i.to_string());
    if let Some(d) = &v.first_difference {
        let what = match d.kind {
            DifferenceKind::Changed => format!("row {} was changed", id(d.row_id)),
            DifferenceKind::Inserted => format!(
                "row {} was inserted (sealed here: row {})",
                id(d.row_id),
                id(d.sealed_row_id)
            ),
            DifferenceKind::Missing => format!(
                "sealed row {} is missing (found here: row {})",
                id(d.sealed_row_id),
                id(d.row_id)
            ),
        };
        lines.push(format!("TAMPERED at position {}: {what}", d.position));
    }
    if let Some(b) = &v.bad_head {
        let why = match b.problem {
            HeadProblem::RootMismatch => "the rows do not give its root",
            HeadProblem::BadSignature => "its signature does not verify",
        };
        lines.push(format!(
            "TAMPERED: the tree head of size {} (last row {}): {why}",
            b.tree_size, b.last_row_id
        ));
    }
    if v.unverifiable_heads > 0 {
        lines.push(format!(
            "note: {} tree heads were signed by keys no longer in the key ring (roots checked)",
            v.unverifiable_heads
        ));
    }
    if v.ok() {
        lines.push("ok: every sealed row matches the signed tree".to_owned());
    }
    lines
}
