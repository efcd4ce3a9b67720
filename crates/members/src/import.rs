//! Bulk member import from CSV: a preview that validates every row and
//! records the plan (with the state of every member it would touch), then a
//! commit that applies exactly that plan in one transaction, or nothing.
use rampart_auth::directory;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::member::{MemberInput, upsert_in};
use crate::schema::import_previews;
use crate::{Members, MembersError, RowProblem};

/// Most data rows one file may hold.
pub const MAX_IMPORT_ROWS: usize = 5_000;
/// How long a preview can be committed.
const PREVIEW_TTL_MINUTES: i64 = 60;

/// What the commit would do with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    /// A new member.
    Create,
    /// An existing member's name or role changes.
    Update,
    /// Already exactly so.
    Unchanged,
    /// Invalid; see the problems.
    Refused,
}

/// The member a row matches, as seen at preview time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingMember {
    /// User id.
    pub id: UserId,
    /// Name then.
    pub name: String,
    /// Role then.
    pub role: String,
}

/// One row of the file and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRow {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The row as read (trimmed and lowercased where that applies, when valid).
    pub name: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: String,
    /// The verdict.
    pub action: ImportAction,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<RowProblem>,
    /// The member it matches, for updates and unchanged rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<ExistingMember>,
}

/// A stored preview.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPreview {
    /// Pass to the commit.
    pub id: Uuid,
    /// SHA-256 of the plan, hex; the commit must present it.
    pub digest: String,
    /// Rows to create.
    pub created: usize,
    /// Rows to update.
    pub updated: usize,
    /// Rows already so.
    pub unchanged: usize,
    /// Rows refused (a preview with any cannot be committed).
    pub refused: usize,
    /// Every row, in file order.
    pub rows: Vec<ImportRow>,
    /// The preview can be committed until then.
    pub expires_at: DateTime<Utc>,
}

/// What a commit applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCommit {
    /// The preview.
    pub id: Uuid,
    /// Members created.
    pub created: usize,
    /// Members updated.
    pub updated: usize,
    /// Rows that needed nothing.
    pub unchanged: usize,
}

fn digest_of(rows: &[ImportRow]) -> Result<String, MembersError> {
    let json = serde_json::to_vec(rows)
        .map_err(|e| MembersError::invalid("row", format!("cannot encode the plan: {e}")))?;
    Ok(hex::encode(Sha256::digest(&json)))
}

