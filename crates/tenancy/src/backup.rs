//! Per-tenant backup and restore: an export of one tenant schema taken from a
//! consistent snapshot with `COPY … TO STDOUT`, and a restore into a fresh
//! (or, when asked, an existing) tenant with `COPY … FROM STDIN`, verified
//! row for row.
//!
//! An archive is a directory:
//!
//! ```text
//! manifest.json          format, source tenant, template version and
//!                        fingerprint, settings, flags, and per table: file,
//!                        columns, rows, bytes, sha256, identity sequences
//! 000_roles.copy         COPY text format, rows in primary-key order
//! 001_users.copy
//! …
//! ```
//!
//! The manifest is written last (and renamed into place), so a directory
//! without one is an interrupted export and is refused by restore.
//!
//! The data files are written with fixed output settings (UTC, ISO dates,
//! hex bytea) and a deterministic row order, so the sha256 of a table's
//! export is a checksum of its content: restore recomputes it from the
//! restored rows, inside the restoring transaction, before committing.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use diesel::QueryDsl;
use diesel_async::AsyncConnection;
use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{IsolationLevel, Transaction};

use crate::baseline::fingerprint;
use crate::lifecycle::NewTenantEvent;
use crate::schema::{tenant_migrations, tenant_usage, tenants};
use crate::slug::quote_ident;
use crate::{TenancyError, Tenant, TenantPool, TenantSlug, TenantStatus};

/// The archive format this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const LEDGER: &str = "__diesel_schema_migrations";
const CHUNK: usize = 256 * 1024;

/// What an archive holds (`manifest.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackupManifest {
    /// Archive format ([`BACKUP_FORMAT_VERSION`]).
    pub format: u32,
    /// The tenant the archive was taken from.
    pub source_slug: String,
    /// Its display name.
    pub display_name: String,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// Newest template migration applied to the source schema.
    pub template_version: String,
    /// Catalog fingerprint of the source schema (see the crate docs).
    pub template_fingerprint: String,
    /// The tenant's settings (a JSON object).
    pub settings: serde_json::Value,
    /// The tenant's feature flags.
    pub feature_flags: BTreeMap<String, bool>,
    /// The tables, in the order they are restored (referenced tables first).
    pub tables: Vec<BackupTable>,
}

/// One table of an archive.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackupTable {
    /// Table name (unqualified).
    pub name: String,
    /// Data file, relative to the archive directory.
    pub file: String,
    /// Copied columns, in file order (generated columns are recomputed).
    pub columns: Vec<String>,
    /// Rows.
    pub rows: u64,
    /// Size of the data file.
    pub bytes: u64,
    /// sha256 (hex) of the data file.
    pub sha256: String,
    /// Identity sequences and their position at export time.
    pub sequences: Vec<BackupSequence>,
}

/// The position of an identity column's sequence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackupSequence {
    /// The identity column.
    pub column: String,
    /// The sequence's last value, if it was ever used.
    pub last_value: Option<i64>,
}

/// The outcome of [`TenantPool::export_tenant`].
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The archive directory.
    pub path: PathBuf,
    /// What was written.
    pub manifest: BackupManifest,
    /// Rows over all tables.
    pub rows: u64,
    /// Bytes of data over all tables.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Options for [`TenantPool::restore_tenant`].
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore over an existing tenant: its tables are emptied and reloaded
    /// in one transaction (registry row, id, status and event log are kept;
    /// settings and feature flags are taken from the archive). Without it,
    /// an existing target is refused with
    /// [`TenancyError::RestoreTargetExists`].
    pub replace_existing: bool,
    /// Display name of a newly created tenant (default: the archive's).
    pub display_name: Option<String>,
    /// Who asked (recorded in the event log).
    pub actor: Option<String>,
}

