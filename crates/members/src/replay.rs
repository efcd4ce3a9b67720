//! A built-in replay of the broker: a local, in-process HTTP server
//! answering `GET /v2/account` and `GET /v2/positions` in the shapes Alpaca's
//! trading API documents, for the accounts it was given. `rampart demo`
//! generates its members' snapshots through the real [`crate::SnapshotJob`]
//! against it, and the tests use it (and [`account_body`] /
//! [`position_body`]) as their broker.
//!
//! Plain HTTP on 127.0.0.1 only, one request per connection; an unknown key
//! id or a wrong secret answers 401 with Alpaca's error body.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::MembersError;

/// The largest request head the replay reads.
const MAX_HEAD: usize = 16 * 1024;

/// One position of a replayed account.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayPosition {
    /// Ticker.
    pub symbol: String,
    /// Shares (negative: short).
    pub qty: Decimal,
    /// Average entry price.
    pub avg_entry_price: Decimal,
    /// Current price.
    pub current_price: Decimal,
}

/// What the replay answers for one key pair.
#[derive(Clone, PartialEq)]
pub struct ReplayAccount {
    /// The secret the requests must carry (`APCA-API-SECRET-KEY`).
    pub secret_key: String,
    /// Equity now.
    pub equity: Decimal,
    /// Equity at the previous close.
    pub last_equity: Decimal,
    /// Cash.
    pub cash: Decimal,
    /// Open positions.
    pub positions: Vec<ReplayPosition>,
}

impl std::fmt::Debug for ReplayAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayAccount")
            .field("equity", &self.equity)
            .field("last_equity", &self.last_equity)
            .field("cash", &self.cash)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

/// `GET /v2/account` as Alpaca documents it (amounts as decimal strings).
pub fn account_body(account_number: &str, equity: &str, last_equity: &str, cash: &str) -> Value {
    json!({
        "id": "904837e3-3b76-47ec-b432-046db621571b",
        "account_number": account_number,
        "status": "ACTIVE",
        "currency": "USD",
        "cash": cash,
        "portfolio_value": equity,
        "equity": equity,
        "last_equity": last_equity,
        "buying_power": cash,
        "pattern_day_trader": false,
        "trading_blocked": false,
        "account_blocked": false,
        "created_at": "2026-01-02T15:04:05.123456Z"
    })
}

/// One element of `GET /v2/positions` as Alpaca documents it.
pub fn position_body(p: &ReplayPosition) -> Value {
    let market_value = p.qty * p.current_price;
    let cost = p.qty * p.avg_entry_price;
    json!({
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": p.symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "qty": p.qty.to_string(),
        "side": if p.qty.is_sign_negative() { "short" } else { "long" },
        "avg_entry_price": p.avg_entry_price.to_string(),
        "current_price": p.current_price.to_string(),
        "market_value": market_value.to_string(),
        "cost_basis": cost.to_string(),
        "unrealized_pl": (market_value - cost).to_string()
    })
}

type Accounts = Arc<RwLock<HashMap<String, ReplayAccount>>>;

/// The running replay; stops when dropped.
#[derive(Debug)]
pub struct AlpacaReplay {
    addr: SocketAddr,
    accounts: Accounts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AlpacaReplay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AlpacaReplay {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> Result<Self, MembersError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| MembersError::Broker(format!("broker replay: cannot listen: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| MembersError::Broker(format!("broker replay: {e}")))?;
        let accounts: Accounts = Arc::default();
        let served = accounts.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let accounts = served.clone();
                tokio::spawn(async move {
                    // A client that goes away mid-request is no concern.
                    let _ = serve(stream, &accounts).await;
                });
            }
        });
        Ok(Self {
            addr,
            accounts,
            task,
        })
    }

    /// The base URL to give the snapshot job (`broker_base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets (or replaces) what the replay answers for `key_id`.
    pub fn set(&self, key_id: &str, account: ReplayAccount) {
        if let Ok(mut map) = self.accounts.write() {
            map.insert(key_id.to_owned(), account);
        }
    }

    /// Forgets `key_id` (its requests then answer 401).
    pub fn remove(&self, key_id: &str) {
        if let Ok(mut map) = self.accounts.write() {
            map.remove(key_id);
        }
    }
}

/// Equal secrets, compared through their digests (no early exit on the
/// secret's bytes).
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// What one request gets: status and JSON body.
fn answer(head: &str, accounts: &Accounts) -> (u16, Value) {
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or("").split(' ');
    let (method, path) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let mut key_id = None;
    let mut secret = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("APCA-API-KEY-ID") {
                key_id = Some(value.trim());
            } else if name.eq_ignore_ascii_case("APCA-API-SECRET-KEY") {
                secret = Some(value.trim());
            }
        }
    }
    let unauthorized = (
        401,
        json!({"code": 40110000, "message": "request is not authorized"}),
    );
    let Ok(map) = accounts.read() else {
        return (500, json!({"code": 50010000, "message": "internal error"}));
    };
    let account = match (key_id.and_then(|k| map.get(k)), secret) {
        (Some(a), Some(s)) if same_secret(&a.secret_key, s) => a,
        _ => return unauthorized,
    };
    match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/v2/account") => (
            200,
            account_body(
                "PA1DEMO",
                &account.equity.to_string(),
                &account.last_equity.to_string(),
                &account.cash.to_string(),
            ),
        ),
        ("GET", "/v2/positions") => (
            200,
            Value::Array(account.positions.iter().map(position_body).collect()),
        ),
        _ => (
            404,
            json!({"code": 40410000, "message": "endpoint not found"}),
        ),
    }
}

async fn serve(mut stream: TcpStream, accounts: &Accounts) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (status, body) = answer(&String::from_utf8_lossy(&head), accounts);
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
