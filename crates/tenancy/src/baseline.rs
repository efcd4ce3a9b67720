//! The baseline: the tenant template rendered from the catalog of a schema
//! migrated by the same runner as every tenant, applied to new tenants in one
//! batch, and a catalog fingerprint to prove the copy equals the template.
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::TenancyError;
use crate::migrations::{LEDGER_DDL, MigrationSet, applied_versions, apply};
use crate::slug::{quote_ident, quote_literal};

/// The template schema, migrated like a tenant and never served.
pub(crate) const TEMPLATE_SCHEMA: &str = "tenant_template";

/// The rendered template.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    /// DDL + seed data, unqualified, to run with search_path = the new schema.
    pub script: String,
    /// Catalog fingerprint of the template.
    pub fingerprint: String,
    /// Ledger rows the new schema gets.
    pub ledger_sql: String,
    /// Whether a schema made from `script` in this process matched
    /// `fingerprint`: the script is the same for every tenant but the names,
    /// so later provisionings skip the check, whose catalog scans grow with
    /// the number of tenants (at 1,000 tenants it was most of the 164 ms a
    /// provisioning took).
    pub verified: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    t: String,
}

#[derive(diesel::QueryableByName)]
struct IdentityCol {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(diesel::QueryableByName)]
struct MaxRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    m: Option<i64>,
}

/// Migrates the template schema (rebuilding it if it is ahead of or diverged
/// from `set`), then renders its baseline and fingerprint.
pub(crate) async fn prepare(
    conn: &mut AsyncPgConnection,
    set: &MigrationSet,
    role_prefix: &str,
) -> Result<Baseline, TenancyError> {
    let role = format!("{role_prefix}_template");
    conn.transaction::<_, TenancyError, _>(async |conn| {
        conn.batch_execute("SELECT pg_advisory_xact_lock(hashtext('rampart.template'))").await?;
        // raw SQL: a catalog query (pg_roles)
        let role_exists: Vec<TextRow> =
            diesel::sql_query("SELECT rolname::text AS t FROM pg_roles WHERE rolname = $1")
                .bind::<Text, _>(&role)
                .load(conn)
                .await?;
        if role_exists.is_empty() {
            conn.batch_execute(&format!("CREATE ROLE {r} NOLOGIN; GRANT {r} TO CURRENT_USER;", r = quote_ident(&role)))
                .await?;
        }
        let schema = quote_ident(TEMPLATE_SCHEMA);
        conn.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {r};\
             SELECT set_config('search_path', {s}, true);\
             SET LOCAL ROLE {r};",
            r = quote_ident(&role),
            s = quote_literal(TEMPLATE_SCHEMA),
        ))
        .await?;
        conn.batch_execute(LEDGER_DDL).await?;
        let applied = applied_versions(conn).await?;
        let known: Vec<&str> = set.migrations().iter().map(|m| m.version.as_str()).collect();
        let diverged = applied.iter().enumerate().any(|(i, v)| known.get(i) != Some(&v.as_str()));
        let applied = if diverged {
            // The template is ahead of or different from this build: rebuild it.
            conn.batch_execute(&format!(
                "RESET ROLE; DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {r}; \
                 SET LOCAL ROLE {r}; {LEDGER_DDL}",
                r = quote_ident(&role)
            ))
            .await?;
            Vec::new()
        } else {
            applied
        };
        apply(conn, set.pending(&applied)).await?;
        conn.batch_execute("RESET ROLE").await?;
        let script = render(conn).await?;
        let fingerprint = fingerprint(conn, TEMPLATE_SCHEMA).await?;
        let ledger_sql = render_ledger(set);
        Ok(Baseline {
            script,
            fingerprint,
            ledger_sql,
            verified: Default::default(),
        })
    })
    .await
}

fn render_ledger(set: &MigrationSet) -> String {
    let mut sql = String::from(LEDGER_DDL);
    if !set.migrations().is_empty() {
        let values: Vec<String> = set
            .migrations()
            .iter()
            .map(|m| format!("({})", quote_literal(&m.version)))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES {};",
            values.join(",")
        ));
    }
    sql
}

