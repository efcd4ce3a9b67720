//! Checks a crate's diesel `table!` definitions against a migrated database,
//! so a column added, renamed or dropped by a migration and not in
//! `schema.rs` fails a test instead of a query at run time.
//!
//! ```ignore
//! let select = diesel::debug_query::<Pg, _>(&tenants::table.select(tenants::all_columns));
//! schema_check::assert_columns(&url, "platform", &select.to_string()).await;
//! // or, for several tables:
//! let selects = rampart_testkit::all_columns_sql!(tenants, tenant_events);
//! schema_check::assert_tables(&url, "platform", &selects).await;
//! ```

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// The table and the columns named by the SQL diesel renders for
/// `table.select(table::all_columns)` (`SELECT "s"."t"."a", "s"."t"."b" FROM …`).
pub fn selected_columns(select_sql: &str) -> (String, Vec<String>) {
    let list = select_sql
        .strip_prefix("SELECT ")
        .and_then(|rest| rest.split(" FROM ").next())
        .unwrap_or_default();
    let mut table = String::new();
    let columns = list
        .split(", ")
        .map(|item| {
            let parts: Vec<&str> = item.split('.').map(|p| p.trim_matches('"')).collect();
            if let [.., t, _] = parts.as_slice() {
                table = (*t).to_owned();
            }
            parts.last().copied().unwrap_or_default().to_owned()
        })
        .collect();
    (table, columns)
}

#[derive(diesel::QueryableByName)]
struct ColumnName {
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// Panics unless the columns `select_sql` names (see [`selected_columns`])
/// are exactly those of the table in `schema`, in order.
pub async fn assert_columns(url: &str, schema: &str, select_sql: &str) {
    let (table, expected) = selected_columns(select_sql);
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let actual: Vec<String> = diesel::sql_query(
        "SELECT column_name::text AS column_name FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind::<Text, _>(schema)
    .bind::<Text, _>(&table)
    .load::<ColumnName>(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("columns of {schema}.{table}: {e}"))
    .into_iter()
    .map(|c| c.column_name)
    .collect();
    assert_eq!(
        expected, actual,
        "schema.rs and the migrations disagree on the columns of {schema}.{table}"
    );
}

/// [`assert_columns`] for each of `selects` (see [`all_columns_sql!`]).
pub async fn assert_tables(url: &str, schema: &str, selects: &[String]) {
    for select in selects {
        assert_columns(url, schema, select).await;
    }
}

/// The SQL of `table.select(table::all_columns)` for each diesel table
/// module named, as an array of strings for [`assert_tables`].
#[macro_export]
macro_rules! all_columns_sql {
    ($($table:ident),+ $(,)?) => {
        [$(
            ::diesel::debug_query::<::diesel::pg::Pg, _>(
                &::diesel::QueryDsl::select($table::table, $table::all_columns),
            )
            .to_string()
        ),+]
    };
}

/// The check of a crate whose tables live in tenant schemas: a fresh
/// database migrated by connecting a `TenantPool` of `$tenancy` (the path of
/// `rampart_tenancy`, or `crate` inside it), one tenant provisioned, then
/// [`assert_tables`] for the tenant tables in its schema and the platform
/// tables in `platform`.
///
/// ```ignore
/// assert_tenant_schema!(rampart_tenancy, [invitations, roles], [audit_leaves]);
/// ```
#[macro_export]
macro_rules! assert_tenant_schema {
    ($tenancy:path, [$($tenant:ident),* $(,)?], [$($platform:ident),* $(,)?]) => {{
        use $tenancy as tenancy;
        let fail = |e: &dyn ::std::fmt::Display| -> ! { panic!("schema check: {e}") };
        let db = $crate::fresh_database().await.unwrap_or_else(|e| fail(&e));
        let pool = tenancy::TenantPool::connect(tenancy::TenancyConfig::new(db.url.clone(), 4))
            .await
            .unwrap_or_else(|e| fail(&e));
        let slug = tenancy::TenantSlug::parse("schema_check").unwrap_or_else(|e| fail(&e));
        let tenant = pool
            .provision(&slug, "Schema check")
            .await
            .unwrap_or_else(|e| fail(&e));
        let tenant_tables: &[String] = &[$($crate::all_columns_sql!($tenant)[0].clone()),*];
        let platform_tables: &[String] = &[$($crate::all_columns_sql!($platform)[0].clone()),*];
        $crate::schema_check::assert_tables(&db.url, &tenant.schema_name, tenant_tables).await;
        $crate::schema_check::assert_tables(&db.url, "platform", platform_tables).await;
    }};
}