/// The outcome of [`TenantPool::restore_tenant`].
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The restored tenant.
    pub tenant: Tenant,
    /// True when the tenant was created by the restore, false when an
    /// existing one was replaced.
    pub created: bool,
    /// Tables loaded.
    pub tables: usize,
    /// Rows loaded (and verified).
    pub rows: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Reads and checks an archive's manifest (format, names, file paths), without
/// touching the data files.
pub async fn read_backup_manifest(dir: impl AsRef<Path>) -> Result<BackupManifest, TenancyError> {
    let path = dir.as_ref().join(MANIFEST);
    let text = tokio::fs::read(&path).await.map_err(|e| io(&path, &e))?;
    let manifest: BackupManifest = serde_json::from_slice(&text)
        .map_err(|e| TenancyError::BackupInvalid(format!("{MANIFEST}: {e}")))?;
    if manifest.format != BACKUP_FORMAT_VERSION {
        return Err(TenancyError::BackupInvalid(format!(
            "archive format {} is not supported (this build reads {BACKUP_FORMAT_VERSION})",
            manifest.format
        )));
    }
    TenantSlug::parse(&manifest.source_slug)?;
    let mut seen = BTreeSet::new();
    for t in &manifest.tables {
        let mut parts = Path::new(&t.file).components();
        let plain = matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none();
        if !plain || !t.file.ends_with(".copy") {
            return Err(TenancyError::BackupInvalid(format!(
                "table {:?}: data file {:?} is not a plain file name",
                t.name, t.file
            )));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(TenancyError::BackupInvalid(format!(
                "table {:?} appears twice",
                t.name
            )));
        }
    }
    Ok(manifest)
}

impl TenantPool {
    /// Exports one tenant into `dir` (created; must not exist or be empty).
    ///
    /// Every table of the tenant schema (except the migration ledger) is read
    /// with `COPY (SELECT …) TO STDOUT` inside one `REPEATABLE READ READ ONLY`
    /// transaction, so the archive is one consistent snapshot even while the
    /// tenant keeps writing. Suspended and deactivated tenants can be
    /// exported; purged ones cannot.
    ///
    /// The archive holds the tenant's data as is, credentials material
    /// included (password hashes, sealed secrets): store it like the database.
    pub async fn export_tenant(
        &self,
        slug: &TenantSlug,
        dir: impl AsRef<Path>,
    ) -> Result<ExportReport, TenancyError> {
        let started = Instant::now();
        let dir = dir.as_ref().to_path_buf();
        let tenant = self.tenant(slug).await?;
        match tenant.status {
            TenantStatus::Purged => return Err(TenancyError::Purged(tenant.slug.to_string())),
            TenantStatus::Provisioning => {
                return Err(TenancyError::NotFound(tenant.slug.to_string()));
            }
            _ => {}
        }
        prepare_empty_dir(&dir).await?;
        let schema = tenant.schema_name.clone();
        let fingerprint = self.schema_fingerprint(&schema).await?;

        let mut client = self.copy_client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        tx.batch_execute(&self.session_settings())
            .await
            .map_err(pg)?;
        let registry = tx
            .query_opt(
                "SELECT display_name, settings::text, feature_flags::text FROM platform.tenants \
                 WHERE slug = $1",
                &[&tenant.slug.as_str()],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| TenancyError::NotFound(tenant.slug.to_string()))?;
        let display_name: String = registry.try_get(0).map_err(pg)?;
        let settings: String = registry.try_get(1).map_err(pg)?;
        let flags: String = registry.try_get(2).map_err(pg)?;
        let settings: serde_json::Value =
            serde_json::from_str(&settings).map_err(|e| TenancyError::Config(e.to_string()))?;
        let feature_flags: BTreeMap<String, bool> =
            serde_json::from_str(&flags).map_err(|e| TenancyError::Config(e.to_string()))?;
        let template_version = schema_version(&tx, &schema).await?;
        let layout = schema_layout(&tx, &schema).await?;

        let mut tables = Vec::with_capacity(layout.len());
        let (mut rows, mut bytes) = (0u64, 0u64);
        for (i, table) in layout.iter().enumerate() {
            let file = format!("{i:03}_{}.copy", table.name);
            let path = dir.join(&file);
            let (n, size, sha256) = copy_table_to_file(&tx, &schema, table, &path).await?;
            let mut sequences = Vec::new();
            for column in &table.identity {
                let row = tx
                    .query_one(
                        "SELECT s.last_value FROM pg_sequences s \
                         JOIN pg_namespace sn ON sn.nspname = s.schemaname \
                         JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename \
                         WHERE sc.oid = pg_get_serial_sequence(format('%I.%I', $1::text, $2::text), $3)::regclass",
                        &[&schema, &table.name, column],
                    )
                    .await
                    .map_err(pg)?;
                sequences.push(BackupSequence {
                    column: column.clone(),
                    last_value: row.try_get(0).map_err(pg)?,
                });
            }
            rows += n;
            bytes += size;
            tables.push(BackupTable {
                name: table.name.clone(),
                file,
                columns: table.columns.clone(),
                rows: n,
                bytes: size,
                sha256,
                sequences,
            });
        }
        tx.commit().await.map_err(pg)?;

        let manifest = BackupManifest {
            format: BACKUP_FORMAT_VERSION,
            source_slug: tenant.slug.to_string(),
            display_name,
            created_at: Utc::now(),
            template_version,
            template_fingerprint: fingerprint,
            settings,
            feature_flags,
            tables,
        };
        write_manifest(&dir, &manifest).await?;
        tracing::info!(tenant = %tenant.slug, rows, bytes, path = %dir.display(), "tenant exported");
        Ok(ExportReport {
            path: dir,
            manifest,
            rows,
            bytes,
            elapsed: started.elapsed(),
        })
    }