/// Renders the DDL of the schema on the search path (its names render
/// unqualified because it is the only schema there).
async fn render(conn: &mut AsyncPgConnection) -> Result<String, TenancyError> {
    const NS: &str = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())";
    const SKIP: &str = "'__diesel_schema_migrations'";
    let mut script = String::new();
    // Some catalog functions (pg_get_indexdef, pg_get_functiondef) qualify
    // names whatever the search path is: strip the template's qualifier.
    let qualifier = format!("{}.", quote_ident_if_needed(TEMPLATE_SCHEMA));
    let section =
        async |conn: &mut AsyncPgConnection, sql: String| -> Result<Vec<String>, TenancyError> {
            // raw SQL: catalog queries that render DDL
            let rows: Vec<TextRow> = diesel::sql_query(sql).load(conn).await?;
            Ok(rows
                .into_iter()
                .map(|r| r.t.replace(&qualifier, ""))
                .collect())
        };
    // One catalog query a section, one statement a row (ended as the
    // section says), in the order they must run.
    let sections = [
        // Enum types.
        (
            format!(
                "SELECT format('CREATE TYPE %I AS ENUM (%s);', t.typname, \
                   (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)) AS t \
                 FROM pg_type t WHERE t.typnamespace = {NS} AND t.typtype = 'e' ORDER BY t.oid"
            ),
            "\n",
        ),
        // Functions (their header is always schema-qualified: strip it).
        (
            format!(
                "SELECT pg_get_functiondef(p.oid) AS t FROM pg_proc p WHERE p.pronamespace = {NS} ORDER BY p.oid"
            ),
            ";\n",
        ),
        // Tables with columns, identity, defaults, NOT NULL. A table with a
        // column stored other than its type's default (STORAGE PLAIN: no TOAST
        // table) is created empty and given its columns and their storage in one
        // ALTER TABLE, because PostgreSQL decides whether a table needs a TOAST
        // table at the end of the statement that adds its columns (PostgreSQL 15
        // has no STORAGE clause in CREATE TABLE).
        (
            format!(
                "WITH col AS (SELECT c.oid, c.relname, a.attnum, a.attname, a.attstorage, ty.typstorage, \
                   format('%I %s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod), \
                   CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END, \
                   CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED' \
                        WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END, \
                   CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END) AS def \
                 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 JOIN pg_type ty ON ty.oid = a.atttypid \
                 LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
                 WHERE c.relnamespace = {NS} AND c.relkind = 'r' AND c.relname <> {SKIP}) \
                 SELECT CASE WHEN bool_or(attstorage <> typstorage) \
                   THEN format('CREATE TABLE %I (); ALTER TABLE %I %s, %s;', relname, relname, \
                     string_agg('ADD COLUMN ' || def, ', ' ORDER BY attnum), \
                     string_agg(CASE WHEN attstorage <> typstorage THEN format('ALTER COLUMN %I SET STORAGE %s', attname, \
                       CASE attstorage WHEN 'p' THEN 'PLAIN' WHEN 'm' THEN 'MAIN' WHEN 'e' THEN 'EXTERNAL' ELSE 'EXTENDED' END) END, \
                       ', ' ORDER BY attnum)) \
                   ELSE format('CREATE TABLE %I (%s);', relname, string_agg(def, ', ' ORDER BY attnum)) END AS t \
                 FROM col GROUP BY oid, relname ORDER BY oid"
            ),
            "\n",
        ),
        // Constraints: keys and checks first, foreign keys last.
        (
            format!(
                "SELECT format('ALTER TABLE %I ADD CONSTRAINT %I %s;', c.relname, k.conname, pg_get_constraintdef(k.oid)) AS t \
                 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
                 WHERE k.connamespace = {NS} AND c.relname <> {SKIP} AND k.contype IN ('p', 'u', 'c', 'x', 'f') \
                 ORDER BY (k.contype = 'f'), k.oid"
            ),
            "\n",
        ),
        // Indexes that no constraint owns.
        (
            format!(
                "SELECT pg_get_indexdef(i.indexrelid) || ';' AS t FROM pg_index i \
                 JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid \
                 WHERE ic.relnamespace = {NS} AND tc.relname <> {SKIP} \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid \
                                   AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) \
                 ORDER BY i.indexrelid"
            ),
            "\n",
        ),
        // Views, then triggers.
        (
            format!(
                "SELECT format('CREATE VIEW %I AS %s', c.relname, pg_get_viewdef(c.oid)) AS t FROM pg_class c \
                 WHERE c.relnamespace = {NS} AND c.relkind = 'v' ORDER BY c.oid"
            ),
            "\n",
        ),
        (
            format!(
                "SELECT pg_get_triggerdef(t.oid) || ';' AS t FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE c.relnamespace = {NS} AND NOT t.tgisinternal ORDER BY t.oid"
            ),
            "\n",
        ),
    ];
    for (sql, end) in sections {
        for stmt in section(conn, sql).await? {
            script.push_str(&stmt);
            script.push_str(end);
        }
    }
    // Seed data (rows the migrations inserted), as one statement per table.
    let tables = section(
        conn,
        format!(
            "SELECT c.relname::text AS t FROM pg_class c WHERE c.relnamespace = {NS} AND c.relkind = 'r' \
             AND c.relname <> {SKIP} ORDER BY c.oid"
        ),
    )
    .await?;
    // raw SQL: a catalog query (identity columns)
    let identity: Vec<IdentityCol> = diesel::sql_query(format!(
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = {NS} AND a.attidentity <> '' AND NOT a.attisdropped"
    ))
    .load(conn)
    .await?;
    for table in tables {
        let t = quote_ident(&table);
        let rows = section(
            conn,
            format!(
                "SELECT format('INSERT INTO %I OVERRIDING SYSTEM VALUE SELECT * FROM jsonb_populate_recordset(NULL::%I, %L::jsonb);', \
                 {lit}::text, {lit}::text, jsonb_agg(x)) AS t FROM {t} x HAVING count(*) > 0",
                lit = quote_literal(&table)
            ),
        )
        .await?;
        for stmt in rows {
            script.push_str(&stmt);
            script.push('\n');
            for col in identity.iter().filter(|c| c.table_name == table) {
                // raw SQL: the table is only known at run time (any template table)
                let max: MaxRow = diesel::sql_query(format!(
                    "SELECT max({})::bigint AS m FROM {t}",
                    quote_ident(&col.column_name)
                ))
                .get_result(conn)
                .await?;
                if let Some(m) = max.m {
                    script.push_str(&format!(
                        "SELECT setval(pg_get_serial_sequence({}, {}), {m});\n",
                        quote_literal(&t),
                        quote_literal(&col.column_name)
                    ));
                }
            }
        }
    }
    Ok(script)
}

