//! Backup and restore: per-tenant export/restore round trips (row for row),
//! refusals, corrupt and incompatible archives, and the whole-database
//! pg_dump/pg_restore procedure of the README.
use rampart_testkit::valid_slug;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rampart_tenancy::{
    BackupManifest, RestoreOptions, TenancyError, TenantPool, TenantStatus, read_backup_manifest,
};
use rampart_testkit::{PgOptions, PgServer};
use sha2::{Digest, Sha256};

use super::{admin_count, admin_exec, database_url, event_names, pool_with};

#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

async fn admin_texts(url: &str, sql: &str) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    conn.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let rows: Vec<TextRow> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.into_iter().map(|r| r.t).collect()
}

/// Every table of a tenant schema (ledger excluded) with all its rows as
/// text, sorted: two schemas hold the same data iff these maps are equal.
async fn contents(url: &str, slug: &str) -> BTreeMap<String, String> {
    let schema = format!("tenant_{slug}");
    let tables = admin_texts(
        url,
        &format!(
            "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = '{schema}' \
             AND tablename <> '__diesel_schema_migrations' ORDER BY 1"
        ),
    )
    .await;
    assert!(tables.len() > 20, "{tables:?}");
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = admin_texts(
            url,
            &format!(
                "SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE \"C\"), '') AS t \
                 FROM {schema}.{table} x"
            ),
        )
        .await;
        out.insert(table, rows.concat());
    }
    out
}