    /// Restores an archive made by [`TenantPool::export_tenant`] into the
    /// tenant `target_slug` (which may differ from the source).
    ///
    /// Before anything changes, the manifest and the sha256 of every data
    /// file are checked, and the archive's template version and fingerprint
    /// must equal this pool's template
    /// ([`TenancyError::BackupIncompatible`] otherwise: migrate first, then
    /// export again). A missing target is provisioned through
    /// [`TenantPool::provision_with`] and suspended right away until its data
    /// is in;
    /// an existing one is refused unless [`RestoreOptions::replace_existing`].
    /// The data is then loaded in one transaction: `TRUNCATE`, `COPY … FROM
    /// STDIN` per table (referenced tables first), identity sequences moved
    /// past the restored ids, every table read back and compared with the
    /// archive's row count and checksum, settings and flags set, and a
    /// `restored` event recorded. On failure that transaction rolls back, and
    /// a tenant created by this call is removed again.
    pub async fn restore_tenant(
        &self,
        dir: impl AsRef<Path>,
        slug: &TenantSlug,
        options: RestoreOptions,
    ) -> Result<RestoreReport, TenancyError> {
        let started = Instant::now();
        let dir = dir.as_ref();
        let manifest = read_backup_manifest(dir).await?;
        for table in &manifest.tables {
            verify_file(dir, table).await?;
        }
        let template = &self.inner.template;
        if manifest.template_version != template.latest_version() {
            return Err(TenancyError::BackupIncompatible {
                archive: manifest.template_version.clone(),
                template: template.latest_version().to_owned(),
            });
        }
        if manifest.template_fingerprint != self.inner.baseline.fingerprint {
            return Err(TenancyError::BackupIncompatible {
                archive: format!(
                    "{} (schema fingerprint {})",
                    manifest.template_version, manifest.template_fingerprint
                ),
                template: format!(
                    "{} (schema fingerprint {})",
                    template.latest_version(),
                    self.inner.baseline.fingerprint
                ),
            });
        }

        let actor = options.actor.as_deref();
        let (tenant, created) = match self.tenant(slug).await {
            Ok(existing) => {
                if !options.replace_existing {
                    return Err(TenancyError::RestoreTargetExists(slug.to_string()));
                }
                if existing.status == TenantStatus::Purged {
                    return Err(TenancyError::Purged(slug.to_string()));
                }
                let current = self.schema_fingerprint(&existing.schema_name).await?;
                if current != self.inner.baseline.fingerprint {
                    return Err(TenancyError::BackupIncompatible {
                        archive: manifest.template_version.clone(),
                        template: format!(
                            "tenant {slug} is not at the template's schema (migrate it first)"
                        ),
                    });
                }
                (existing, false)
            }
            Err(TenancyError::NotFound(_)) => {
                let name = options
                    .display_name
                    .clone()
                    .unwrap_or_else(|| manifest.display_name.clone());
                let provision = crate::ProvisionOptions {
                    actor: options.actor.clone(),
                    ..Default::default()
                };
                let tenant = match self.provision_with(slug, &name, provision).await {
                    Err(TenancyError::AlreadyExists(s)) => {
                        return Err(TenancyError::RestoreTargetExists(s));
                    }
                    other => other?,
                };
                // Not served until its data is in.
                let tenant = match self.suspend(slug, "restoring from backup", actor).await {
                    Ok(t) => t,
                    Err(e) => {
                        self.discard_new_tenant(&tenant, &e).await;
                        return Err(e);
                    }
                };
                (tenant, true)
            }
            Err(e) => return Err(e),
        };

        let loaded = self
            .load_archive(dir, &manifest, &tenant, created, actor)
            .await;
        self.invalidate(slug).await;
        let rows = match loaded {
            Ok(rows) => rows,
            Err(e) => {
                if created {
                    self.discard_new_tenant(&tenant, &e).await;
                }
                return Err(e);
            }
        };
        let tenant = self.tenant(slug).await?;
        tracing::info!(tenant = %slug, source = %manifest.source_slug, rows, created, "tenant restored");
        Ok(RestoreReport {
            tenant,
            created,
            tables: manifest.tables.len(),
            rows,
            elapsed: started.elapsed(),
        })
    }

