//! `/api/v1/t/{tenant}/cases…`: EPV valuation cases (seed 002) over
//! [`rampart_portfolio::CaseService`]: create and change a case (every
//! change a new version, valued anew by `rampart_valuation`), versions and
//! their diff, sharing, comments, analysis results attached to a version,
//! activity, export (JSON, CSV) and import of the browser app's export.
//! The role must grant `cases:read` to read (and to comment and attach
//! analyses where a share allows), `cases:write` to create, change, delete
//! and import, `cases:share` to share and revoke (a token or API key carries
//! them with its `cases:*` scopes, or with `portfolio:read`/`portfolio:write`
//! as before the cases had permissions of their own). The case's own access
//! (owner, share, tenant admin) is checked by the crate, and a case the
//! caller may not see is "not found". When the inputs carry no
//! `current_price`, the ticker's price from the market chain is used (and
//! kept in the version), so the margin of safety is measured against it.
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{delete, get, patch, post};
use rampart_portfolio::{
    CasePatch, CaseService, Collaborative, NewAnalysis, NewCase, NewComment, ShareGrant,
};
use rampart_valuation::ValuationInputs;
use serde::Deserialize;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, Answer, JsonObject};
use crate::error::ApiError;
use crate::extract::{AsUser, PageQuery, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/cases")
            .service(list)
            .service(create)
            .service(import)
            .service(get)
            .service(update)
            .service(delete)
            .service(versions)
            .service(version)
            .service(diff)
            .service(shares)
            .service(share)
            .service(revoke)
            .service(comments)
            .service(comment)
            .service(analyses)
            .service(attach_analysis)
            .service(activity)
            .service(export)
            .service(export_csv),
    );
}

/// `…/cases/{id}`.
#[derive(Debug, Deserialize)]
pub struct CasePath {
    /// The case.
    pub id: rampart_portfolio::CaseId,
}

/// `…/cases/{id}/versions/{version}`.
#[derive(Debug, Deserialize)]
pub struct CaseVersionPath {
    /// The case.
    pub id: rampart_portfolio::CaseId,
    /// The version number.
    pub version: i32,
}

/// `…/cases/{id}/shares/{user}`.
#[derive(Debug, Deserialize)]
pub struct CaseSharePath {
    /// The case.
    pub id: rampart_portfolio::CaseId,
    /// The user it is shared with.
    pub user: rampart_auth::UserId,
}

/// `?from=1&to=3`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    /// The older version.
    pub from: i32,
    /// The newer version.
    pub to: i32,
}

/// `?version=2`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AnalysesQuery {
    /// Only the results attached to this version.
    pub version: Option<i32>,
}

type State = web::Data<AppState>;
type Id = web::Path<CasePath>;
/// May read the cases it can see.
type Reader = AsUser<CaseService, perm::CasesRead>;
/// May also change them (as far as its access to each allows).
type Writer = AsUser<CaseService, perm::CasesWrite>;
/// May also share them (as far as its access to each allows).
type Sharer = AsUser<CaseService, perm::CasesShare>;

/// The inputs with the ticker's market price when they carry none (a
/// market that cannot price it leaves the margin of safety out).
async fn priced(state: &AppState, ticker: &str, inputs: ValuationInputs) -> ValuationInputs {
    if inputs.current_price.is_some() {
        return inputs;
    }
    let price = match state.market.quote(ticker).await {
        Ok(served) => Some(served.value.price),
        Err(e) => {
            tracing::debug!(ticker, error = %e, "no price for a valuation case");
            None
        }
    };
    ValuationInputs {
        current_price: price,
        ..inputs
    }
}

/// Cases the caller may see (own, shared), cursor-paginated.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of cases"), (status = 401, description = "no valid token")))]
#[get("")]
pub async fn list(u: Reader, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    Ok(api::page_of(
        u.svc.list(&u.tenant, &u.actor, cursor, limit).await?,
    ))
}

