//! EPV valuation cases (seed 002, EPV Valuation Pro): one case per company
//! analysis, its inputs valued by [`rampart_valuation::value`]. Every change
//! is a new version holding the inputs and the valuation computed from
//! them; versions can be compared field by field. A case is shared within
//! the tenant like a portfolio (view, comment, edit, admin; optional
//! expiry), carries a comment thread and analysis results attached to a
//! version (JSON documents from external tools or agents, with their
//! source), keeps an activity trail with before/after values, exports as
//! JSON or CSV, and imports from the browser app's `localStorage` export.
//!
//! Access is resolved like a portfolio's ([`Access`]): the owner has
//! everything, a share grants its level until it expires, a tenant
//! administrator has `admin`; a case the caller may not see is
//! [`PortfolioError::NotFound`].
use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::{CaseId, UserId};
use rampart_tenancy::TenantPool;
use rampart_tenancy::TenantSlug;
use rampart_valuation::{Decimal, ValuationInputs};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::PortfolioError;
use crate::documents::{
    self, ADMIN_LOCKED, COMMENT, EDIT_LOCKED, Guarded, Kind, Need, OWNER, VIEW, guarded, record,
};
use crate::import_json::ItemOutcome;
use crate::model::{Access, Actor, Comment, NewComment, Page, ShareGrant, Version, check_name};
use crate::schema::{
    document_shares as shr, valuation_case_analyses as ana, valuation_cases as cases,
};

/// Most cases in one import.
pub const MAX_IMPORT_CASES: usize = 200;
/// Largest analysis document, serialized.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// A case to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// The company's ticker (1-15 of `A-Z 0-9 . -`; upper-cased).
    pub ticker: String,
    /// A name for the case (default: the ticker).
    #[serde(default)]
    pub name: Option<String>,
    /// The valuation inputs (fiscal years, adjustments, cost of capital,
    /// claims, reproduction lines, growth, current price).
    pub inputs: ValuationInputs,
}

/// Changes to a case; `None` leaves a field as it is. Any change is a new
/// version, valued anew.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    /// New ticker.
    #[serde(default)]
    pub ticker: Option<String>,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New inputs (all of them).
    #[serde(default)]
    pub inputs: Option<ValuationInputs>,
    /// What the change is, kept with the version (default `update`).
    #[serde(default)]
    pub change: Option<String>,
}

/// A case as the caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Id.
    pub id: CaseId,
    /// Owner.
    pub owner_id: UserId,
    /// The company's ticker.
    pub ticker: String,
    /// Name.
    pub name: String,
    /// Currency of every amount (the inputs').
    pub currency: String,
    /// Current version.
    pub version: i32,
    /// The inputs of the current version.
    pub inputs: Value,
    /// The valuation of the current version ([`rampart_valuation::Valuation`]).
    pub valuation: Value,
    /// The caller's access.
    pub access: Access,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An analysis result to attach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnalysis {
    /// What produced it (a tool or agent name, 1-200 characters).
    pub source: String,
    /// The result: a JSON object or array (at most 256 KiB).
    pub document: Value,
    /// The version it is about (default: the current one).
    #[serde(default)]
    pub version: Option<i32>,
}

/// An analysis result attached to a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable)]
pub struct Analysis {
    /// Id.
    pub id: Uuid,
    /// The version it is about.
    pub version: i32,
    /// What produced it.
    pub source: String,
    /// The result.
    pub document: Value,
    /// Who attached it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One field that differs between two versions (`path` like
/// `inputs.fiscal_years[1].revenue`); `None` where it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Where.
    pub path: String,
    /// In the older version.
    pub before: Option<Value>,
    /// In the newer version.
    pub after: Option<Value>,
}

/// What differs between two versions of a case (inputs and valuation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    /// The version compared from.
    pub from: i32,
    /// The version compared to.
    pub to: i32,
    /// Every field that differs, in path order.
    pub changes: Vec<FieldChange>,
}

/// A whole case: what [`CaseService::export`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseExport {
    /// The case now.
    pub case: Case,
    /// Every version, oldest first.
    pub versions: Vec<Version>,
    /// The comment thread.
    pub comments: Vec<Comment>,
    /// Analysis results, oldest first.
    pub analyses: Vec<Analysis>,
}