    /// The data load of a restore, in one transaction. Returns the rows.
    async fn load_archive(
        &self,
        dir: &Path,
        manifest: &BackupManifest,
        tenant: &Tenant,
        created: bool,
        actor: Option<&str>,
    ) -> Result<u64, TenancyError> {
        let schema = &tenant.schema_name;
        let slug = tenant.slug.as_str();
        let mut client = self.copy_client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(&self.session_settings())
            .await
            .map_err(pg)?;
        // Serialize with lifecycle changes (row lock) and migrations (their
        // per-tenant advisory lock).
        let status = tx
            .query_opt(
                "SELECT status FROM platform.tenants WHERE slug = $1 FOR UPDATE",
                &[&slug],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| TenancyError::NotFound(slug.to_owned()))?;
        let status: String = status.try_get(0).map_err(pg)?;
        if status == "purged" {
            return Err(TenancyError::Purged(slug.to_owned()));
        }
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rampart.migrate'), hashtext($1))",
            &[schema],
        )
        .await
        .map_err(pg)?;
        let version = schema_version(&tx, schema).await?;
        if version != manifest.template_version {
            return Err(TenancyError::BackupIncompatible {
                archive: manifest.template_version.clone(),
                template: format!("tenant {slug} is at {version}"),
            });
        }
        let layout = schema_layout(&tx, schema).await?;
        check_layout(manifest, &layout)?;

