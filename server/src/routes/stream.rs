//! `GET /api/v1/t/{tenant}/portfolios/{id}/stream`: live prices of a
//! portfolio's symbols over a WebSocket, from the market chain, every
//! `?interval=` seconds (1–300, default 5).
//!
//! Browsers cannot set headers on a WebSocket, so the access token comes as
//! `?access_token=…` or as the subprotocol pair `Sec-WebSocket-Protocol:
//! bearer, <token>` (the server answers `bearer`); an `Authorization:
//! Bearer` header works too. The token must be of the tenant in the path
//! and carry `portfolio:read` and `market:read`; the portfolio's own access
//! is checked through crates/portfolio before the upgrade (a portfolio the
//! caller may not see is 404); token and access are checked again at every
//! tick, so an expired token or a revoked share ends the stream.
//!
//! Each message is JSON: `{"type": "quotes", "portfolioId", "at",
//! "quotes": [{"symbol", "price", "previousClose", "asOf", "source",
//! "ageMs", "stale"}], "errors": [{"symbol", "code"}]}`; a last
//! `{"type": "closed", "reason"}` precedes a close when access ends.
use rampart_tenancy::TenantSlug;
use std::time::Duration;

use actix_web::get;
use actix_web::{HttpRequest, HttpResponse, web};
use rampart_auth::{Permission, authorize};
use rampart_portfolio::{Actor, PortfolioError, PortfolioService};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{self, require, user_of};
use crate::state::AppState;

/// Registers the route. It must come before `portfolios::configure`,
/// whose `web::scope` would otherwise claim the path.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stream);
}

/// `…/portfolios/{id}/stream`.
#[derive(Debug, Deserialize)]
pub struct StreamPath {
    /// The tenant (checked with the token: see
    /// [`extract::authenticate_path_tenant`]).
    pub tenant: String,
    /// The portfolio.
    pub id: Uuid,
}

/// Stream parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamQuery {
    /// The access token (browsers cannot set an `Authorization` header).
    pub access_token: Option<String>,
    /// Seconds between messages (1–300, default 5).
    pub interval: Option<u64>,
}

/// Live prices of the portfolio's symbols (WebSocket).
#[utoipa::path(params(StreamQuery), responses((status = 101, description = "WebSocket of JSON quote messages"), (status = 401, description = "no valid token"), (status = 404, description = "no such portfolio, or not visible to the caller")))]
#[get("/portfolios/{id}/stream")]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<StreamPath>,
    query: web::Query<StreamQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let StreamPath { tenant, id } = path.into_inner();
    let token = extract::ws_bearer_token(&req, query.access_token.as_deref());
    let (tenant, p) = extract::authenticate_path_tenant(&state, &tenant, token.as_deref()).await?;
    let token = token.unwrap_or_default();
    require(&p, Permission::PortfolioRead)?;
    require(&p, Permission::MarketRead)?;
    extract::require_flag::<extract::flag::PriceStream>(&state, &tenant).await?;
    let actor = Actor {
        user_id: user_of(&p)?,
        tenant_admin: authorize(&p, Permission::TenantAdmin).is_ok(),
        ip: crate::client_addr::client_ip(&req).map(|ip| ip.to_string()),
    };
    let interval = Duration::from_secs(query.interval.unwrap_or(5).clamp(1, 300));
    let portfolios = PortfolioService::new(state.tenants.clone());
    // Access before the upgrade, so refusals are plain HTTP answers.
    portfolios
        .symbols(&tenant, &actor, id.into())
        .await
        .map_err(|e| match e {
            // The stream says no more than "not allowed".
            PortfolioError::Forbidden { .. } => ApiError::forbidden("not allowed"),
            e => ApiError::from(e),
        })?;
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &["bearer"])
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {e}")))?;
    let watch = Watch {
        portfolios,
        market: state.market.clone(),
        auth: state.auth.clone(),
        token,
        tenant,
        actor,
        id,
    };
    actix_web::rt::spawn(pump(session, messages, watch, interval));
    Ok(response)
}

/// What one stream watches, and with whose token.
struct Watch {
    portfolios: PortfolioService,
    market: std::sync::Arc<rampart_market::ProviderChain>,
    auth: std::sync::Arc<rampart_auth::AuthServer>,
    token: String,
    tenant: TenantSlug,
    actor: Actor,
    id: Uuid,
}

impl Watch {
    /// The symbols to price now (`None`: skip this tick), or why the
    /// stream must end: the token expired (or its key was revoked) or the
    /// portfolio is no longer visible to the caller.
    async fn symbols(&self) -> Result<Option<Vec<String>>, &'static str> {
        if self
            .auth
            .authenticate_bearer(&self.tenant, &self.token)
            .await
            .is_err()
        {
            return Err("token");
        }
        match self
            .portfolios
            .symbols(&self.tenant, &self.actor, self.id.into())
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(
                rampart_portfolio::PortfolioError::NotFound
                | rampart_portfolio::PortfolioError::Forbidden { .. },
            ) => Err("access"),
            // A passing storage failure skips a tick rather than ending
            // the stream.
            Err(e) => {
                tracing::warn!(error = %e, portfolio = %self.id, "stream tick skipped");
                Ok(None)
            }
        }
    }
}

async fn pump(
    mut session: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
    watch: Watch,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let symbols = match watch.symbols().await {
                    Ok(Some(s)) => s,
                    Ok(None) => continue,
                    Err(reason) => {
                        let _ = session
                            .text(serde_json::json!({"type": "closed", "reason": reason}).to_string())
                            .await;
                        let _ = session
                            .close(Some(actix_ws::CloseReason {
                                code: actix_ws::CloseCode::Policy,
                                description: None,
                            }))
                            .await;
                        return;
                    }
                };
                let message = quotes_message(&watch.market, watch.id, &symbols).await;
                if session.text(message.to_string()).await.is_err() {
                    return;
                }
            }
            msg = messages.recv() => match msg {
                Some(Ok(actix_ws::Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = session.close(None).await;
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

async fn quotes_message(
    market: &rampart_market::ProviderChain,
    id: Uuid,
    symbols: &[String],
) -> serde_json::Value {
    let (quotes, errors) = crate::live_quotes::priced(market, symbols).await;
    serde_json::json!({
        "type": "quotes",
        "portfolioId": id,
        "at": chrono::Utc::now(),
        "quotes": quotes,
        "errors": errors,
    })
}
