//! `GET /api/graphql/t/{tenant}/ws`: GraphQL subscriptions over a WebSocket
//! with the `graphql-transport-ws` protocol (the `graphql-ws` library's),
//! run by async-graphql's protocol engine ([`async_graphql::http::WebSocket`])
//! over the same WebSocket session and backpressure policy as the market
//! stream ([`crate::live_quotes::send_bounded`]).
//!
//! Authentication is the market stream's ([`extract::ws_bearer_token`]):
//! a token in the handshake (`Authorization` header, the subprotocol pair
//! `bearer, <token>`, or `?access_token=`) is checked before the upgrade
//! and refused with the REST envelope (401, 403); without one, the
//! `connection_init` payload must carry `{"Authorization": "Bearer …"}`,
//! else the server closes with 4403 and the stable code as the reason
//! (`unauthorized`, `forbidden`, …). Either way: of the tenant in the path,
//! with `market:read`, and the tenant's `priceStream` flag on. A client that
//! sends no `connection_init` within [`INIT_TIMEOUT`] is closed with 4408.
//!
//! `subscription { quotes(symbols: ["AAPL"]) { at quotes { symbol price
//! asOf } errors { symbol code } } }`: the quotes of at most
//! [`crate::live_quotes::MAX_SYMBOLS`] symbols (and at most
//! [`MAX_SUBSCRIPTIONS`] subscriptions a connection) every `intervalSeconds`
//! (1–300, default 5), priced as the market stream prices them
//! ([`crate::live_quotes::priced`]). The token is checked again at every
//! tick: an expired or revoked one ends the subscription with an
//! `unauthorized` error.
use rampart_tenancy::TenantSlug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::{Context, Data, Json, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use rampart_auth::{Permission, Principal};
use serde::Deserialize;

use super::{OrGql, RampartSchema, gql_error};
use crate::error::ApiError;
use crate::extract;
use crate::live_quotes::{self, LiveQuote, MAX_SYMBOLS, QuoteFailure, SEND_TIMEOUT, SendFailed};
use crate::state::AppState;

/// The route.
pub const PATH: &str = "/api/graphql/t/{tenant}/ws";
/// The one subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// Subscriptions one connection may run at once.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client message accepted (bytes).
const MAX_FRAME: usize = 64 * 1024;
/// Client messages waiting for the protocol engine.
const INBOX: usize = 32;

/// Handshake parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SubscribeQuery {
    /// The access token (browsers cannot set an `Authorization` header).
    pub access_token: Option<String>,
}

/// The authenticated subscriber (connection data of every subscription).
#[derive(Clone)]
pub struct Subscriber {
    state: AppState,
    tenant: TenantSlug,
    token: String,
    principal: Principal,
    /// The connection's running subscriptions.
    active: Arc<AtomicUsize>,
}