        let s = quote_ident(schema);
        let all: Vec<String> = layout
            .iter()
            .map(|t| format!("{s}.{}", quote_ident(&t.name)))
            .collect();
        if !all.is_empty() {
            // Empties the seed rows of a fresh schema, or the old data.
            tx.batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", all.join(", ")))
                .await
                .map_err(pg)?;
        }
        let mut rows = 0u64;
        for table in &manifest.tables {
            let n = copy_file_to_table(&tx, schema, table, &dir.join(&table.file)).await?;
            if n != table.rows {
                return Err(TenancyError::RestoreMismatch {
                    table: table.name.clone(),
                    message: format!("archive has {} rows, COPY loaded {n}", table.rows),
                });
            }
            rows += n;
        }
        for table in &manifest.tables {
            for seq in &table.sequences {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence(format('%I.%I', $1::text, $2::text), $3), v, true) \
                         FROM (SELECT greatest(max({c})::bigint, $4::bigint) AS v FROM {s}.{t}) m WHERE v > 0",
                        c = quote_ident(&seq.column),
                        t = quote_ident(&table.name),
                    ),
                    &[schema, &table.name, &seq.column, &seq.last_value],
                )
                .await
                .map_err(pg)?;
            }
        }
        // Read everything back: same rows, same bytes.
        let by_name: HashMap<&str, &TableLayout> =
            layout.iter().map(|t| (t.name.as_str(), t)).collect();
        for table in &manifest.tables {
            let Some(layout) = by_name.get(table.name.as_str()) else {
                continue;
            };
            let (n, _, sha256) = copy_table_to_sink(&tx, schema, layout, None).await?;
            if n != table.rows || sha256 != table.sha256 {
                return Err(TenancyError::RestoreMismatch {
                    table: table.name.clone(),
                    message: format!(
                        "read back {n} rows with sha256 {sha256}, archive has {} rows with sha256 {}",
                        table.rows, table.sha256
                    ),
                });
            }
        }
        let detail = serde_json::json!({
            "source": manifest.source_slug,
            "snapshot": manifest.created_at,
            "version": manifest.template_version,
            "tables": manifest.tables.len(),
            "rows": rows,
            "replaced": !created,
        })
        .to_string();
        let settings = manifest.settings.to_string();
        let flags = serde_json::to_string(&manifest.feature_flags)
            .map_err(|e| TenancyError::Config(e.to_string()))?;
        tx.execute(
            "WITH t AS (UPDATE platform.tenants SET settings = $2::text::jsonb, \
               feature_flags = $3::text::jsonb, updated_at = now(), \
               status = CASE WHEN $4::bool THEN 'active' ELSE status END, \
               suspended_at = CASE WHEN $4::bool THEN NULL ELSE suspended_at END \
               WHERE slug = $1 RETURNING id, slug) \
             INSERT INTO platform.tenant_events (tenant_id, slug, event, detail, actor) \
             SELECT id, slug, 'restored', $5::text::jsonb, $6::text FROM t",
            &[&slug, &settings, &flags, &created, &detail, &actor],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(rows)
    }

    /// Removes a tenant this restore created (its load failed), so that the
    /// restore can simply be run again. Best effort: logged, not returned.
    async fn discard_new_tenant(&self, tenant: &Tenant, cause: &TenancyError) {
        use diesel_async::RunQueryDsl;
        let result = async {
            let mut conn = self.conn().await?;
            conn.transaction::<_, TenancyError, _>(async |conn| {
                TenantPool::drop_schema_and_role(conn, &tenant.schema_name, &tenant.role_name)
                    .await?;
                diesel::delete(tenant_usage::table.find(tenant.id))
                    .execute(conn)
                    .await?;
                diesel::delete(tenant_migrations::table.find(tenant.id))
                    .execute(conn)
                    .await?;
                diesel::delete(tenants::table.find(tenant.id))
                    .execute(conn)
                    .await?;
                NewTenantEvent {
                    tenant_id: Some(tenant.id),
                    slug: tenant.slug.as_str(),
                    event: "restore_failed",
                    detail: serde_json::json!({"error": cause.code()}),
                    actor: None,
                }
                .record(conn)
                .await
            })
            .await
        }
        .await;
        self.invalidate(&tenant.slug).await;
        if let Err(e) = result {
            tracing::error!(tenant = %tenant.slug, error = %e, "could not remove the tenant of a failed restore");
        }
    }

    async fn schema_fingerprint(&self, schema: &str) -> Result<String, TenancyError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TenancyError, _>(async |conn| fingerprint(conn, schema).await)
            .await
    }

    /// A plain tokio-postgres client on the pool's database: diesel-async has
    /// no COPY. Same URL and TLS settings as the pool.
    async fn copy_client(&self) -> Result<tokio_postgres::Client, TenancyError> {
        Ok(self.inner.connector.connect().await?)
    }

    /// Transaction-local settings that make COPY output independent of the
    /// server's and the session's defaults (so checksums compare).
    fn session_settings(&self) -> String {
        format!(
            "SET LOCAL search_path = pg_catalog; SET LOCAL TimeZone = 'UTC'; \
             SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; \
             SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; \
             SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{}ms'",
            self.inner.config.lock_timeout_ms
        )
    }
}

