//! `GET /api/v1/t/{tenant}/market/stream`: a market-wide live price stream
//! over a WebSocket. The client subscribes to symbols and unsubscribes at
//! will (at most [`MAX_SYMBOLS`] at once); every `?interval=` seconds (1–300,
//! default 5) the server sends the quotes of the subscribed symbols from the
//! market chain.
//!
//! Authentication is the portfolio stream's: the access token as
//! `?access_token=`, as the subprotocol pair `bearer, <token>`, or as an
//! `Authorization` header; of the tenant in the path, with `market:read`,
//! and the tenant's `priceStream` flag on. The token is checked again at
//! every tick: an expired or revoked token ends the stream.
//!
//! Client messages (JSON text): `{"type": "subscribe", "symbols": [...]}`,
//! `{"type": "unsubscribe", "symbols": [...]}`. Server messages:
//! `{"type": "subscribed", "symbols": [...]}` (the whole set after each
//! change, followed at once by its quotes), `{"type": "quotes", "at",
//! "quotes": [...], "errors": [...]}` (see [`crate::live_quotes`]),
//! `{"type": "error", "code", "message"}` (`bad_message`, `invalid_symbol`,
//! `too_many_symbols`: the subscription is unchanged), and a last
//! `{"type": "closed", "reason"}` before the server closes (`token`,
//! `heartbeat`).
//!
//! Heartbeats: the server pings every `?heartbeat=` seconds (5–120, default
//! 30) and closes a connection it has heard nothing from (pong or message)
//! for two heartbeats. Backpressure: a message the client does not take
//! within [`SEND_TIMEOUT`] (its socket and the 32-message queue full) drops
//! the client; nothing is buffered without bound.
use rampart_tenancy::TenantSlug;
use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::get;
use actix_web::{HttpRequest, HttpResponse, web};
use rampart_auth::Permission;
use serde::Deserialize;
use tokio::time::Instant;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::extract::{self, require};
use crate::state::AppState;

/// Symbols one connection may watch at once.
pub const MAX_SYMBOLS: usize = crate::live_quotes::MAX_SYMBOLS;
/// How long a message may wait for a slow client before it is dropped
/// ([`crate::live_quotes::send_bounded`]).
pub const SEND_TIMEOUT: Duration = crate::live_quotes::SEND_TIMEOUT;
/// Largest client message accepted (bytes).
const MAX_FRAME: usize = 16 * 1024;

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(market_stream);
}

/// Stream parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MarketStreamQuery {
    /// The access token (browsers cannot set an `Authorization` header).
    pub access_token: Option<String>,
    /// Seconds between quote messages (1–300, default 5).
    pub interval: Option<u64>,
    /// Seconds between pings (5–120, default 30).
    pub heartbeat: Option<u64>,
}

/// A client message.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Command {
    Subscribe { symbols: Vec<String> },
    Unsubscribe { symbols: Vec<String> },
}

/// Live prices of any symbols the client subscribes to (WebSocket).
#[utoipa::path(params(MarketStreamQuery), responses((status = 101, description = "WebSocket: subscribe/unsubscribe messages in, quote messages out"), (status = 400, description = "not a WebSocket handshake"), (status = 401, description = "no valid token"), (status = 403, description = "no market:read, or the tenant's priceStream flag is off")))]
#[get("/market/stream")]
pub async fn market_stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<MarketStreamQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = extract::ws_bearer_token(&req, query.access_token.as_deref());
    let (tenant, p) = extract::authenticate_path_tenant(&state, &tenant, token.as_deref()).await?;
    require(&p, Permission::MarketRead)?;
    extract::require_flag::<extract::flag::PriceStream>(&state, &tenant).await?;
    let interval = Duration::from_secs(query.interval.unwrap_or(5).clamp(1, 300));
    let heartbeat = Duration::from_secs(query.heartbeat.unwrap_or(30).clamp(5, 120));
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &["bearer"])
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {e}")))?;
    let conn = Connection {
        session,
        state: state.get_ref().clone(),
        tenant,
        token: token.unwrap_or_default(),
        symbols: BTreeSet::new(),
    };
    actix_web::rt::spawn(conn.run(messages.max_frame_size(MAX_FRAME), interval, heartbeat));
    Ok(response)
}

/// One client's stream.
struct Connection {
    session: actix_ws::Session,
    state: AppState,
    tenant: TenantSlug,
    token: String,
    symbols: BTreeSet<String>,
}

