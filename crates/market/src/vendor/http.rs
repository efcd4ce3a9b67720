//! HTTP plumbing shared by the vendor adapters: status mapping, `Retry-After`,
//! HTML-instead-of-JSON detection. Keys never reach an error message
//! (reqwest errors are stripped of their URL).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

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
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
    ) -> Result<Reply> {
        let mut request = self.client.get(url).query(query);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
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

/// An optional numeric string (`"None"`, `"-"`, empty → `None`).
pub(crate) fn opt_f64(value: Option<&str>) -> Option<f64> {
    let v = value?.trim();
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}