/// One case of an import in its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseImportItem {
    /// Position in the export's `cases` array (0-based).
    pub index: usize,
    /// The browser app's id of the case, when it had one.
    pub source_id: Option<String>,
    /// The ticker, when it had one.
    pub ticker: Option<String>,
    /// The outcome.
    pub outcome: ItemOutcome,
    /// The created or existing case.
    pub case_id: Option<CaseId>,
    /// Analyses the item carries.
    pub analyses: usize,
    /// Why it was refused (`cases[0].inputs: …`).
    pub reasons: Vec<String>,
}

/// The report of an import: all of it applied, or nothing when any item is
/// refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseImportReport {
    /// True when the import was applied (no item refused).
    pub applied: bool,
    /// Cases created.
    pub created: usize,
    /// Cases skipped (imported before by this user).
    pub skipped: usize,
    /// Cases refused.
    pub refused: usize,
    /// Item by item.
    pub items: Vec<CaseImportItem>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cases, check_for_backend(Pg))]
struct CaseRow {
    id: CaseId,
    owner_id: UserId,
    ticker: String,
    name: String,
    currency: String,
    version: i32,
    inputs: Value,
    valuation: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl CaseRow {
    fn visible_to(self, share: Option<String>, actor: &Actor) -> Option<Case> {
        let access = documents::access_of(self.owner_id, share.as_deref(), actor, false);
        Some(Case {
            id: self.id,
            owner_id: self.owner_id,
            ticker: self.ticker,
            name: self.name,
            currency: self.currency,
            version: self.version,
            inputs: self.inputs,
            valuation: self.valuation,
            access: access?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The case's fields a version keeps.
fn snapshot(case: &Case) -> Value {
    json!({
        "ticker": case.ticker,
        "name": case.name,
        "currency": case.currency,
        "inputs": case.inputs,
        "valuation": case.valuation,
    })
}

fn check_ticker(ticker: &str) -> Result<String, PortfolioError> {
    let t = ticker.trim().to_ascii_uppercase();
    let ok = (1..=15).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if ok {
        Ok(t)
    } else {
        Err(PortfolioError::Invalid(
            "ticker: 1-15 letters, digits, '.' or '-'".into(),
        ))
    }
}

/// The inputs and their valuation as stored: both exact (decimals as strings).
fn valued(inputs: &ValuationInputs) -> Result<(Value, Value), PortfolioError> {
    let valuation = rampart_valuation::value(inputs)?;
    let as_json = |v: Result<Value, serde_json::Error>| {
        v.map_err(|e| PortfolioError::Invalid(format!("inputs: {e}")))
    };
    Ok((
        as_json(serde_json::to_value(inputs))?,
        as_json(serde_json::to_value(&valuation))?,
    ))
}

/// The fields of a new case, checked and valued.
struct Valued {
    ticker: String,
    name: String,
    currency: String,
    inputs: Value,
    valuation: Value,
}

impl Valued {
    fn new(
        ticker: &str,
        name: Option<&str>,
        inputs: &ValuationInputs,
    ) -> Result<Self, PortfolioError> {
        let ticker = check_ticker(ticker)?;
        let name = name.map(str::trim).unwrap_or(&ticker).to_owned();
        check_name(&name)?;
        let (inputs_json, valuation) = valued(inputs)?;
        Ok(Valued {
            currency: inputs.currency.clone(),
            ticker,
            name,
            inputs: inputs_json,
            valuation,
        })
    }
}

async fn insert_version(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    case: &Case,
    change: &str,
) -> Result<(), PortfolioError> {
    documents::insert_version(
        conn,
        actor,
        case.id.into(),
        case.version,
        snapshot(case),
        change,
    )
    .await
}

/// Cases visible to the actor: one (`only`) or a page by id after `after`.
async fn visible(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    only: Option<CaseId>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Case>, PortfolioError> {
    let mut query = cases::table
        .left_join(
            shr::table.on(shr::document_id
                .eq(cases::id)
                .and(shr::user_id.eq(actor.user_id))
                .and(shr::expires_at.is_null().or(shr::expires_at.gt(now)))),
        )
        .filter(cases::deleted_at.is_null())
        .select((CaseRow::as_select(), shr::access.nullable()))
        .order(cases::id)
        .limit(limit)
        .into_boxed();
    if !actor.tenant_admin {
        query = query.filter(
            cases::owner_id
                .eq(actor.user_id)
                .or(shr::user_id.nullable().is_not_null()),
        );
    }
    if let Some(only) = only {
        query = query.filter(cases::id.eq(only));
    }
    if let Some(after) = after {
        query = query.filter(cases::id.gt(after));
    }
    let rows: Vec<(CaseRow, Option<String>)> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, share)| row.visible_to(share, actor))
        .collect())
}

/// Inserts a case (version 1) owned by the actor.
async fn insert_case(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    v: Valued,
    import_key: Option<&str>,
    change: &str,
) -> Result<Case, PortfolioError> {
    let id = CaseId::from(documents::insert(conn, Kind::ValuationCase).await?);
    diesel::insert_into(cases::table)
        .values((
            cases::id.eq(id),
            cases::owner_id.eq(actor.user_id),
            cases::ticker.eq(&v.ticker),
            cases::name.eq(&v.name),
            cases::currency.eq(&v.currency),
            cases::inputs.eq(&v.inputs),
            cases::valuation.eq(&v.valuation),
            cases::import_key.eq(import_key),
        ))
        .execute(conn)
        .await?;
    let case = CaseService::allowed(conn, actor, id, OWNER).await?;
    insert_version(conn, actor, &case, change).await?;
    record(conn, actor, id.into(), change, None, Some(snapshot(&case))).await?;
    Ok(case)
}

fn check_document(source: &str, document: &Value) -> Result<(), PortfolioError> {
    let source_len = source.trim().chars().count();
    if !(1..=200).contains(&source_len) {
        return Err(PortfolioError::Invalid("source: 1-200 characters".into()));
    }
    if !(document.is_object() || document.is_array()) {
        return Err(PortfolioError::Invalid(
            "document: a JSON object or array".into(),
        ));
    }
    if document.to_string().len() > MAX_DOCUMENT_BYTES {
        return Err(PortfolioError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
            unit: "bytes",
        });
    }
    Ok(())
}

/// Valuation cases of every tenant, over a [`TenantPool`]: each call routes
/// to one tenant's schema, checks the caller's access and runs in one
/// transaction.
#[derive(Clone)]
pub struct CaseService {
    pool: TenantPool,
}

impl Guarded for CaseService {
    type Doc = Case;
    type Id = CaseId;

    fn tenants(&self) -> &TenantPool {
        &self.pool
    }

    async fn allowed(
        conn: &mut AsyncPgConnection,
        actor: &Actor,
        id: CaseId,
        Need(needed, lock): Need,
    ) -> Result<Case, PortfolioError> {
        if lock {
            cases::table
                .find(id)
                .select(cases::id)
                .for_update()
                .load::<CaseId>(conn)
                .await?;
        }
        let case = visible(conn, actor, Some(id), None, 1)
            .await?
            .pop()
            .ok_or(PortfolioError::NotFound)?;
        documents::require(case.access, needed)?;
        Ok(case)
    }

    fn id(case: &Case) -> Uuid {
        case.id.into()
    }

    fn owner(case: &Case) -> UserId {
        case.owner_id
    }
}

impl CaseService {
    /// A service over `pool`.
    pub fn new(pool: TenantPool) -> Self {
        Self { pool }
    }

    /// Creates a case owned by the actor (version 1, valued).
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        new: NewCase,
    ) -> Result<Case, PortfolioError> {
        let v = Valued::new(&new.ticker, new.name.as_deref(), &new.inputs)?;
        self.pool
            .with_tenant(tenant, async |conn| {
                insert_case(conn, actor, v, None, "create").await
            })
            .await
    }

    /// Cases the actor may see, by id, `limit` at a time after the cursor.
    pub async fn list(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Case>, PortfolioError> {
        documents::listed(self, tenant, after, limit, async |conn, after, count| {
            visible(conn, actor, None, after, count).await
        })
        .await
    }

    /// One case (needs `view`).
    pub async fn get(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
    ) -> Result<Case, PortfolioError> {
        guarded(self, tenant, actor, id, VIEW, async |_, case| Ok(case)).await
    }

    /// Changes a case (needs `edit`): a new version, valued anew; the
    /// activity keeps the case before and after.
    pub async fn update(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
        patch: CasePatch,
    ) -> Result<Case, PortfolioError> {
        if patch.ticker.is_none() && patch.name.is_none() && patch.inputs.is_none() {
            return Err(PortfolioError::Invalid("nothing to change".into()));
        }
        let change = patch.change.as_deref().map(str::trim).unwrap_or("update");
        if !(1..=200).contains(&change.chars().count()) {
            return Err(PortfolioError::Invalid("change: 1-200 characters".into()));
        }
        guarded(
            self,
            tenant,
            actor,
            id,
            EDIT_LOCKED,
            async |conn, before| {
                let inputs = match &patch.inputs {
                    Some(i) => i.clone(),
                    None => serde_json::from_value(before.inputs.clone())
                        .map_err(|e| PortfolioError::Invalid(format!("stored inputs: {e}")))?,
                };
                let v = Valued::new(
                    patch.ticker.as_deref().unwrap_or(&before.ticker),
                    Some(patch.name.as_deref().unwrap_or(&before.name)),
                    &inputs,
                )?;
                diesel::update(cases::table.find(id))
                    .set((
                        cases::ticker.eq(&v.ticker),
                        cases::name.eq(&v.name),
                        cases::currency.eq(&v.currency),
                        cases::inputs.eq(&v.inputs),
                        cases::valuation.eq(&v.valuation),
                        cases::version.eq(cases::version + 1),
                        cases::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                let after = Self::allowed(conn, actor, id, VIEW).await?;
                insert_version(conn, actor, &after, change).await?;
                record(
                    conn,
                    actor,
                    id.into(),
                    change,
                    Some(snapshot(&before)),
                    Some(snapshot(&after)),
                )
                .await?;
                Ok(after)
            },
        )
        .await
    }

    /// Deletes a case (needs `admin`); its history goes with it.
    pub async fn delete(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
    ) -> Result<(), PortfolioError> {
        guarded(self, tenant, actor, id, ADMIN_LOCKED, async |conn, case| {
            diesel::update(cases::table.find(id))
                .set(cases::deleted_at.eq(now))
                .execute(conn)
                .await?;
            record(
                conn,
                actor,
                id.into(),
                "delete",
                Some(snapshot(&case)),
                None,
            )
            .await
        })
        .await
    }

    /// What differs between versions `from` and `to` (needs `view`).
    pub async fn diff(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
        from: i32,
        to: i32,
    ) -> Result<VersionDiff, PortfolioError> {
        guarded(self, tenant, actor, id, VIEW, async |conn, _| {
            let a = documents::version(conn, id.into(), from).await?;
            let b = documents::version(conn, id.into(), to).await?;
            let mut changes = Vec::new();
            diff_json("", Some(&a.snapshot), Some(&b.snapshot), &mut changes);
            Ok(VersionDiff { from, to, changes })
        })
        .await
    }

    /// Attaches an analysis result to a version (needs `comment`: it adds
    /// to the case without changing its inputs).
    pub async fn attach_analysis(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
        new: NewAnalysis,
    ) -> Result<Analysis, PortfolioError> {
        check_document(&new.source, &new.document)?;
        guarded(self, tenant, actor, id, COMMENT, async |conn, case| {
            let version = new.version.unwrap_or(case.version);
            documents::version(conn, id.into(), version).await?;
            let analysis =
                insert_analysis(conn, actor, id, version, new.source.trim(), &new.document).await?;
            let after = json!({"id": analysis.id, "version": version, "source": analysis.source});
            record(conn, actor, id.into(), "analysis", None, Some(after)).await?;
            Ok(analysis)
        })
        .await
    }

    /// Analysis results, oldest first, of one version or all (needs `view`).
    pub async fn analyses(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
        version: Option<i32>,
    ) -> Result<Vec<Analysis>, PortfolioError> {
        guarded(self, tenant, actor, id, VIEW, async |conn, _| {
            load_analyses(conn, id, version).await
        })
        .await
    }

    /// The whole case: now, every version, comments and analyses (needs `view`).
    pub async fn export(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
    ) -> Result<CaseExport, PortfolioError> {
        guarded(self, tenant, actor, id, VIEW, async |conn, case| {
            Ok(CaseExport {
                case,
                versions: documents::all_versions(conn, id.into()).await?,
                comments: documents::comments(conn, id.into()).await?,
                analyses: load_analyses(conn, id, None).await?,
            })
        })
        .await
    }

    /// The current version as CSV: `section,path,value`, one line per
    /// input and per valuation figure (amounts exact, as stored).
    pub async fn export_csv(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: CaseId,
    ) -> Result<String, PortfolioError> {
        let case = self.get(tenant, actor, id).await?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| PortfolioError::Invalid(format!("csv: {e}"));
        out.write_record(["section", "path", "value"])
            .map_err(fail)?;
        let case_fields = [
            ("ticker", Value::from(case.ticker.clone())),
            ("name", Value::from(case.name.clone())),
            ("version", Value::from(case.version)),
        ];
        for (path, value) in case_fields {
            out.write_record(["case", path, &scalar(&value)])
                .map_err(fail)?;
        }
        for (section, value) in [("inputs", &case.inputs), ("valuation", &case.valuation)] {
            let mut leaves = Vec::new();
            flatten("", value, &mut leaves);
            for (path, value) in leaves {
                out.write_record([section, &path, &scalar(&value)])
                    .map_err(fail)?;
            }
        }
        let bytes = out
            .into_inner()
            .map_err(|e| PortfolioError::Invalid(format!("csv: {e}")))?;
        String::from_utf8(bytes).map_err(|e| PortfolioError::Invalid(format!("csv: {e}")))
    }

    /// Imports the browser app's export of cases (what it kept in
    /// `localStorage`), as the actor's own cases. Accepted: `{"cases":
    /// [...]}` or a bare array; each case `{"id", "ticker" (or "symbol"),
    /// "name" (or "companyName"), "inputs": {…valuation inputs…},
    /// "analyses": [{"source" (or "agent"), "document" (or "result")}]}`.
    /// Every case is checked and valued first; any refused → nothing is
    /// applied. A case imported before by this user (same `id`) is skipped,
    /// so importing the same export twice creates nothing.
    pub async fn import_browser(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        export: &Value,
    ) -> Result<CaseImportReport, PortfolioError> {
        let list = match export {
            Value::Array(a) => a,
            Value::Object(o) => o.get("cases").and_then(Value::as_array).ok_or_else(|| {
                PortfolioError::Invalid("expected {\"cases\": [...]} or an array".into())
            })?,
            _ => {
                return Err(PortfolioError::Invalid(
                    "expected {\"cases\": [...]} or an array".into(),
                ));
            }
        };
        if list.len() > MAX_IMPORT_CASES {
            return Err(PortfolioError::TooLarge {
                limit: MAX_IMPORT_CASES,
                unit: "cases",
            });
        }
        let candidates: Vec<(CaseImportItem, Option<Candidate>)> = list
            .iter()
            .enumerate()
            .map(|(i, v)| candidate(i, v))
            .collect();
        self.pool
            .with_tenant(tenant, async |conn| {
                let keys: Vec<&str> = candidates
                    .iter()
                    .filter_map(|(_, c)| c.as_ref().map(|c| c.source_id.as_str()))
                    .collect();
                let existing: Vec<(String, Uuid)> = cases::table
                    .filter(cases::owner_id.eq(actor.user_id))
                    .filter(cases::import_key.eq_any(&keys))
                    .filter(cases::deleted_at.is_null())
                    .select((cases::import_key.assume_not_null(), cases::id))
                    .load(conn)
                    .await?;
                let mut report = CaseImportReport {
                    applied: false,
                    created: 0,
                    skipped: 0,
                    refused: 0,
                    items: Vec::new(),
                };
                let mut seen = std::collections::HashSet::new();
                let mut todo = Vec::new();
                for (mut item, c) in candidates {
                    if let Some(c) = c {
                        if let Some((_, id)) = existing.iter().find(|(k, _)| *k == c.source_id) {
                            item.outcome = ItemOutcome::Skipped;
                            item.case_id = Some((*id).into());
                        } else if !seen.insert(c.source_id.clone()) {
                            item.outcome = ItemOutcome::Refused;
                            item.reasons.push(format!(
                                "cases[{}].id: appears twice in the export",
                                item.index
                            ));
                        } else {
                            todo.push((report.items.len(), c));
                        }
                    }
                    match item.outcome {
                        ItemOutcome::Created => {}
                        ItemOutcome::Skipped => report.skipped += 1,
                        ItemOutcome::Refused => report.refused += 1,
                    }
                    report.items.push(item);
                }
                report.created = todo.len();
                if report.refused > 0 {
                    return Ok(report);
                }
                for (at, c) in todo {
                    let case =
                        insert_case(conn, actor, c.valued, Some(&c.source_id), "import").await?;
                    for (source, document) in &c.analyses {
                        insert_analysis(conn, actor, case.id, case.version, source, document)
                            .await?;
                    }
                    if let Some(item) = report.items.get_mut(at) {
                        item.case_id = Some(case.id);
                    }
                }
                report.applied = true;
                Ok(report)
            })
            .await
    }
}

impl ShareGrant {
    /// Refuses `owner` as a share's access and an expiry in the past.
    pub(crate) fn check(&self) -> Result<(), PortfolioError> {
        if self.access == Access::Owner {
            return Err(PortfolioError::Invalid(
                "access: one of view, comment, edit, admin".into(),
            ));
        }
        if self.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(PortfolioError::Invalid("expires_at is in the past".into()));
        }
        Ok(())
    }
}

impl NewComment {
    /// The body, trimmed; 1-5000 characters.
    pub(crate) fn checked_body(&self) -> Result<String, PortfolioError> {
        let body = self.body.trim().to_owned();
        if body.is_empty() || body.chars().count() > 5000 {
            return Err(PortfolioError::Invalid("body: 1-5000 characters".into()));
        }
        Ok(body)
    }
}

/// The columns an [`Analysis`] is read from, in the order of its fields.
/// Columns are unit structs, so `AnalysisColumns::default()` is the
/// selection itself.
type AnalysisColumns = (
    ana::id,
    ana::version,
    ana::source,
    ana::document,
    ana::created_by,
    ana::created_at,
);

async fn load_analyses(
    conn: &mut AsyncPgConnection,
    id: CaseId,
    version: Option<i32>,
) -> Result<Vec<Analysis>, PortfolioError> {
    let mut query = ana::table
        .filter(ana::case_id.eq(id))
        .order((ana::created_at, ana::id))
        .limit(1000)
        .select(AnalysisColumns::default())
        .into_boxed();
    if let Some(v) = version {
        query = query.filter(ana::version.eq(v));
    }
    Ok(query.load(conn).await?)
}

async fn insert_analysis(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    case_id: CaseId,
    version: i32,
    source: &str,
    document: &Value,
) -> Result<Analysis, PortfolioError> {
    Ok(diesel::insert_into(ana::table)
        .values((
            ana::case_id.eq(case_id),
            ana::version.eq(version),
            ana::source.eq(source),
            ana::document.eq(document),
            ana::created_by.eq(actor.user_id),
        ))
        .returning(AnalysisColumns::default())
        .get_result(conn)
        .await?)
}

/// A case of an import, checked and valued.
struct Candidate {
    source_id: String,
    valued: Valued,
    analyses: Vec<(String, Value)>,
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| o.get(*n))
        .filter(|v| !v.is_null())
}

fn reason(e: PortfolioError) -> String {
    match e {
        PortfolioError::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// One case of an import: its report item (created unless refused) and,
/// when valid, what to insert.
fn candidate(index: usize, v: &Value) -> (CaseImportItem, Option<Candidate>) {
    let at = format!("cases[{index}]");
    let mut item = CaseImportItem {
        index,
        source_id: None,
        ticker: None,
        outcome: ItemOutcome::Created,
        case_id: None,
        analyses: 0,
        reasons: Vec::new(),
    };
    let Some(o) = v.as_object() else {
        item.reasons.push(format!("{at}: an object is expected"));
        item.outcome = ItemOutcome::Refused;
        return (item, None);
    };
    let text = |names: &[&str]| field(o, names).and_then(Value::as_str).map(str::to_owned);
    item.source_id = text(&["id"]).or_else(|| field(o, &["id"]).map(Value::to_string));
    item.ticker = text(&["ticker", "symbol"]);
    let name = text(&["name", "companyName"]);
    let mut reasons = Vec::new();
    let source_id = item.source_id.clone().unwrap_or_default();
    if !(1..=200).contains(&source_id.chars().count()) {
        reasons.push(format!("{at}.id: required, 1-200 characters"));
    }
    let inputs: Option<ValuationInputs> = match field(o, &["inputs"]) {
        None => {
            reasons.push(format!("{at}.inputs: required"));
            None
        }
        Some(i) => serde_json::from_value(i.clone())
            .map_err(|e| reasons.push(format!("{at}.inputs: {e}")))
            .ok(),
    };
    let mut analyses = Vec::new();
    let listed = field(o, &["analyses"]).map(|a| a.as_array().ok_or(a));
    match listed {
        None => {}
        Some(Err(_)) => reasons.push(format!("{at}.analyses: an array is expected")),
        Some(Ok(list)) => {
            for (j, a) in list.iter().enumerate() {
                let source = a
                    .get("source")
                    .or_else(|| a.get("agent"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let document = a
                    .get("document")
                    .or_else(|| a.get("result"))
                    .cloned()
                    .unwrap_or(Value::Null);
                match check_document(&source, &document) {
                    Ok(()) => analyses.push((source, document)),
                    Err(e) => reasons.push(format!("{at}.analyses[{j}]: {}", reason(e))),
                }
            }
        }
    }
    item.analyses = analyses.len();
    let valued = inputs.and_then(|inputs| {
        let ticker = item.ticker.clone().unwrap_or_default();
        Valued::new(&ticker, name.as_deref(), &inputs)
            .map_err(|e| reasons.push(format!("{at}: {}", reason(e))))
            .ok()
    });
    item.reasons = reasons;
    match valued {
        Some(valued) if item.reasons.is_empty() => (
            item,
            Some(Candidate {
                source_id,
                valued,
                analyses,
            }),
        ),
        _ => {
            item.outcome = ItemOutcome::Refused;
            (item, None)
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Every leaf of `a` and `b` that differs, with its path.
fn diff_json(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_json(&join(path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                diff_json(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        _ if a == b => {}
        _ => out.push(FieldChange {
            path: path.to_owned(),
            before: a.cloned(),
            after: b.cloned(),
        }),
    }
}

/// Every leaf of `v` with its path (`fiscal_years[0].revenue`).
fn flatten(path: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                flatten(&join(path, k), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        leaf => out.push((path.to_owned(), leaf.clone())),
    }
}

/// A leaf as a CSV cell: strings bare (decimals are stored as strings, so
/// every digit is kept), null empty.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Sets the price the margin of safety is measured against, when the
/// inputs carry none.
pub fn with_price(mut inputs: ValuationInputs, price: Option<Decimal>) -> ValuationInputs {
    if inputs.current_price.is_none() {
        inputs.current_price = price;
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_changed_leaf_with_its_path() {
        let a = json!({"inputs": {"years": [{"revenue": "10"}, {"revenue": "20"}], "tax": "0.2"}});
        let b =
            json!({"inputs": {"years": [{"revenue": "10"}, {"revenue": "25"}, {"revenue": "30"}]}});
        let mut out = Vec::new();
        diff_json("", Some(&a), Some(&b), &mut out);
        let paths: Vec<_> = out.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            ["inputs.tax", "inputs.years[1].revenue", "inputs.years[2]"]
        );
        assert_eq!(out[0].after, None);
        assert_eq!(out[1].before, Some(json!("20")));
        assert_eq!(out[2].after, Some(json!({"revenue": "30"})));
    }

    #[test]
    fn tickers_are_upper_cased_and_checked() {
        assert_eq!(check_ticker(" brk.b ").ok().as_deref(), Some("BRK.B"));
        assert!(check_ticker("").is_err());
        assert!(check_ticker("A B").is_err());
        assert!(check_ticker("ABCDEFGHIJKLMNOP").is_err());
    }
}