/// Why the loop stops.
enum End {
    /// The client went away or is too slow: nothing more to send.
    Gone,
    /// The server ends it, saying why.
    Closed(&'static str),
}

impl Connection {
    async fn run(
        mut self,
        mut messages: actix_ws::MessageStream,
        interval: Duration,
        heartbeat: Duration,
    ) {
        let mut tick = tokio::time::interval(interval);
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let mut heard = Instant::now();
        let end = loop {
            let step = tokio::select! {
                _ = tick.tick() => self.tick().await,
                _ = ping.tick() => {
                    if heard.elapsed() > 2 * heartbeat {
                        Err(End::Closed("heartbeat"))
                    } else {
                        self.send_with(|s| Box::pin(s.ping(b"rampart"))).await
                    }
                }
                msg = messages.recv() => {
                    heard = Instant::now();
                    match msg {
                        Some(Ok(actix_ws::Message::Text(text))) => self.command(&text).await,
                        Some(Ok(actix_ws::Message::Ping(bytes))) => {
                            self.send_with(|s| Box::pin(s.pong(&bytes))).await
                        }
                        Some(Ok(actix_ws::Message::Binary(_))) => {
                            self.error("bad_message", "text JSON messages only").await
                        }
                        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => Err(End::Gone),
                        Some(Ok(_)) => Ok(()),
                    }
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Closed(reason) = end {
            let bye = serde_json::json!({"type": "closed", "reason": reason}).to_string();
            let _ = tokio::time::timeout(SEND_TIMEOUT, self.session.text(bye)).await;
            let reason = actix_ws::CloseReason {
                code: actix_ws::CloseCode::Policy,
                description: None,
            };
            let _ = tokio::time::timeout(SEND_TIMEOUT, self.session.close(Some(reason))).await;
        }
    }

    /// Sends through `send`, dropping a client that does not take it within
    /// [`SEND_TIMEOUT`] or has closed.
    async fn send_with<'a, F>(&'a mut self, send: F) -> Result<(), End>
    where
        F: FnOnce(
            &'a mut actix_ws::Session,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), actix_ws::Closed>> + 'a>,
        >,
    {
        match crate::live_quotes::send_bounded(SEND_TIMEOUT, send(&mut self.session)).await {
            Ok(()) => Ok(()),
            Err(crate::live_quotes::SendFailed::Closed) => Err(End::Gone),
            Err(crate::live_quotes::SendFailed::Slow) => {
                tracing::info!(tenant = %self.tenant, "market stream: slow client dropped");
                Err(End::Gone)
            }
        }
    }

    async fn send_json(&mut self, value: serde_json::Value) -> Result<(), End> {
        let text = value.to_string();
        self.send_with(|s| Box::pin(s.text(text))).await
    }

    async fn error(&mut self, code: &str, message: &str) -> Result<(), End> {
        let value = serde_json::json!({"type": "error", "code": code, "message": message});
        self.send_json(value).await
    }

    /// The token is still good: the subscribed symbols' quotes.
    async fn tick(&mut self) -> Result<(), End> {
        if self
            .state
            .auth
            .authenticate_bearer(&self.tenant, &self.token)
            .await
            .is_err()
        {
            return Err(End::Closed("token"));
        }
        self.quotes().await
    }

    async fn quotes(&mut self) -> Result<(), End> {
        if self.symbols.is_empty() {
            return Ok(());
        }
        let symbols: Vec<String> = self.symbols.iter().cloned().collect();
        let (quotes, errors) = crate::live_quotes::priced(&self.state.market, &symbols).await;
        let message = serde_json::json!({
            "type": "quotes",
            "at": chrono::Utc::now(),
            "quotes": quotes,
            "errors": errors,
        });
        self.send_json(message).await
    }

    /// A subscribe or unsubscribe: all of it applies, or none.
    async fn command(&mut self, text: &str) -> Result<(), End> {
        let command: Command = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => return self.error("bad_message", &e.to_string()).await,
        };
        let (subscribe, requested) = match command {
            Command::Subscribe { symbols } => (true, symbols),
            Command::Unsubscribe { symbols } => (false, symbols),
        };
        let mut symbols = Vec::with_capacity(requested.len());
        for s in requested.iter().take(MAX_SYMBOLS + 1) {
            match rampart_market::normalize_symbol(s) {
                Ok(s) => symbols.push(s),
                Err(e) => return self.error("invalid_symbol", &e.to_string()).await,
            }
        }
        let mut next = self.symbols.clone();
        for s in symbols {
            if subscribe {
                next.insert(s);
            } else {
                next.remove(&s);
            }
        }
        if next.len() > MAX_SYMBOLS {
            let message = format!("at most {MAX_SYMBOLS} symbols per connection");
            return self.error("too_many_symbols", &message).await;
        }
        self.symbols = next;
        let set: Vec<&String> = self.symbols.iter().collect();
        self.send_json(serde_json::json!({"type": "subscribed", "symbols": set}))
            .await?;
        self.quotes().await
    }
}
