//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong while getting market data.
///
/// Errors are `Clone` because a coalesced request hands the same outcome to
/// every waiter. Two verdicts matter to callers:
///
/// * [`MarketError::retryable`]: asking again (later, or another provider) may
///   succeed. The retry layer only retries retryable errors.
/// * [`MarketError::is_provider_fault`]: the provider misbehaved. Only these
///   count against a circuit breaker; an unknown symbol or an unsupported
///   operation is an answer, not a failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MarketError {
    /// The provider does not know the symbol.
    #[error("{provider}: unknown symbol `{symbol}`")]
    UnknownSymbol {
        /// Provider name.
        provider: String,
        /// The symbol asked for.
        symbol: String,
    },
    /// The provider does not offer this operation.
    #[error("{provider}: `{operation}` is not supported")]
    Unsupported {
        /// Provider name.
        provider: String,
        /// The operation (`news`, `fundamentals`, `search`…).
        operation: &'static str,
    },
    /// The vendor refused the call because of its quota (HTTP 429, or a quota
    /// message in a 200 body).
    #[error("{provider}: rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// Provider name.
        provider: String,
        /// The vendor's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// Our own token bucket for this provider has no token in time.
    #[error("{provider}: local rate limit, next token in {wait:?}")]
    Throttled {
        /// Provider name.
        provider: String,
        /// How long until a token is available.
        wait: Duration,
    },
    /// The API key was refused (HTTP 401/403, or an auth message in a body).
    #[error("{provider}: credentials refused: {detail}")]
    Unauthorized {
        /// Provider name.
        provider: String,
        /// What the vendor said.
        detail: String,
    },
    /// The call did not finish within its timeout.
    #[error("{provider}: timed out after {after:?}")]
    Timeout {
        /// Provider name.
        provider: String,
        /// The timeout.
        after: Duration,
    },
    /// The vendor answered with a server error (5xx) or another unexpected status.
    #[error("{provider}: HTTP {status}: {detail}")]
    Upstream {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        detail: String,
    },
    /// The connection failed (refused, reset, TLS, body cut short).
    #[error("{provider}: transport error: {detail}")]
    Transport {
        /// Provider name.
        provider: String,
        /// What failed.
        detail: String,
    },
    /// The body was not what the vendor documents (bad JSON, HTML, missing fields).
    #[error("{provider}: malformed response: {detail}")]
    Malformed {
        /// Provider name.
        provider: String,
        /// What was wrong.
        detail: String,
    },
    /// The provider's circuit breaker is open: no call was made.
    #[error("{provider}: circuit open, next trial in {retry_in:?}")]
    CircuitOpen {
        /// Provider name.
        provider: String,
        /// Time until the breaker lets a trial call through (zero when forced open).
        retry_in: Duration,
    },
    /// Every provider failed and no cached value could stand in.
    #[error("all providers failed: {}", summarize(.failures))]
    AllProvidersFailed {
        /// One line per provider tried, in order.
        failures: Vec<ProviderFailure>,
    },
    /// No provider is configured for the request.
    #[error("no provider configured")]
    NoProvider,
    /// The request itself is wrong (empty symbol, `from` after `to`…).
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// The PostgreSQL store failed.
    #[error("store error: {0}")]
    Store(String),
    /// The configuration is unusable.
    #[error("configuration error: {0}")]
    Config(String),
}

/// One provider's failure inside [`MarketError::AllProvidersFailed`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderFailure {
    /// Provider name.
    pub provider: String,
    /// Its error.
    pub error: Box<MarketError>,
}

fn summarize(failures: &[ProviderFailure]) -> String {
    if failures.is_empty() {
        return "none tried".into();
    }
    failures
        .iter()
        .map(|f| f.error.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl MarketError {
    /// Whether asking again (after a pause, or elsewhere) may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Throttled { .. }
            | Self::Timeout { .. }
            | Self::Upstream { .. }
            | Self::Transport { .. }
            | Self::Malformed { .. }
            | Self::CircuitOpen { .. }
            | Self::Store(_) => true,
            Self::AllProvidersFailed { failures } => failures.iter().any(|f| f.error.retryable()),
            Self::UnknownSymbol { .. }
            | Self::Unsupported { .. }
            | Self::Unauthorized { .. }
            | Self::NoProvider
            | Self::InvalidInput(_)
            | Self::Config(_) => false,
        }
    }

    /// Whether the error says the provider is unhealthy (counts against its
    /// circuit breaker). Unknown symbols, unsupported operations, rate limits
    /// (handled separately by the breaker) and local errors do not.
    pub fn is_provider_fault(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Upstream { .. }
                | Self::Transport { .. }
                | Self::Malformed { .. }
                | Self::Unauthorized { .. }
        )
    }

    /// Whether the chain should try the next provider after this error. Only a
    /// bad request stops it: another vendor may know a symbol this one lacks.
    pub fn falls_back(&self) -> bool {
        !matches!(self, Self::InvalidInput(_))
    }

    /// The vendor's `Retry-After`, if the error carries one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable code for logs, metrics labels and HTTP mapping.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSymbol { .. } => "unknown_symbol",
            Self::Unsupported { .. } => "unsupported",
            Self::RateLimited { .. } => "rate_limited",
            Self::Throttled { .. } => "throttled",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Timeout { .. } => "timeout",
            Self::Upstream { .. } => "upstream",
            Self::Transport { .. } => "transport",
            Self::Malformed { .. } => "malformed",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::AllProvidersFailed { .. } => "all_providers_failed",
            Self::NoProvider => "no_provider",
            Self::InvalidInput(_) => "invalid_input",
            Self::Store(_) => "store",
            Self::Config(_) => "config",
        }
    }

    pub(crate) fn malformed(provider: &str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            provider: provider.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn unknown(provider: &str, symbol: &str) -> Self {
        Self::UnknownSymbol {
            provider: provider.to_owned(),
            symbol: symbol.to_owned(),
        }
    }

    pub(crate) fn unsupported(provider: &str, operation: &'static str) -> Self {
        Self::Unsupported {
            provider: provider.to_owned(),
            operation,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = MarketError> = std::result::Result<T, E>;
