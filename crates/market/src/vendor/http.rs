//! HTTP plumbing shared by the vendor adapters: status mapping, `Retry-After`,
//! HTML-instead-of-JSON detection. Keys never reach an error message
//! (reqwest errors are stripped of their URL).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_amount::Decimal;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{MarketError, Result};

/// A 2xx or vendor-interpreted 4xx answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

/// A reqwest client bound to one provider name (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    provider: String,
}

/// Builds the default client: connect timeout only; the chain owns call timeouts.
pub(crate) fn default_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("rampart-market/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| MarketError::Config(format!("HTTP client: {}", e.without_url())))
}

impl Http {
    pub fn new(provider: &str, client: Option<reqwest::Client>) -> Result<Self> {
        let client = match client {
            Some(c) => c,
            None => default_client()?,
        };
        Ok(Self {
            client,
            provider: provider.to_owned(),
        })
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// GET `url` with query parameters and headers. 429, 401/403 and 5xx become
    /// typed errors; other statuses are returned for the adapter to interpret.
    ///
    /// Traced as a client span (provider, host, status; never the query,
    /// which may hold a key) whose W3C `traceparent` goes with the request
    /// when trace export is on.
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
    ) -> Result<Reply> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let span = tracing::debug_span!(
            "market.vendor",
            otel.name = %format!("GET {}", self.provider),
            otel.kind = "client",
            provider = %self.provider,
            http.request.method = "GET",
            server.address = %host,
            http.response.status_code = tracing::field::Empty,
        );
        self.send_get(url, query, headers).instrument(span).await
    }

    async fn send_get(
        &self,
        url: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
    ) -> Result<Reply> {
        let mut request = self.client.get(url).query(query);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        for (name, value) in trace_context() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let retry_after = parse_retry_after(response.headers(), Utc::now());
        let body = response.text().await.map_err(|e| self.transport(e))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(MarketError::RateLimited {
                provider: self.provider.clone(),
                retry_after,
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(MarketError::Unauthorized {
                provider: self.provider.clone(),
                detail: snippet(&body),
            });
        }
        if status.is_server_error() || status.is_informational() || status.is_redirection() {
            return Err(MarketError::Upstream {
                provider: self.provider.clone(),
                status: status.as_u16(),
                detail: snippet(&body),
            });
        }
        Ok(Reply { status, body })
    }

    /// Parses a JSON body, catching the HTML error pages some vendors (or the
    /// proxies in front of them) send with a 200.
    pub fn json<T: DeserializeOwned>(&self, body: &str) -> Result<T> {
        if looks_like_html(body) {
            return Err(MarketError::malformed(
                &self.provider,
                format!("HTML instead of JSON: {}", snippet(body)),
            ));
        }
        serde_json::from_str(body)
            .map_err(|e| MarketError::malformed(&self.provider, format!("bad JSON: {e}")))
    }

    /// An unexpected 4xx as an error.
    pub fn unexpected(&self, reply: &Reply) -> MarketError {
        MarketError::Upstream {
            provider: self.provider.clone(),
            status: reply.status.as_u16(),
            detail: snippet(&reply.body),
        }
    }

    fn transport(&self, e: reqwest::Error) -> MarketError {
        let e = e.without_url();
        if e.is_timeout() {
            MarketError::Timeout {
                provider: self.provider.clone(),
                after: Duration::ZERO,
            }
        } else if e.is_decode() || e.is_body() {
            MarketError::Transport {
                provider: self.provider.clone(),
                detail: format!("body cut short: {e}"),
            }
        } else {
            MarketError::Transport {
                provider: self.provider.clone(),
                detail: error_chain(&e),
            }
        }
    }
}

/// The propagation headers (`traceparent`, `tracestate`) of the current
/// span; none while no propagator is installed (trace export off).
fn trace_context() -> Vec<(String, String)> {
    struct Carrier(Vec<(String, String)>);
    impl opentelemetry::propagation::Injector for Carrier {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_owned(), value));
        }
    }
    let mut carrier = Carrier(Vec::new());
    opentelemetry::global::get_text_map_propagator(|p| p.inject(&mut carrier));
    carrier.0
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

pub(crate) fn looks_like_html(body: &str) -> bool {
    let head = body.trim_start();
    head.starts_with('<')
}

/// The first 200 characters of a body, for error messages.
pub(crate) fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_owned(),
    }
}

/// Joins a base URL and a path without doubling slashes.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Deserializes a number that vendors sometimes send as a string.
pub(crate) fn parse_f64(provider: &str, field: &str, value: &str) -> Result<f64> {
    value
        .trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .map_err(|_| MarketError::malformed(provider, format!("{field}: not a number: `{value}`")))
}

/// A price vendors send as text, kept exactly (`"187.2300"` is 187.23);
/// anything but decimal text (`NaN`, `inf`, `N/D`) is a malformed answer.
pub(crate) fn parse_price(provider: &str, field: &str, value: &str) -> Result<Decimal> {
    rampart_amount::parse(value)
        .ok_or_else(|| MarketError::malformed(provider, format!("{field}: not a price: `{value}`")))
}

/// An optional price as text (`"None"`, `"-"`, empty → `None`).
pub(crate) fn opt_price(value: Option<&str>) -> Option<Decimal> {
    rampart_amount::parse(value?)
}

/// A price a vendor sends as a JSON number: serde_json reads it as the
/// nearest `f64`, whose shortest text is the number as written (`187.23`).
pub(crate) fn json_price(provider: &str, field: &str, value: f64) -> Result<Decimal> {
    rampart_amount::from_f64(value)
        .ok_or_else(|| MarketError::malformed(provider, format!("{field}: not a finite price")))
}

/// [`json_price`] of an optional number.
pub(crate) fn opt_json_price(
    provider: &str,
    field: &str,
    value: Option<f64>,
) -> Result<Option<Decimal>> {
    value.map(|v| json_price(provider, field, v)).transpose()
}

/// An optional numeric string (`"None"`, `"-"`, empty → `None`).
pub(crate) fn opt_f64(value: Option<&str>) -> Option<f64> {
    let v = value?.trim();
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}