/// A table of a tenant schema as the catalog describes it.
#[derive(Debug)]
struct TableLayout {
    name: String,
    /// Copyable columns (not generated), in attribute order.
    columns: Vec<String>,
    collatable: BTreeSet<String>,
    identity: Vec<String>,
    primary_key: Vec<String>,
    references: BTreeSet<String>,
}

impl TableLayout {
    /// A deterministic row order: the primary key (text compared bytewise),
    /// or the whole row as text for tables without one.
    fn order_by(&self) -> String {
        if self.primary_key.is_empty() {
            return "x::text COLLATE \"C\"".to_owned();
        }
        self.primary_key
            .iter()
            .map(|c| {
                if self.collatable.contains(c) {
                    format!("x.{} COLLATE \"C\"", quote_ident(c))
                } else {
                    format!("x.{}", quote_ident(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select(&self, schema: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("x.{}", quote_ident(c)))
            .collect();
        format!(
            "SELECT {} FROM {}.{} x ORDER BY {}",
            cols.join(", "),
            quote_ident(schema),
            quote_ident(&self.name),
            self.order_by()
        )
    }
}

/// The tables of `schema` (without the migration ledger), referenced tables
/// before the tables that reference them.
async fn schema_layout(
    tx: &Transaction<'_>,
    schema: &str,
) -> Result<Vec<TableLayout>, TenancyError> {
    let mut tables: BTreeMap<String, TableLayout> = BTreeMap::new();
    for row in tx
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> $2",
            &[&schema, &LEDGER],
        )
        .await
        .map_err(pg)?
    {
        let name: String = row.try_get(0).map_err(pg)?;
        tables.insert(
            name.clone(),
            TableLayout {
                name,
                columns: Vec::new(),
                collatable: BTreeSet::new(),
                identity: Vec::new(),
                primary_key: Vec::new(),
                references: BTreeSet::new(),
            },
        );
    }
    for row in tx
        .query(
            "SELECT c.relname::text, a.attname::text, a.attcollation <> 0, a.attidentity <> '' \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.attgenerated = '' ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .map_err(pg)?
    {
        let table: String = row.try_get(0).map_err(pg)?;
        let column: String = row.try_get(1).map_err(pg)?;
        if let Some(t) = tables.get_mut(&table) {
            if row.try_get::<_, bool>(2).map_err(pg)? {
                t.collatable.insert(column.clone());
            }
            if row.try_get::<_, bool>(3).map_err(pg)? {
                t.identity.push(column.clone());
            }
            t.columns.push(column);
        }
    }
    for row in tx
        .query(
            "SELECT c.relname::text, a.attname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE n.nspname = $1 AND i.indisprimary ORDER BY c.relname, k.ord",
            &[&schema],
        )
        .await
        .map_err(pg)?
    {
        let table: String = row.try_get(0).map_err(pg)?;
        if let Some(t) = tables.get_mut(&table) {
            t.primary_key.push(row.try_get(1).map_err(pg)?);
        }
    }
    for row in tx
        .query(
            "SELECT c.relname::text, r.relname::text FROM pg_constraint k \
             JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid \
             JOIN pg_namespace n ON n.oid = k.connamespace \
             WHERE n.nspname = $1 AND k.contype = 'f'",
            &[&schema],
        )
        .await
        .map_err(pg)?
    {
        let table: String = row.try_get(0).map_err(pg)?;
        let referenced: String = row.try_get(1).map_err(pg)?;
        if let Some(t) = tables.get_mut(&table)
            && referenced != table
        {
            t.references.insert(referenced);
        }
    }
    Ok(fk_order(tables))
}

/// Orders tables so that every table comes after the tables it references
/// (by name among the ready ones, so the order is stable). A cycle, which the
/// template does not have, leaves its tables in name order at the end.
fn fk_order(mut pending: BTreeMap<String, TableLayout>) -> Vec<TableLayout> {
    let mut ordered: Vec<TableLayout> = Vec::with_capacity(pending.len());
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let ready: Vec<String> = pending
            .values()
            .filter(|t| {
                t.references
                    .iter()
                    .all(|r| done.contains(r) || !pending.contains_key(r))
            })
            .map(|t| t.name.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            if let Some(t) = pending.remove(&name) {
                done.insert(name);
                ordered.push(t);
            }
        }
    }
    ordered.extend(pending.into_values());
    ordered
}

/// The newest migration recorded in a tenant schema's ledger.
async fn schema_version(tx: &Transaction<'_>, schema: &str) -> Result<String, TenancyError> {
    let row = tx
        .query_one(
            &format!(
                "SELECT coalesce(max(version)::text, '') FROM {}.{}",
                quote_ident(schema),
                quote_ident(LEDGER)
            ),
            &[],
        )
        .await
        .map_err(pg)?;
    row.try_get(0).map_err(pg)
}

/// The archive's tables and columns must be exactly the target schema's.
fn check_layout(manifest: &BackupManifest, layout: &[TableLayout]) -> Result<(), TenancyError> {
    let incompatible = |what: String| TenancyError::BackupIncompatible {
        archive: format!("{} ({what})", manifest.template_version),
        template: "the target schema differs".to_owned(),
    };
    let by_name: HashMap<&str, &TableLayout> =
        layout.iter().map(|t| (t.name.as_str(), t)).collect();
    for table in &manifest.tables {
        match by_name.get(table.name.as_str()) {
            None => {
                return Err(incompatible(format!(
                    "table {} is not in the target",
                    table.name
                )));
            }
            Some(t) if t.columns != table.columns => {
                return Err(incompatible(format!("columns of {} differ", table.name)));
            }
            Some(_) => {}
        }
    }
    let archived: BTreeSet<&str> = manifest.tables.iter().map(|t| t.name.as_str()).collect();
    if let Some(missing) = layout.iter().find(|t| !archived.contains(t.name.as_str())) {
        return Err(incompatible(format!(
            "table {} is not in the archive",
            missing.name
        )));
    }
    Ok(())
}

/// Streams one table's rows into `path`; returns rows, bytes and sha256.
async fn copy_table_to_file(
    tx: &Transaction<'_>,
    schema: &str,
    table: &TableLayout,
    path: &Path,
) -> Result<(u64, u64, String), TenancyError> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io(path, &e))?;
    let mut out = tokio::io::BufWriter::with_capacity(CHUNK, file);
    let result = copy_table_to_sink(tx, schema, table, Some((&mut out, path))).await?;
    out.flush().await.map_err(|e| io(path, &e))?;
    out.get_ref().sync_all().await.map_err(|e| io(path, &e))?;
    Ok(result)
}

/// `COPY (SELECT …) TO STDOUT` of one table, hashed, optionally written out.
async fn copy_table_to_sink(
    tx: &Transaction<'_>,
    schema: &str,
    table: &TableLayout,
    mut out: Option<(&mut tokio::io::BufWriter<tokio::fs::File>, &Path)>,
) -> Result<(u64, u64, String), TenancyError> {
    let stream = tx
        .copy_out(&format!("COPY ({}) TO STDOUT", table.select(schema)))
        .await
        .map_err(pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut hasher = Sha256::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(pg)?;
        hasher.update(&chunk);
        // In COPY's text format every row ends with a newline and newlines
        // inside values are escaped, so newlines count rows.
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        if let Some((out, path)) = out.as_mut() {
            out.write_all(&chunk).await.map_err(|e| io(path, &e))?;
        }
    }
    Ok((rows, bytes, hex::encode(hasher.finalize())))
}

/// `COPY … FROM STDIN` of one data file; returns the rows loaded.
async fn copy_file_to_table(
    tx: &Transaction<'_>,
    schema: &str,
    table: &BackupTable,
    path: &Path,
) -> Result<u64, TenancyError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(c)).collect();
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!(
            "COPY {}.{} ({}) FROM STDIN",
            quote_ident(schema),
            quote_ident(&table.name),
            columns.join(", ")
        ))
        .await
        .map_err(pg)?;
    let mut sink = std::pin::pin!(sink);
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io(path, &e))?;
    let mut buf = BytesMut::with_capacity(CHUNK);
    loop {
        buf.reserve(CHUNK);
        let n = file.read_buf(&mut buf).await.map_err(|e| io(path, &e))?;
        if n == 0 {
            break;
        }
        if buf.len() >= CHUNK {
            sink.feed(buf.split().freeze()).await.map_err(pg)?;
        }
    }
    if !buf.is_empty() {
        sink.feed(buf.split().freeze()).await.map_err(pg)?;
    }
    sink.as_mut().finish().await.map_err(pg)
}