/// Creates a case (version 1) and values it; the inputs' missing
/// `current_price` is the ticker's market price.
#[utoipa::path(responses((status = 201, description = "the case with its valuation"), (status = 400, description = "invalid input (the field is named)"), (status = 403, description = "role lacks cases:write")))]
#[post("")]
pub async fn create(u: Writer, state: State, body: JsonObject<NewCase>) -> Answer {
    let mut new = body.into_inner();
    new.inputs = priced(&state, &new.ticker, new.inputs).await;
    let case = u.svc.create(&u.tenant, &u.actor, new);
    Ok(api::ok_status(StatusCode::CREATED, case.await?))
}

/// One case: its current inputs, valuation and the caller's access.
#[utoipa::path(responses((status = 200, description = "case"), (status = 404, description = "no such case, or not visible to the caller")))]
#[get("/{id}")]
pub async fn get(u: Reader, path: Id) -> Answer {
    let case = u.svc.get(&u.tenant, &u.actor, path.id);
    Ok(api::ok(case.await?))
}

/// Changes ticker, name or inputs (`edit`): a new version, valued anew.
#[utoipa::path(responses((status = 200, description = "new version"), (status = 400, description = "invalid input"), (status = 403, description = "needs edit access")))]
#[patch("/{id}")]
pub async fn update(u: Writer, state: State, path: Id, body: JsonObject<CasePatch>) -> Answer {
    let mut patch = body.into_inner();
    if let Some(inputs) = patch.inputs.take() {
        let ticker = match &patch.ticker {
            Some(t) => t.clone(),
            None => u.svc.get(&u.tenant, &u.actor, path.id).await?.ticker,
        };
        patch.inputs = Some(priced(&state, &ticker, inputs).await);
    }
    let case = u.svc.update(&u.tenant, &u.actor, path.id, patch);
    Ok(api::ok(case.await?))
}

/// Deletes a case (`admin`).
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 403, description = "needs admin access")))]
#[delete("/{id}")]
pub async fn delete(u: Writer, path: Id) -> Answer {
    u.svc.delete(&u.tenant, &u.actor, path.id).await?;
    Ok(api::ok(serde_json::json!({"deleted": path.id})))
}

/// Versions, newest first; the cursor is a version number.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of versions")))]
#[get("/{id}/versions")]
pub async fn versions(u: Reader, path: Id, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    let page = u.svc.versions(&u.tenant, &u.actor, path.id, cursor, limit);
    Ok(api::page_of(page.await?))
}

/// One version: ticker, name, inputs and valuation as they were.
#[utoipa::path(responses((status = 200, description = "version"), (status = 404, description = "no such version")))]
#[get("/{id}/versions/{version}")]
pub async fn version(u: Reader, path: web::Path<CaseVersionPath>) -> Answer {
    let v = u.svc.version(&u.tenant, &u.actor, path.id, path.version);
    Ok(api::ok(v.await?))
}

/// Every field that differs between two versions (inputs and valuation).
#[utoipa::path(params(DiffQuery), responses((status = 200, description = "the changed fields with before and after"), (status = 404, description = "no such version")))]
#[get("/{id}/diff")]
pub async fn diff(u: Reader, path: Id, q: web::Query<DiffQuery>) -> Answer {
    let d = u.svc.diff(&u.tenant, &u.actor, path.id, q.from, q.to);
    Ok(api::ok(d.await?))
}

/// Shares of the case (`admin`).
#[utoipa::path(responses((status = 200, description = "shares")))]
#[get("/{id}/shares")]
pub async fn shares(u: Reader, path: Id) -> Answer {
    let s = u.svc.shares(&u.tenant, &u.actor, path.id);
    Ok(api::ok(s.await?))
}

/// Grants (or changes) a share with a user of the same tenant (`admin`).
#[utoipa::path(responses((status = 200, description = "share"), (status = 400, description = "unknown user, owner, past expiry")))]
#[post("/{id}/shares")]
pub async fn share(u: Sharer, path: Id, body: JsonObject<ShareGrant>) -> Answer {
    let s = u.svc.share(&u.tenant, &u.actor, path.id, body.0);
    Ok(api::ok(s.await?))
}