/// One running subscription of a connection, counted while it lives.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot, unless the connection runs [`MAX_SUBSCRIPTIONS`] already.
    fn take(active: &Arc<AtomicUsize>) -> Option<Slot> {
        active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_SUBSCRIPTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(active.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Subscriber {
    /// As the market stream: the token of the tenant in the path, with
    /// `market:read`, the tenant's `priceStream` flag on.
    async fn authenticate(
        state: AppState,
        tenant: String,
        token: Option<String>,
    ) -> Result<Self, ApiError> {
        let (tenant, principal) =
            extract::authenticate_path_tenant(&state, &tenant, token.as_deref()).await?;
        extract::require(&principal, Permission::MarketRead)?;
        extract::require_flag::<extract::flag::PriceStream>(&state, &tenant).await?;
        Ok(Subscriber {
            state,
            tenant,
            token: token.unwrap_or_default(),
            principal,
            active: Arc::default(),
        })
    }

    /// The token is still good (not expired, not revoked).
    async fn still_valid(&self) -> bool {
        let auth = &self.state.auth;
        auth.authenticate_bearer(&self.tenant, &self.token)
            .await
            .is_ok()
    }
}

/// The bearer token of a `connection_init` payload
/// (`{"Authorization": "Bearer …"}`, any case of the key and scheme).
fn init_token(payload: &serde_json::Value) -> Option<String> {
    let (_, value) = payload
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?;
    let (scheme, token) = value.as_str()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

// ------------------------------------------------------------ schema

/// A priced symbol (as the market stream's `quotes`).
#[derive(SimpleObject)]
pub struct LiveQuoteNode {
    symbol: String,
    price: f64,
    previous_close: Option<f64>,
    as_of: DateTime<Utc>,
    /// Who served it (`{"layer": …, "provider": …}`).
    source: Json<rampart_market::Source>,
    /// Milliseconds since it was fetched.
    age_ms: u64,
    /// True: every provider failed; a last known value.
    stale: bool,
}

impl From<LiveQuote> for LiveQuoteNode {
    fn from(q: LiveQuote) -> Self {
        LiveQuoteNode {
            symbol: q.symbol,
            price: rampart_amount::to_f64(q.price),
            previous_close: q.previous_close.map(rampart_amount::to_f64),
            as_of: q.as_of,
            source: Json(q.source),
            age_ms: q.age_ms,
            stale: q.stale,
        }
    }
}

/// A symbol that could not be priced.
#[derive(SimpleObject)]
pub struct QuoteFailureNode {
    symbol: String,
    /// `unknown_symbol` or `market_unavailable`.
    code: String,
}

impl From<QuoteFailure> for QuoteFailureNode {
    fn from(f: QuoteFailure) -> Self {
        QuoteFailureNode {
            symbol: f.symbol,
            code: f.code.to_owned(),
        }
    }
}

/// One tick of a `quotes` subscription.
#[derive(SimpleObject)]
pub struct QuoteTick {
    /// When it was priced.
    at: DateTime<Utc>,
    /// The symbols priced, in symbol order.
    quotes: Vec<LiveQuoteNode>,
    /// The symbols that could not be.
    errors: Vec<QuoteFailureNode>,
}

/// The subscriptions.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Live prices of `symbols` (1 to 50, normalized) every
    /// `intervalSeconds` (1–300, default 5), the first at once (needs
    /// `market:read`; over `GET /api/graphql/t/{tenant}/ws` only).
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        symbols: Vec<String>,
        #[graphql(default = 5)] interval_seconds: i32,
    ) -> Result<impl Stream<Item = Result<QuoteTick>>> {
        let subscriber = ctx
            .data::<Subscriber>()
            .map_err(|_| ApiError::bad_request("subscriptions run over the WebSocket route"))
            .gql()?
            .clone();
        extract::require(&subscriber.principal, Permission::MarketRead).gql()?;
        if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
            let message = format!("symbols: 1 to {MAX_SYMBOLS}");
            return Err(ApiError::bad_request(message)).gql();
        }
        let mut normalized = std::collections::BTreeSet::new();
        for s in &symbols {
            let s = rampart_market::normalize_symbol(s)
                .map_err(|_| ApiError::bad_request("malformed symbol"))
                .gql()?;
            normalized.insert(s);
        }
        let symbols: Vec<String> = normalized.into_iter().collect();
        let every = Duration::from_secs(u64::try_from(interval_seconds.clamp(1, 300)).unwrap_or(5));
        let slot = Slot::take(&subscriber.active)
            .ok_or_else(|| {
                let message = format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection");
                ApiError::new(
                    actix_web::http::StatusCode::CONFLICT,
                    crate::error::ErrorCode::LimitReached,
                    message,
                )
            })
            .gql()?;
        let ticks = tokio::time::interval(every);
        Ok(futures::stream::unfold(
            (subscriber, symbols, ticks, Some(slot)),
            |(subscriber, symbols, mut ticks, slot)| async move {
                // The slot goes when the subscription ends (or is dropped).
                let slot = slot?;
                ticks.tick().await;
                if !subscriber.still_valid().await {
                    let e = Err(gql_error(ApiError::unauthorized()));
                    return Some((e, (subscriber, symbols, ticks, None)));
                }
                let (quotes, errors) =
                    live_quotes::priced(&subscriber.state.market, &symbols).await;
                let tick = QuoteTick {
                    at: Utc::now(),
                    quotes: quotes.into_iter().map(Into::into).collect(),
                    errors: errors.into_iter().map(Into::into).collect(),
                };
                Some((Ok(tick), (subscriber, symbols, ticks, Some(slot))))
            },
        ))
    }
}

// ------------------------------------------------------------ transport

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(subscribe));
}

