//! Prometheus metrics: per-provider call counters and latency histograms,
//! breaker state gauges, cache hits per layer, coalescing and stale serving.
//! Registered into a [`prometheus::Registry`] the server exposes on `/metrics`.

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::error::{MarketError, Result};

/// The crate's metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MarketMetrics {
    registry: Registry,
    /// `market_provider_calls_total{provider, operation, outcome}`.
    pub calls: IntCounterVec,
    /// `market_provider_call_seconds{provider, operation}`.
    pub latency: HistogramVec,
    /// `market_breaker_state{provider}`: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.
    pub breaker_state: IntGaugeVec,
    /// `market_breaker_transitions_total{provider, to}`.
    pub breaker_transitions: IntCounterVec,
    /// `market_cache_requests_total{layer, result}` (result: hit, miss, error).
    pub cache: IntCounterVec,
    /// `market_served_total{source, stale}`.
    pub served: IntCounterVec,
    /// `market_coalesced_requests_total`: requests that joined another's upstream call.
    pub coalesced: IntCounter,
    /// `market_rejected_rows_total{provider}`: bars dropped by validation.
    pub rejected_rows: IntCounterVec,
}

fn reg_err(e: prometheus::Error) -> MarketError {
    MarketError::Config(format!("metrics: {e}"))
}

impl MarketMetrics {
    /// Metrics in a registry of their own.
    pub fn new() -> Result<Self> {
        Self::register(&Registry::new())
    }

    /// Metrics registered into `registry` (the server's).
    pub fn register(registry: &Registry) -> Result<Self> {
        let calls = IntCounterVec::new(
            Opts::new(
                "market_provider_calls_total",
                "Calls to market-data providers by outcome",
            ),
            &["provider", "operation", "outcome"],
        )
        .map_err(reg_err)?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "market_provider_call_seconds",
                "Latency of market-data provider calls",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["provider", "operation"],
        )
        .map_err(reg_err)?;
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "market_breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled",
            ),
            &["provider"],
        )
        .map_err(reg_err)?;
        let breaker_transitions = IntCounterVec::new(
            Opts::new(
                "market_breaker_transitions_total",
                "Circuit breaker state changes",
            ),
            &["provider", "to"],
        )
        .map_err(reg_err)?;
        let cache = IntCounterVec::new(
            Opts::new(
                "market_cache_requests_total",
                "Cache lookups by layer and result",
            ),
            &["layer", "result"],
        )
        .map_err(reg_err)?;
        let served = IntCounterVec::new(
            Opts::new(
                "market_served_total",
                "Answers by the layer that served them",
            ),
            &["source", "stale"],
        )
        .map_err(reg_err)?;
        let coalesced = IntCounter::new(
            "market_coalesced_requests_total",
            "Requests that shared another request's upstream call",
        )
        .map_err(reg_err)?;
        let rejected_rows = IntCounterVec::new(
            Opts::new("market_rejected_rows_total", "Bars dropped by validation"),
            &["provider"],
        )
        .map_err(reg_err)?;
        let collectors: [Box<dyn Collector>; 8] = [
            Box::new(calls.clone()),
            Box::new(latency.clone()),
            Box::new(breaker_state.clone()),
            Box::new(breaker_transitions.clone()),
            Box::new(cache.clone()),
            Box::new(served.clone()),
            Box::new(coalesced.clone()),
            Box::new(rejected_rows.clone()),
        ];
        for c in collectors {
            registry.register(c).map_err(reg_err)?;
        }
        Ok(Self {
            registry: registry.clone(),
            calls,
            latency,
            breaker_state,
            breaker_transitions,
            cache,
            served,
            coalesced,
            rejected_rows,
        })
    }

    /// The registry the metrics live in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub(crate) fn cache_result(&self, layer: &str, result: &str) {
        self.cache.with_label_values(&[layer, result]).inc();
    }

    /// A fresh answer straight from L1: a cache hit and a served value.
    pub(crate) fn served_from_l1(&self) {
        self.cache_result("l1", "hit");
        self.served.with_label_values(&["l1", "false"]).inc();
    }
}