/// Revokes a user's share (`admin`).
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "no such share")))]
#[delete("/{id}/shares/{user}")]
pub async fn revoke(u: Sharer, path: web::Path<CaseSharePath>) -> Answer {
    u.svc
        .revoke(&u.tenant, &u.actor, path.id, path.user)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": path.user})))
}

/// The comment thread, oldest first.
#[utoipa::path(responses((status = 200, description = "comments")))]
#[get("/{id}/comments")]
pub async fn comments(u: Reader, path: Id) -> Answer {
    let c = u.svc.comments(&u.tenant, &u.actor, path.id);
    Ok(api::ok(c.await?))
}

/// Adds a comment (`comment`).
#[utoipa::path(responses((status = 201, description = "comment"), (status = 403, description = "needs comment access")))]
#[post("/{id}/comments")]
pub async fn comment(u: Reader, path: Id, body: JsonObject<NewComment>) -> Answer {
    let c = u.svc.comment(&u.tenant, &u.actor, path.id, body.0);
    Ok(api::ok_status(StatusCode::CREATED, c.await?))
}

/// Analysis results (JSON documents with their source), oldest first.
#[utoipa::path(params(AnalysesQuery), responses((status = 200, description = "analyses")))]
#[get("/{id}/analyses")]
pub async fn analyses(u: Reader, path: Id, q: web::Query<AnalysesQuery>) -> Answer {
    let a = u.svc.analyses(&u.tenant, &u.actor, path.id, q.version);
    Ok(api::ok(a.await?))
}

/// Attaches an analysis result from a tool or agent to a version
/// (`comment`; default the current version).
#[utoipa::path(responses((status = 201, description = "analysis"), (status = 400, description = "no source, not an object or array"), (status = 413, description = "document too large")))]
#[post("/{id}/analyses")]
pub async fn attach_analysis(u: Reader, path: Id, body: JsonObject<NewAnalysis>) -> Answer {
    let a = u.svc.attach_analysis(&u.tenant, &u.actor, path.id, body.0);
    Ok(api::ok_status(StatusCode::CREATED, a.await?))
}

/// The activity trail (who, what, before/after, IP, time), newest first.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of activity")))]
#[get("/{id}/activity")]
pub async fn activity(u: Reader, path: Id, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    let page = u.svc.activity(&u.tenant, &u.actor, path.id, cursor, limit);
    Ok(api::page_of(page.await?))
}

/// The whole case as JSON: now, every version, comments, analyses.
#[utoipa::path(responses((status = 200, description = "the case with its history")))]
#[get("/{id}/export")]
pub async fn export(u: Reader, path: Id) -> Answer {
    let e = u.svc.export(&u.tenant, &u.actor, path.id);
    Ok(api::ok(e.await?))
}

/// The current version as CSV (`section,path,value`).
#[utoipa::path(responses((status = 200, description = "text/csv")))]
#[get("/{id}/export.csv")]
pub async fn export_csv(u: Reader, path: Id) -> Answer {
    let csv = u.svc.export_csv(&u.tenant, &u.actor, path.id);
    Ok(api::csv("case.csv", csv.await?))
}

/// Imports the browser app's export of cases (`{"cases": [...]}` or an
/// array; see `rampart_portfolio::CaseService::import_browser`): item by
/// item created / skipped (imported before) / refused; any refused item →
/// 422 with the report and nothing applied.
#[utoipa::path(responses((status = 200, description = "report"), (status = 400, description = "not an export"), (status = 422, description = "refused items, nothing applied")))]
#[post("/import")]
pub async fn import(u: Writer, body: web::Json<serde_json::Value>) -> Answer {
    let report = u.svc.import_browser(&u.tenant, &u.actor, &body);
    let report = report.await?;
    if !report.applied {
        let total = report.items.len();
        return Err(ApiError::import_rejected(
            report.refused,
            total,
            "cases",
            &report,
        ));
    }
    Ok(api::ok(report))
}
