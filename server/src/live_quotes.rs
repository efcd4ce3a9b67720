//! Live quotes as the WebSocket streams send them (the market stream and the
//! GraphQL `quotes` subscription): each symbol priced through the market
//! chain (stale answers allowed, marked), with its provenance and age; the
//! symbols that could not be priced, with a code. And the streams' one
//! backpressure policy ([`send_bounded`]): a message a client does not take
//! in time drops the client; nothing is buffered without bound.
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_amount::Decimal;
use rampart_market::{MarketError, ProviderChain, Source, Staleness};
use serde::Serialize;

/// Symbols one stream (a market-stream connection, a subscription) may
/// watch at once.
pub const MAX_SYMBOLS: usize = 50;
/// How long a message may wait for a slow client before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A priced symbol: `{"symbol", "price", "previousClose", "asOf", "source",
/// "ageMs", "stale"}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveQuote {
    /// The symbol, normalized.
    pub symbol: String,
    /// Last price.
    #[serde(with = "rampart_amount")]
    pub price: Decimal,
    /// Previous close, when known.
    #[serde(with = "rampart_amount::option")]
    pub previous_close: Option<Decimal>,
    /// When the vendor observed the price.
    pub as_of: DateTime<Utc>,
    /// Who served it.
    pub source: Source,
    /// Milliseconds since it was fetched.
    pub age_ms: u64,
    /// True: every provider failed; a last known value.
    pub stale: bool,
}

/// A symbol that could not be priced: `{"symbol", "code"}` (`unknown_symbol`
/// or `market_unavailable`).
#[derive(Debug, Clone, Serialize)]
pub struct QuoteFailure {
    /// The symbol.
    pub symbol: String,
    /// Why, as a stable code.
    pub code: &'static str,
}

/// (`quotes`, `errors`) for `symbols`.
pub async fn priced(
    market: &ProviderChain,
    symbols: &[String],
) -> (Vec<LiveQuote>, Vec<QuoteFailure>) {
    let mut quotes = Vec::new();
    let mut errors = Vec::new();
    for (symbol, r) in market.quotes(symbols, Staleness::AllowStale).await {
        match r {
            Ok(served) => quotes.push(LiveQuote {
                symbol,
                price: served.value.price,
                previous_close: served.value.previous_close,
                as_of: served.value.as_of,
                source: served.source,
                age_ms: u64::try_from(served.age.as_millis()).unwrap_or(u64::MAX),
                stale: served.stale,
            }),
            Err(e) => errors.push(QuoteFailure {
                symbol,
                code: match e {
                    MarketError::UnknownSymbol { .. } => "unknown_symbol",
                    _ => "market_unavailable",
                },
            }),
        }
    }
    (quotes, errors)
}

/// Why a send did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailed {
    /// The client closed the connection.
    Closed,
    /// The client did not take the message within the limit (its socket and
    /// the session's 32-message queue full): drop it.
    Slow,
}

/// The backpressure policy of the streams: `send` (a send on an
/// `actix_ws::Session`, whose queue is bounded) must complete within
/// `limit` ([`SEND_TIMEOUT`] in the streams), else the client is too slow.
pub async fn send_bounded<F>(limit: Duration, send: F) -> Result<(), SendFailed>
where
    F: Future<Output = Result<(), actix_ws::Closed>>,
{
    match tokio::time::timeout(limit, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendFailed::Closed),
        Err(_) => Err(SendFailed::Slow),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A client that never reads: its messages fill the session's bounded
    /// queue (nothing takes the response body here), then a send waits and
    /// is refused as slow: the stream drops the client instead of buffering.
    #[actix_web::test]
    async fn a_client_that_never_reads_is_dropped_once_its_queue_is_full() {
        let req = actix_web::test::TestRequest::get()
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "upgrade"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .to_http_parts();
        let (req, mut payload) = req;
        let payload =
            <actix_web::web::Payload as actix_web::FromRequest>::from_request(&req, &mut payload)
                .await
                .unwrap();
        let (response, mut session, _messages) = actix_ws::handle(&req, payload).unwrap();
        let limit = Duration::from_millis(200);
        let mut sent = 0;
        let failed = loop {
            match send_bounded(limit, session.text(format!("quote {sent}"))).await {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent <= 1_000, "the queue is not bounded");
        };
        assert_eq!(failed, SendFailed::Slow);
        assert_eq!(sent, 32, "the session queue holds 32 messages");
        drop(response);
        // The client gone (its body dropped): a closed session, not a wait.
        let after = send_bounded(limit, session.text("more")).await;
        assert_eq!(after, Err(SendFailed::Closed));
    }
}
