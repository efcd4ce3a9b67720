//! Tables the tenant role may only append to: the audit log. The tenant
//! role, which every request runs as, owns the other tables of its schema
//! (the schema itself is the platform role's, with `USAGE` and `CREATE`
//! granted, so the tenant role cannot drop or rename what it does not own);
//! these
//! tables (and their trigger functions) belong to the platform role instead,
//! and the tenant role holds `SELECT` and `INSERT` on them only — no
//! `UPDATE`, `DELETE` or `TRUNCATE`, and, not being the owner, it cannot
//! drop or disable their triggers or replace the trigger functions.
//!
//! Migrations run as the tenant role, so [`unlock`] hands the tables back
//! for the migration and [`lock_down`] takes them again, both inside the
//! migration's transaction.
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

use crate::TenancyError;
use crate::slug::quote_ident;

/// Append-only tables and their trigger functions (schema-relative).
const TABLES: &[(&str, &str)] = &[("audit_log", "audit_log_append_only()")];

/// As the platform role: the schema and its append-only tables become the
/// platform role's; `role` keeps `USAGE` and `CREATE` on the schema and
/// `SELECT` and `INSERT` on those tables. (A schema's owner may drop any
/// table in it, so owning the table alone would not be enough; schemas
/// provisioned before this owned by the tenant role are taken over here,
/// on their next migration.)
pub(crate) async fn lock_down(
    conn: &mut AsyncPgConnection,
    schema: &str,
    role: &str,
) -> Result<(), TenancyError> {
    let (s, r) = (quote_ident(schema), quote_ident(role));
    let mut sql = format!(
        "RESET ROLE; ALTER SCHEMA {s} OWNER TO CURRENT_USER; \
         GRANT USAGE, CREATE ON SCHEMA {s} TO {r};"
    );
    for (table, function) in TABLES {
        let t = quote_ident(table);
        sql.push_str(&format!(
            "ALTER TABLE {s}.{t} OWNER TO CURRENT_USER; \
             ALTER FUNCTION {s}.{function} OWNER TO CURRENT_USER; \
             REVOKE ALL ON {s}.{t} FROM {r}; \
             GRANT SELECT, INSERT ON {s}.{t} TO {r};"
        ));
    }
    // raw SQL: ownership and grants (DDL)
    conn.batch_execute(&sql).await?;
    Ok(())
}

/// Whether a migration's SQL names an append-only table or its function
/// (and so needs them [`unlock`]ed).
pub(crate) fn touched_by(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    TABLES.iter().any(|(table, function)| {
        let function = function.trim_end_matches("()");
        sql.contains(table) || sql.contains(function)
    })
}

/// As the platform role: gives the append-only tables of `schema` back to
/// `role` for a migration ([`lock_down`] again afterwards).
pub(crate) async fn unlock(
    conn: &mut AsyncPgConnection,
    schema: &str,
    role: &str,
) -> Result<(), TenancyError> {
    let (s, r) = (quote_ident(schema), quote_ident(role));
    // A tenant behind on its migrations may not have them yet.
    let mut sql = String::from("RESET ROLE; DO $$ BEGIN ");
    for (table, function) in TABLES {
        let t = quote_ident(table);
        sql.push_str(&format!(
            "IF to_regclass('{s}.{t}') IS NOT NULL THEN \
               EXECUTE 'ALTER TABLE {s}.{t} OWNER TO {r}'; END IF; \
             IF to_regprocedure('{s}.{function}') IS NOT NULL THEN \
               EXECUTE 'ALTER FUNCTION {s}.{function} OWNER TO {r}'; END IF; "
        ));
    }
    sql.push_str("END $$;");
    // raw SQL: ownership (DDL)
    conn.batch_execute(&sql).await?;
    Ok(())
}