/// Rows in every kind of column the template has, with the characters COPY
/// must escape, NULLs, a self-reference whose child sorts before its parent,
/// identity columns and a table without a primary key.
async fn seed(pool: &TenantPool, slug: &str, n: usize) {
    let sql = format!(
        r#"
        INSERT INTO roles (name, description, permissions)
            VALUES ('quant', E'tab\there\nnew line \\ backslash ünïcødé ✓', '{{read,"with space",NULL}}');
        INSERT INTO users (id, email, display_name, role, preferences, password_hash) VALUES
            ('00000000-0000-0000-0000-0000000000a1', 'ada@x.test', 'Ada', 'quant', '{{"theme":"dark","n":[1,2.5,null]}}', NULL),
            ('00000000-0000-0000-0000-0000000000b2', 'bob@x.test', E'Bob\r\n"quoted"\\N', 'viewer', '{{}}', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA');
        INSERT INTO documents (id, kind) VALUES ('00000000-0000-0000-0000-00000000000f', 'portfolio');
        INSERT INTO portfolios (id, owner_id, name, settings)
            VALUES ('00000000-0000-0000-0000-00000000000f', '00000000-0000-0000-0000-0000000000a1', 'Main', '{{"k":"v"}}');
        INSERT INTO positions (portfolio_id, symbol, quantity, purchase_price, purchase_date, notes)
            SELECT '00000000-0000-0000-0000-00000000000f', 'SYM' || g, g * 1.1234567891, 99.5, date '2024-01-01' + g,
                   CASE WHEN g % 7 = 0 THEN E'line\nbreak' ELSE '' END
            FROM generate_series(1, {n}) g;
        INSERT INTO audit_log (action, result, detail, prev_hash, row_hash, occurred_at)
            SELECT 'login', 'ok', jsonb_build_object('i', g), decode('00ff', 'hex'), sha256(g::text::bytea),
                   timestamptz '2024-03-01 12:00:00.123456+02' + g * interval '1 minute'
            FROM generate_series(1, {n}) g;
        INSERT INTO portfolio_metrics_daily (portfolio_id, date, nav, daily_return, volatility_30d)
            SELECT '00000000-0000-0000-0000-00000000000f', date '2024-01-01' + g, 100 + g * 0.1, g,
                   CASE WHEN g = 1 THEN 'NaN'::float8 ELSE 1.0 / g END
            FROM generate_series(1, {n}) g;
        INSERT INTO document_comments (id, document_id, author_id, parent_id, body) VALUES
            ('00000000-0000-0000-0000-0000000000c9', '00000000-0000-0000-0000-00000000000f', '00000000-0000-0000-0000-0000000000a1', NULL, 'parent'),
            ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-00000000000f', '00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000c9', 'child');
        INSERT INTO document_activity (document_id, action, after)
            SELECT '00000000-0000-0000-0000-00000000000f', 'edit', jsonb_build_object('v', g) FROM generate_series(1, 5) g;
        "#
    );
    pool.with_tenant(&valid_slug(slug), async |conn| {
        conn.batch_execute(&sql).await.map_err(TenancyError::from)
    })
    .await
    .unwrap();
}

async fn next_audit_id(pool: &TenantPool, slug: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    pool.with_tenant(&valid_slug(slug), async |conn| {
        let row: Id = diesel::sql_query(
            "INSERT INTO audit_log (action, result) VALUES ('probe', 'ok') RETURNING id",
        )
        .get_result(conn)
        .await
        .map_err(TenancyError::from)?;
        Ok::<_, TenancyError>(row.id)
    })
    .await
    .unwrap()
}

async fn delete_audit_probe(url: &str, slug: &str) {
    // audit_log is append-only for the tenant; the superuser removes the
    // probe row by disabling the trigger for this statement's transaction.
    admin_exec(
        url,
        &format!(
            "BEGIN; ALTER TABLE tenant_{slug}.audit_log DISABLE TRIGGER USER; \
             DELETE FROM tenant_{slug}.audit_log WHERE action = 'probe'; \
             ALTER TABLE tenant_{slug}.audit_log ENABLE TRIGGER USER; COMMIT;"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_and_restore_round_trip_row_for_row() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    pool.provision(&valid_slug("source"), "Source Capital")
        .await
        .unwrap();
    seed(&pool, "source", 300).await;
    pool.set_setting(&valid_slug("source"), "locale", &"de-CH")
        .await
        .unwrap();
    let original = contents(&url, "source").await;

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("source");
    let export = pool
        .export_tenant(&valid_slug("source"), &archive)
        .await
        .unwrap();
    let manifest = read_backup_manifest(&archive).await.unwrap();
    assert_eq!(manifest, export.manifest);
    assert_eq!(manifest.source_slug, "source");
    assert_eq!(manifest.display_name, "Source Capital");
    assert_eq!(manifest.template_version, pool.template().latest_version());
    let rows: BTreeMap<&str, u64> = manifest
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(rows["positions"], 300);
    assert_eq!(rows["audit_log"], 300);
    assert_eq!(rows["portfolio_metrics_daily"], 300);
    assert_eq!(rows["roles"], 8);
    assert_eq!(export.rows, rows.values().sum::<u64>());
    assert!(!rows.contains_key("__diesel_schema_migrations"));
    // Referenced tables come first.
    let at = |name: &str| manifest.tables.iter().position(|t| t.name == name).unwrap();
    assert!(at("roles") < at("users"));
    assert!(at("users") < at("portfolios"));
    assert!(at("portfolios") < at("positions"));
    let audit = &manifest.tables[at("audit_log")];
    assert_eq!(audit.sequences[0].column, "id");
    assert_eq!(audit.sequences[0].last_value, Some(300));

    // Into a new tenant: created, data identical row for row.
    let report = pool
        .restore_tenant(
            &archive,
            &valid_slug("copy_one"),
            RestoreOptions {
                actor: Some("test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(report.created);
    assert_eq!(report.rows, export.rows);
    assert_eq!(report.tenant.status, TenantStatus::Active);
    assert_eq!(report.tenant.display_name, "Source Capital");
    assert_eq!(contents(&url, "copy_one").await, original);
    // Settings came along; identity sequences continue after the restored ids.
    let locale: String = pool
        .setting_or(&valid_slug("copy_one"), "locale", String::new())
        .await
        .unwrap();
    assert_eq!(locale, "de-CH");
    assert_eq!(next_audit_id(&pool, "copy_one").await, 301);
    let events = event_names(&pool, "copy_one").await;
    assert_eq!(events.last().map(String::as_str), Some("restored"));
    // The source is untouched.
    assert_eq!(contents(&url, "source").await, original);
}

/// A writer adds one `positions` row and one `document_activity` row per
/// transaction while the export runs (the two tables are read at different
/// moments): one snapshot means the archive holds as many of one as of the
/// other.
#[tokio::test(flavor = "multi_thread")]
async fn export_is_one_snapshot_under_concurrent_writes() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    pool.provision(&valid_slug("busy"), "Busy").await.unwrap();
    seed(&pool, "busy", 2_000).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pairs = 0u64;
            loop {
                pool.with_tenant(&valid_slug("busy"), async |conn| {
                    conn.batch_execute(
                        "INSERT INTO positions (portfolio_id, symbol, quantity) \
                           VALUES ('00000000-0000-0000-0000-00000000000f', 'W', 1); \
                         INSERT INTO document_activity (document_id, action) \
                           VALUES ('00000000-0000-0000-0000-00000000000f', 'w')",
                    )
                    .await
                    .map_err(TenancyError::from)
                })
                .await
                .unwrap();
                pairs += 1;
                // (RunQueryDsl::load would shadow AtomicBool::load.)
                if std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Relaxed)
                {
                    break;
                }
            }
            pairs
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut exports = Vec::new();
    for i in 0..3 {
        let path = dir.path().join(format!("busy{i}"));
        exports.push(
            pool.export_tenant(&valid_slug("busy"), &path)
                .await
                .unwrap()
                .manifest,
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pairs = writer.await.unwrap();
    assert!(pairs > 0);
    for m in exports {
        let rows = |name: &str| m.tables.iter().find(|t| t.name == name).unwrap().rows;
        // seed: 2,000 positions and 5 activity rows.
        assert_eq!(rows("positions") - 2_000, rows("document_activity") - 5);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_into_existing_tenant_is_refused_unless_replace() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    let source = pool.provision(&valid_slug("keep"), "Keep").await.unwrap();
    seed(&pool, "keep", 50).await;
    let original = contents(&url, "keep").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("keep");
    pool.export_tenant(&valid_slug("keep"), &archive)
        .await
        .unwrap();

    // Refused: nothing changes.
    pool.with_tenant(&valid_slug("keep"), async |conn| {
        conn.batch_execute("DELETE FROM positions; INSERT INTO roles (name) VALUES ('new')")
            .await
            .map_err(TenancyError::from)
    })
    .await
    .unwrap();
    let changed = contents(&url, "keep").await;
    assert_ne!(changed, original);
    let err = pool
        .restore_tenant(&archive, &valid_slug("keep"), RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TenancyError::RestoreTargetExists(ref s) if s == "keep"),
        "{err:?}"
    );
    assert_eq!(err.code(), "restore_target_exists");
    assert_eq!(contents(&url, "keep").await, changed);

    // Asked for: same tenant (id kept), data replaced by the archive's.
    let report = pool
        .restore_tenant(&archive, &valid_slug("keep"), replacing())
        .await
        .unwrap();
    assert!(!report.created);
    assert_eq!(report.tenant.id, source.id);
    assert_eq!(contents(&url, "keep").await, original);
    assert_eq!(next_audit_id(&pool, "keep").await, 51);
    delete_audit_probe(&url, "keep").await;
    assert_eq!(contents(&url, "keep").await, original);

    // A suspended tenant is replaced and stays suspended.
    pool.suspend(&valid_slug("keep"), "maintenance", None)
        .await
        .unwrap();
    let report = pool
        .restore_tenant(&archive, &valid_slug("keep"), replacing())
        .await
        .unwrap();
    assert_eq!(report.tenant.status, TenantStatus::Suspended);
}

/// Restore over an existing tenant.
fn replacing() -> RestoreOptions {
    RestoreOptions {
        replace_existing: true,
        ..Default::default()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn write_manifest(archive: &Path, manifest: &BackupManifest) {
    tokio::fs::write(
        archive.join("manifest.json"),
        serde_json::to_vec(manifest).unwrap(),
    )
    .await
    .unwrap();
}

async fn copy_dir(from: &Path, to: &Path) {
    tokio::fs::create_dir_all(to).await.unwrap();
    let mut entries = tokio::fs::read_dir(from).await.unwrap();
    while let Some(e) = entries.next_entry().await.unwrap() {
        tokio::fs::copy(e.path(), to.join(e.file_name()))
            .await
            .unwrap();
    }
}

async fn assert_no_tenant(pool: &TenantPool, url: &str, slug: &str) {
    assert!(matches!(
        pool.tenant(&valid_slug(slug)).await,
        Err(TenancyError::NotFound(_))
    ));
    assert_eq!(
        admin_count(
            url,
            &format!("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'tenant_{slug}'")
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_archives_are_refused_with_typed_errors() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    pool.provision(&valid_slug("orig"), "Orig").await.unwrap();
    seed(&pool, "orig", 20).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let manifest = pool
        .export_tenant(&valid_slug("orig"), &good)
        .await
        .unwrap()
        .manifest;

    // Exporting over an existing archive is refused.
    assert!(matches!(
        pool.export_tenant(&valid_slug("orig"), &good).await,
        Err(TenancyError::BackupIo { .. })
    ));
    // No manifest (an interrupted export).
    let empty = dir.path().join("empty");
    tokio::fs::create_dir_all(&empty).await.unwrap();
    assert!(matches!(
        pool.restore_tenant(&empty, &valid_slug("fresh"), RestoreOptions::default())
            .await,
        Err(TenancyError::BackupIo { .. })
    ));

    // Another template version: refused before anything is created.
    let old = dir.path().join("old");
    copy_dir(&good, &old).await;
    let mut m = manifest.clone();
    m.template_version = "2000-01-01-000000_old".into();
    write_manifest(&old, &m).await;
    let err = pool
        .restore_tenant(&old, &valid_slug("fresh"), RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TenancyError::BackupIncompatible { ref archive, .. } if archive == "2000-01-01-000000_old"),
        "{err:?}"
    );
    assert_eq!(err.code(), "backup_incompatible");
    assert_no_tenant(&pool, &url, "fresh").await;

    // A data file changed after export: its checksum no longer matches.
    let corrupt = dir.path().join("corrupt");
    copy_dir(&good, &corrupt).await;
    let users = manifest.tables.iter().find(|t| t.name == "users").unwrap();
    let path = corrupt.join(&users.file);
    let text = tokio::fs::read_to_string(&path).await.unwrap();
    tokio::fs::write(&path, text.replace("ada@x.test", "eve@x.test"))
        .await
        .unwrap();
    assert!(matches!(
        pool.restore_tenant(&corrupt, &valid_slug("fresh"), RestoreOptions::default())
            .await,
        Err(TenancyError::BackupInvalid(_))
    ));
    assert_no_tenant(&pool, &url, "fresh").await;

    // A manifest pointing outside the archive.
    let escape = dir.path().join("escape");
    copy_dir(&good, &escape).await;
    let mut m = manifest.clone();
    m.tables[0].file = "../good/000_roles.copy".into();
    write_manifest(&escape, &m).await;
    assert!(matches!(
        pool.restore_tenant(&escape, &valid_slug("fresh"), RestoreOptions::default())
            .await,
        Err(TenancyError::BackupInvalid(_))
    ));

    // A consistent-looking archive whose data breaks a constraint (duplicate
    // keys): the load fails inside its transaction and the tenant created
    // for it is removed again, so the restore can be retried.
    let dup = dir.path().join("dup");
    copy_dir(&good, &dup).await;
    let mut m = manifest.clone();
    let roles = m.tables.iter_mut().find(|t| t.name == "roles").unwrap();
    let path = dup.join(&roles.file);
    let text = tokio::fs::read(&path).await.unwrap();
    let doubled = [text.clone(), text].concat();
    tokio::fs::write(&path, &doubled).await.unwrap();
    roles.rows *= 2;
    roles.bytes = doubled.len() as u64;
    roles.sha256 = sha256_hex(&doubled);
    write_manifest(&dup, &m).await;
    let err = pool
        .restore_tenant(&dup, &valid_slug("fresh"), RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TenancyError::CopyDatabase(ref msg) if msg.contains("duplicate key")),
        "{err:?}"
    );
    assert_no_tenant(&pool, &url, "fresh").await;
    // ... and it can: the good archive restores under the same slug.
    pool.restore_tenant(&good, &valid_slug("fresh"), RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(contents(&url, "fresh").await, contents(&url, "orig").await);

    // Invalid target slugs never reach SQL (no TenantSlug can name one, so
    // no restore can be asked for); purged tenants are refused.
    assert!(matches!(
        rampart_tenancy::TenantSlug::parse("x; drop"),
        Err(TenancyError::InvalidSlug { .. })
    ));
    pool.deactivate(&valid_slug("orig"), None, None)
        .await
        .unwrap();
    pool.purge(&valid_slug("orig"), true, None).await.unwrap();
    assert!(matches!(
        pool.export_tenant(&valid_slug("orig"), dir.path().join("purged"))
            .await,
        Err(TenancyError::Purged(_))
    ));
}

/// The whole-database procedure of the README: roles with `pg_dumpall
/// --roles-only`, data with `pg_dump -Fc --lock-wait-timeout`, restored on
/// another server with `pg_restore --jobs`; then every tenant's rows are
/// compared and routing is exercised on the restored database.
#[tokio::test(flavor = "multi_thread")]
async fn whole_database_pg_dump_and_pg_restore() {
    // pg_dump holds one lock per table until it ends: many tenant schemas
    // need max_locks_per_transaction raised (see the README's formula).
    let source = PgServer::start_with(PgOptions {
        settings: vec![("max_locks_per_transaction".into(), "256".into())],
        ..PgOptions::default()
    })
    .unwrap();
    admin_exec(&source.url("postgres"), "CREATE DATABASE rampart").await;
    let url = source.url("rampart");
    assert_eq!(
        admin_texts(
            &url,
            "SELECT current_setting('max_locks_per_transaction') AS t"
        )
        .await,
        ["256"]
    );
    let pool = pool_with(&url, Default::default()).await;
    let slugs = ["alpha", "bravo", "charlie"];
    let mut before = BTreeMap::new();
    for (i, slug) in slugs.iter().enumerate() {
        pool.provision(&valid_slug(slug), slug).await.unwrap();
        seed(&pool, slug, 10 * (i + 1)).await;
        before.insert(*slug, contents(&url, slug).await);
    }
    let tables = admin_count(
        &url,
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname LIKE 'tenant\\_%' AND c.relkind = 'r'",
    )
    .await;
    println!(
        "{tables} tenant tables in {} schemas (incl. the template)",
        slugs.len() + 1
    );

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("rampart.dump");
    let roles = dir.path().join("roles.sql");

    // A table locked by someone else (a migration, say): pg_dump gives up
    // after --lock-wait-timeout instead of queueing behind it.
    let mut locker = AsyncPgConnection::establish(&url).await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE tenant_bravo.users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let dump_args = [
        "--format=custom".to_owned(),
        "--lock-wait-timeout=2s".to_owned(),
        format!("--file={}", dump.display()),
        "rampart".to_owned(),
    ];
    let err = tokio::task::block_in_place(|| source.run_tool("pg_dump", &dump_args)).unwrap_err();
    assert!(err.to_string().contains("lock"), "{err}");
    locker.batch_execute("ROLLBACK").await.unwrap();

    tokio::task::block_in_place(|| {
        source.run_tool(
            "pg_dumpall",
            [
                "--roles-only".to_owned(),
                format!("--file={}", roles.display()),
            ],
        )
    })
    .unwrap();
    tokio::task::block_in_place(|| source.run_tool("pg_dump", &dump_args)).unwrap();

    // Another server, as after losing the first one.
    let target = PgServer::start().unwrap();
    // `CREATE ROLE postgres` fails there (it exists); everything else applies.
    tokio::task::block_in_place(|| {
        target.run_tool(
            "psql",
            [
                "--quiet".to_owned(),
                format!("--file={}", roles.display()),
                "postgres".to_owned(),
            ],
        )
    })
    .unwrap();
    admin_exec(&target.url("postgres"), "CREATE DATABASE rampart").await;
    tokio::task::block_in_place(|| {
        target.run_tool(
            "pg_restore",
            [
                "--jobs=2".to_owned(),
                "--exit-on-error".to_owned(),
                "--dbname=rampart".to_owned(),
                dump.display().to_string(),
            ],
        )
    })
    .unwrap();

    let restored_url = target.url("rampart");
    for slug in slugs {
        assert_eq!(contents(&restored_url, slug).await, before[slug], "{slug}");
    }
    // The restored database serves: routing, identity sequences, new tenants.
    let restored = pool_with(&restored_url, Default::default()).await;
    assert_eq!(restored.list().await.unwrap().len(), slugs.len());
    assert_eq!(next_audit_id(&restored, "charlie").await, 31);
    let denied = restored
        .with_tenant(&valid_slug("alpha"), async |conn| {
            conn.batch_execute("SELECT * FROM tenant_bravo.users")
                .await
                .map_err(TenancyError::from)
        })
        .await
        .unwrap_err();
    assert!(denied.is_permission_denied(), "{denied:?}");
    restored
        .provision(&valid_slug("delta"), "Delta")
        .await
        .unwrap();
    seed(&restored, "delta", 5).await;
    // A per-tenant archive of the restored database restores on it too.
    let archive = dir.path().join("alpha");
    restored
        .export_tenant(&valid_slug("alpha"), &archive)
        .await
        .unwrap();
    restored
        .restore_tenant(
            &archive,
            &valid_slug("alpha_copy"),
            RestoreOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(contents(&restored_url, "alpha_copy").await, before["alpha"]);

    drop((pool, restored));
    target.shutdown().unwrap();
    source.shutdown().unwrap();
}

/// Figures for the README (not a test of speed: nothing is asserted about
/// time). `cargo test -p rampart-tenancy --test tests backup_figures --
/// --ignored --nocapture`; `RAMPART_BACKUP_ROWS` sets the rows per table.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn backup_figures() {
    let n: usize = std::env::var("RAMPART_BACKUP_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    pool.provision(&valid_slug("big"), "Big").await.unwrap();
    seed(&pool, "big", n).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big");
    let started = Instant::now();
    let export = pool
        .export_tenant(&valid_slug("big"), &archive)
        .await
        .unwrap();
    let export_time = started.elapsed();
    let started = Instant::now();
    let report = pool
        .restore_tenant(&archive, &valid_slug("big_copy"), RestoreOptions::default())
        .await
        .unwrap();
    let restore_time = started.elapsed();
    let started = Instant::now();
    pool.restore_tenant(&archive, &valid_slug("big_copy"), replacing())
        .await
        .unwrap();
    let replace_time = started.elapsed();
    println!(
        "FIGURES rows={} bytes={} export={export_time:.2?} restore(new tenant)={restore_time:.2?} \
         restore(replace)={replace_time:.2?}",
        report.rows, export.bytes
    );
}