/// GraphQL subscriptions (WebSocket, `graphql-transport-ws`).
#[utoipa::path(get, path = "/api/graphql/t/{tenant}/ws", params(SubscribeQuery), responses((status = 101, description = "WebSocket, subprotocol `graphql-transport-ws`: `connection_init` (its payload `{\"Authorization\": \"Bearer …\"}` when the handshake carries no token), then `subscribe` / `next` / `complete`; a refused `connection_init` closes with 4403 and the stable code as the reason"), (status = 400, description = "not a WebSocket handshake, or without the `graphql-transport-ws` subprotocol"), (status = 401, description = "the handshake's token is not valid for this tenant"), (status = 403, description = "no market:read, or the tenant's priceStream flag is off")))]
pub async fn subscribe(
    req: HttpRequest,
    state: web::Data<AppState>,
    schema: web::Data<RampartSchema>,
    tenant: web::Path<String>,
    query: web::Query<SubscribeQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant.into_inner();
    let state = state.get_ref().clone();
    // A token in the handshake: refused before the upgrade, as REST.
    let early = match extract::ws_bearer_token(&req, query.access_token.as_deref()) {
        Some(token) => {
            Some(Subscriber::authenticate(state.clone(), tenant.clone(), Some(token)).await?)
        }
        None => None,
    };
    let offered = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(PROTOCOL));
    if !offered {
        return Err(ApiError::bad_request(format!(
            "the {PROTOCOL} subprotocol is required"
        )));
    }
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &[PROTOCOL])
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {e}")))?;
    let connection = Connection {
        schema: schema.get_ref().clone(),
        state,
        tenant,
        early,
    };
    actix_web::rt::spawn(connection.run(session, messages.max_frame_size(MAX_FRAME)));
    Ok(response)
}

/// One client's connection, before `connection_init`.
struct Connection {
    schema: RampartSchema,
    state: AppState,
    tenant: String,
    /// Authenticated by the handshake.
    early: Option<Subscriber>,
}

impl Connection {
    async fn run(self, mut session: actix_ws::Session, mut messages: actix_ws::MessageStream) {
        // How `connection_init` went: accepted, or refused with this code.
        let outcome: Arc<OnceLock<Result<(), &'static str>>> = Arc::default();
        let log_tenant = self.tenant.clone();
        let init = {
            let outcome = outcome.clone();
            let Connection {
                state,
                tenant,
                early,
                ..
            } = self;
            move |payload: serde_json::Value| async move {
                let subscriber = match early {
                    Some(s) => Ok(s),
                    None => Subscriber::authenticate(state, tenant, init_token(&payload)).await,
                };
                match subscriber {
                    Ok(s) => {
                        let _ = outcome.set(Ok(()));
                        let mut data = Data::default();
                        data.insert(s);
                        Ok(data)
                    }
                    Err(e) => {
                        let code = e.code.as_str();
                        let _ = outcome.set(Err(code));
                        Err(async_graphql::Error::new(code))
                    }
                }
            }
        };
        let (inbox, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(INBOX);
        let input =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut engine = Box::pin(
            WebSocket::new(self.schema, input, WebSocketProtocols::GraphQLWS)
                .on_connection_init(init),
        );
        let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(init_deadline);
        let close: Option<(u16, String)> = loop {
            tokio::select! {
                () = &mut init_deadline, if outcome.get().is_none() => {
                    break Some((4408, "connection_init timeout".to_owned()));
                }
                msg = messages.recv() => match msg {
                    Some(Ok(actix_ws::Message::Text(text))) => {
                        if inbox.try_send(text.as_bytes().to_vec()).is_err() {
                            break Some((4429, "too many messages".to_owned()));
                        }
                    }
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        let pong = live_quotes::send_bounded(SEND_TIMEOUT, session.pong(&bytes));
                        if pong.await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(actix_ws::Message::Binary(_))) => {
                        break Some((4400, "text messages only".to_owned()));
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                },
                out = engine.next() => match out {
                    Some(WsMessage::Text(text)) => {
                        match live_quotes::send_bounded(SEND_TIMEOUT, session.text(text)).await {
                            Ok(()) => {}
                            Err(SendFailed::Closed) => break None,
                            Err(SendFailed::Slow) => {
                                tracing::info!(tenant = %log_tenant, "graphql subscription: slow client dropped");
                                break None;
                            }
                        }
                    }
                    // A refused `connection_init`: 4403 and the stable code.
                    Some(WsMessage::Close(code, reason)) => match outcome.get() {
                        Some(Err(refused)) => break Some((4403, (*refused).to_owned())),
                        _ => break Some((code, reason)),
                    },
                    None => break Some((1000, String::new())),
                },
            }
        };
        if let Some((code, description)) = close {
            let reason = actix_ws::CloseReason {
                code: actix_ws::CloseCode::from(code),
                description: Some(description),
            };
            let _ = live_quotes::send_bounded(SEND_TIMEOUT, session.close(Some(reason))).await;
        }
    }
}