fn quote_ident_if_needed(ident: &str) -> String {
    if ident
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        ident.to_owned()
    } else {
        quote_ident(ident)
    }
}

/// A hash of everything in `schema` that defines its shape: columns (type,
/// nullability, identity, default, storage), constraints, indexes, triggers,
/// functions, views, other relations, and types. Must run
/// inside a transaction; it sets the search path to `schema` so that
/// definitions render unqualified and two schemas can be compared.
pub(crate) async fn fingerprint(
    conn: &mut AsyncPgConnection,
    schema: &str,
) -> Result<String, TenancyError> {
    // raw SQL: set_config
    diesel::sql_query("SELECT set_config('search_path', $1, true)")
        .bind::<Text, _>(quote_ident_if_needed(schema))
        .execute(conn)
        .await?;
    // raw SQL: a catalog query
    let row: TextRow = diesel::sql_query(FINGERPRINT_SQL)
        .bind::<Text, _>(schema)
        .get_result(conn)
        .await?;
    Ok(row.t)
}

const FINGERPRINT_SQL: &str = "\
WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
cols AS (SELECT string_agg(format('%s.%s:%s:%s:%s:%s:%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
           a.attnotnull, a.attidentity, coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attstorage), ',' ORDER BY c.relname, a.attnum) s
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE c.relnamespace = (SELECT oid FROM n) AND c.relkind IN ('r', 'p', 'v', 'm')
           AND c.relname <> '__diesel_schema_migrations'),
cons AS (SELECT string_agg(format('%s.%s:%s', c.relname, k.conname, pg_get_constraintdef(k.oid)), ',' ORDER BY c.relname, k.conname) s
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
         WHERE k.connamespace = (SELECT oid FROM n) AND c.relname <> '__diesel_schema_migrations'),
idx AS (SELECT string_agg(replace(pg_get_indexdef(i.indexrelid), $1 || '.', ''), ',' ORDER BY ic.relname) s
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
        WHERE ic.relnamespace = (SELECT oid FROM n) AND tc.relname <> '__diesel_schema_migrations'),
trg AS (SELECT string_agg(replace(pg_get_triggerdef(t.oid), $1 || '.', ''), ',' ORDER BY t.tgname) s
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = (SELECT oid FROM n) AND NOT t.tgisinternal),
fns AS (SELECT string_agg(format('%s(%s):%s', p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)), ',' ORDER BY p.proname) s
        FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM n)),
vws AS (SELECT string_agg(format('%s:%s', c.relname, pg_get_viewdef(c.oid)), ',' ORDER BY c.relname) s
        FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM n) AND c.relkind IN ('v', 'm')),
rels AS (SELECT string_agg(format('%s:%s', c.relname, c.relkind), ',' ORDER BY c.relname) s
         FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM n) AND c.relname NOT LIKE '\\_\\_diesel%'),
typs AS (SELECT string_agg(format('%s:%s', t.typname, t.typtype), ',' ORDER BY t.typname) s
         FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM n) AND t.typtype IN ('e', 'd', 'r', 'm'))
SELECT md5(concat_ws('|', cols.s, cons.s, idx.s, trg.s, fns.s, vws.s, rels.s, typs.s)) AS t
FROM cols, cons, idx, trg, fns, vws, rels, typs";