/// Checks a data file's size and sha256 against the manifest.
async fn verify_file(dir: &Path, table: &BackupTable) -> Result<(), TenancyError> {
    let path = dir.join(&table.file);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| io(&path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let (mut bytes, mut rows) = (0u64, 0u64);
    loop {
        let n = file.read(&mut buf).await.map_err(|e| io(&path, &e))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        hasher.update(chunk);
        bytes += n as u64;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != table.sha256 || bytes != table.bytes || rows != table.rows {
        return Err(TenancyError::BackupInvalid(format!(
            "{}: {bytes} bytes, {rows} rows, sha256 {sha256}; the manifest says {} bytes, {} rows, sha256 {}",
            table.file, table.bytes, table.rows, table.sha256
        )));
    }
    Ok(())
}

async fn prepare_empty_dir(dir: &Path) -> Result<(), TenancyError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io(dir, &e))?;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| io(dir, &e))?;
    if entries
        .next_entry()
        .await
        .map_err(|e| io(dir, &e))?
        .is_some()
    {
        return Err(TenancyError::BackupIo {
            path: dir.display().to_string(),
            message: "the export directory is not empty".into(),
        });
    }
    Ok(())
}

async fn write_manifest(dir: &Path, manifest: &BackupManifest) -> Result<(), TenancyError> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| TenancyError::BackupInvalid(e.to_string()))?;
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io(&tmp, &e))?;
    file.write_all(&json).await.map_err(|e| io(&tmp, &e))?;
    file.sync_all().await.map_err(|e| io(&tmp, &e))?;
    let path = dir.join(MANIFEST);
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| io(&path, &e))
}

fn io(path: &Path, e: &std::io::Error) -> TenancyError {
    TenancyError::BackupIo {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// tokio-postgres errors print as "db error"; keep the server's message.
fn pg(e: tokio_postgres::Error) -> TenancyError {
    match e.as_db_error() {
        Some(db) => TenancyError::CopyDatabase(format!("{} ({})", db.message(), db.code().code())),
        None => TenancyError::CopyDatabase(e.to_string()),
    }
}