/// Parses the file into rows; problems of the file as a whole are errors.
///
/// Public only for the fuzz targets in `fuzz/` (no database involved).
#[doc(hidden)]
pub fn parse_rows(csv_text: &str) -> Result<Vec<ImportRow>, MembersError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| MembersError::invalid("header", format!("unreadable header: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(ci_name), Some(ci_email), Some(ci_role)) =
        (column("name"), column("email"), column("role"))
    else {
        return Err(MembersError::invalid(
            "header",
            "the first line must name the columns name, email and role",
        ));
    };
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if rows.len() >= MAX_IMPORT_ROWS {
            return Err(MembersError::invalid(
                "file",
                format!("at most {MAX_IMPORT_ROWS} rows per file"),
            ));
        }
        let fallback_line = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(2);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(fallback_line, |p| p.line().max(fallback_line));
                rows.push(refused_row(line, "", "", "", "row", "unreadable CSV row"));
                continue;
            }
        };
        // The reader counts `\n` only; a file with bare `\r` line ends would
        // put every row on line 1 (found by the `csv_import` fuzz target).
        let line = record
            .position()
            .map_or(fallback_line, |p| p.line().max(fallback_line));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: usize| record.get(i).unwrap_or("").to_owned();
        let input = MemberInput {
            name: get(ci_name),
            email: get(ci_email),
            role: get(ci_role),
        };
        let mut row = ImportRow {
            line,
            name: input.name.clone(),
            email: input.email.clone(),
            role: input.role.clone(),
            action: ImportAction::Create,
            problems: Vec::new(),
            existing: None,
        };
        if record.len() != headers.len() {
            row.problems.push(RowProblem {
                field: "row".into(),
                message: format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
        }
        match input.normalized() {
            Ok(n) => {
                row.name = n.name;
                row.email = n.email;
                row.role = n.role;
            }
            Err(problems) => row.problems.extend(problems),
        }
        if !row.problems.is_empty() {
            row.action = ImportAction::Refused;
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(MembersError::invalid("file", "no data rows"));
    }
    // A second row for the same email would make the outcome order-dependent.
    let mut first: HashMap<String, u64> = HashMap::new();
    for row in &mut rows {
        if row.action == ImportAction::Refused {
            continue;
        }
        match first.get(&row.email) {
            Some(line) => {
                row.action = ImportAction::Refused;
                row.problems.push(RowProblem {
                    field: "email".into(),
                    message: format!("duplicates line {line}"),
                });
            }
            None => {
                first.insert(row.email.clone(), row.line);
            }
        }
    }
    Ok(rows)
}

fn refused_row(
    line: u64,
    name: &str,
    email: &str,
    role: &str,
    field: &str,
    msg: &str,
) -> ImportRow {
    ImportRow {
        line,
        name: name.to_owned(),
        email: email.to_owned(),
        role: role.to_owned(),
        action: ImportAction::Refused,
        problems: vec![RowProblem {
            field: field.to_owned(),
            message: msg.to_owned(),
        }],
        existing: None,
    }
}

async fn existing_by_email(
    conn: &mut AsyncPgConnection,
    emails: &[String],
    for_update: bool,
) -> Result<HashMap<String, ExistingMember>, MembersError> {
    let accounts = directory::accounts_by_email(conn, emails, for_update).await?;
    Ok(accounts
        .into_iter()
        .map(|(email, a)| {
            let existing = ExistingMember {
                id: a.id,
                name: a.display_name,
                role: a.role,
            };
            (email, existing)
        })
        .collect())
}

fn classify(rows: &mut [ImportRow], existing: &HashMap<String, ExistingMember>) {
    for row in rows.iter_mut() {
        if row.action == ImportAction::Refused {
            continue;
        }
        row.existing = existing.get(&row.email).cloned();
        row.action = match &row.existing {
            None => ImportAction::Create,
            Some(e) if e.role == "api_user" => {
                row.problems.push(RowProblem {
                    field: "email".into(),
                    message: "belongs to a machine client".into(),
                });
                row.existing = None;
                ImportAction::Refused
            }
            Some(e) if e.name == row.name && e.role == row.role => ImportAction::Unchanged,
            Some(_) => ImportAction::Update,
        };
    }
}

fn count(rows: &[ImportRow], action: ImportAction) -> usize {
    rows.iter().filter(|r| r.action == action).count()
}

/// A stored preview as a commit reads it (`expired` by the database's clock).
#[derive(Queryable)]
struct StoredPreview {
    id: Uuid,
    digest: String,
    plan: serde_json::Value,
    committed: bool,
    expired: bool,
}

impl Members {
    /// Parses and validates `csv_text` (columns `name,email,role`, any
    /// order), decides per row what a commit would do, stores the plan and
    /// returns it. Nothing about members changes. A file-level problem (no
    /// header, no rows, too many rows) is an error; row problems are reported
    /// row by row in the preview.
    pub async fn preview_import(
        &self,
        tenant: &TenantSlug,
        csv_text: &str,
        created_by: &str,
    ) -> Result<ImportPreview, MembersError> {
        let mut rows = parse_rows(csv_text)?;
        let emails: Vec<String> = rows
            .iter()
            .filter(|r| r.action != ImportAction::Refused)
            .map(|r| r.email.clone())
            .collect();
        let created_by = created_by.to_owned();
        self.pool
            .with_tenant(tenant, async |conn| {
                let existing = existing_by_email(conn, &emails, false).await?;
                classify(&mut rows, &existing);
                let digest = digest_of(&rows)?;
                let plan = serde_json::to_value(&rows).map_err(|e| {
                    MembersError::invalid("row", format!("cannot encode the plan: {e}"))
                })?;
                // The database's clock, as the commit's expiry check uses.
                let db_now: DateTime<Utc> = diesel::select(now.into_sql::<Timestamptz>())
                    .get_result(conn)
                    .await?;
                let (id, expires_at): (Uuid, DateTime<Utc>) =
                    diesel::insert_into(import_previews::table)
                        .values((
                            import_previews::digest.eq(&digest),
                            import_previews::plan.eq(&plan),
                            import_previews::created_by.eq(&created_by),
                            import_previews::expires_at
                                .eq(db_now + chrono::Duration::minutes(PREVIEW_TTL_MINUTES)),
                        ))
                        .returning((import_previews::id, import_previews::expires_at))
                        .get_result(conn)
                        .await?;
                Ok(ImportPreview {
                    id,
                    digest,
                    created: count(&rows, ImportAction::Create),
                    updated: count(&rows, ImportAction::Update),
                    unchanged: count(&rows, ImportAction::Unchanged),
                    refused: count(&rows, ImportAction::Refused),
                    rows: std::mem::take(&mut rows),
                    expires_at,
                })
            })
            .await
    }

    /// Applies exactly the previewed plan in one transaction: refused when
    /// the preview is unknown, expired, already committed, has refused rows,
    /// when `digest` is not the preview's, or when any member it touches
    /// changed since (then nothing is applied; preview again).
    pub async fn commit_import(
        &self,
        tenant: &TenantSlug,
        id: Uuid,
        digest: &str,
    ) -> Result<ImportCommit, MembersError> {
        let digest = digest.to_owned();
        self.pool
            .with_tenant(tenant, async |conn| {
                let stored: StoredPreview = import_previews::table
                    .find(id)
                    .select((
                        import_previews::id,
                        import_previews::digest,
                        import_previews::plan,
                        import_previews::committed_at.is_not_null(),
                        import_previews::expires_at.le(now),
                    ))
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or(MembersError::NotFound("import preview"))?;
                if stored.committed {
                    return Err(MembersError::AlreadyCommitted);
                }
                if stored.expired {
                    return Err(MembersError::Expired);
                }
                let rows: Vec<ImportRow> = serde_json::from_value(stored.plan)
                    .map_err(|_| MembersError::DigestMismatch)?;
                // The stored plan must still be the one that was hashed and shown.
                if stored.digest != digest || digest_of(&rows)? != digest {
                    return Err(MembersError::DigestMismatch);
                }
                let refused = count(&rows, ImportAction::Refused);
                if refused > 0 {
                    return Err(MembersError::HasRefusedRows(refused));
                }
                // No member the plan touches may change until we commit.
                directory::lock_accounts(conn).await?;
                let emails: Vec<String> = rows.iter().map(|r| r.email.clone()).collect();
                let current = existing_by_email(conn, &emails, true).await?;
                let stale: Vec<&str> = rows
                    .iter()
                    .filter(|r| current.get(&r.email) != r.existing.as_ref())
                    .map(|r| r.email.as_str())
                    .collect();
                if !stale.is_empty() {
                    return Err(MembersError::Stale(stale.join(", ")));
                }
                let mut report = ImportCommit {
                    id: stored.id,
                    created: 0,
                    updated: 0,
                    unchanged: 0,
                };
                for row in &rows {
                    let input = MemberInput {
                        name: row.name.clone(),
                        email: row.email.clone(),
                        role: row.role.clone(),
                    };
                    match row.action {
                        ImportAction::Create => {
                            upsert_in(conn, &input).await?;
                            report.created += 1;
                        }
                        ImportAction::Update => {
                            upsert_in(conn, &input).await?;
                            report.updated += 1;
                        }
                        ImportAction::Unchanged | ImportAction::Refused => report.unchanged += 1,
                    }
                }
                diesel::update(import_previews::table.find(id))
                    .set(import_previews::committed_at.eq(now))
                    .execute(conn)
                    .await?;
                Ok(report)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_are_judged_one_by_one() {
        let rows = parse_rows(
            "Email,Name,Role\nada@x.io,Ada,trader\nbad,Bob,trader\nada@x.io,Ada2,viewer\n,,\nc@x.io,,boss\nd@x.io,D\n",
        )
        .unwrap();
        let actions: Vec<_> = rows.iter().map(|r| (r.line, r.action)).collect();
        assert_eq!(
            actions,
            vec![
                (2, ImportAction::Create),
                (3, ImportAction::Refused),
                (4, ImportAction::Refused),
                (6, ImportAction::Refused),
                (7, ImportAction::Refused),
            ]
        );
        assert_eq!(rows[3].problems.len(), 2);
        assert!(parse_rows("a,b\n1,2\n").is_err());
        assert!(parse_rows("name,email,role\n").is_err());
    }

    /// Found by the `csv_import` fuzz target: with bare `\r` line ends the
    /// CSV reader counts no lines, and every row was reported on line 1 (the
    /// header's).
    #[test]
    fn lines_are_right_with_carriage_return_line_ends() {
        let rows =
            parse_rows("name,email,role\rAda,ada@x.io,trader\rBob,bob@x.io,viewer\r").unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
    }
}
