//! Prometheus metrics of the server (prometheus crate). Labels are bounded:
//! routes are their patterns (`/t/{tenant}/oauth/token`), never raw paths or
//! tenant slugs.
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served at `/metrics` (crates may register into it).
    pub registry: Registry,
    /// Requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// Latency by route pattern and method.
    pub http_latency: HistogramVec,
    /// Requests being served.
    pub in_flight: IntGauge,
    /// Database pool connections by state (size, available, waiting).
    pub db_pool: IntGaugeVec,
    /// 1 when a dependency answered its last probe (postgres, redis, vault).
    pub dependency_up: IntGaugeVec,
    /// Auth events by kind and result.
    pub auth_events: IntCounterVec,
    /// Tenant provisioning durations.
    pub provision_seconds: HistogramVec,
    /// Rate-limit refusals by scope (ip, tenant, api_key).
    pub rate_limited: IntCounterVec,
    /// Process start time (seconds since the epoch).
    pub start_time: Gauge,
    /// When each scheduled job last finished a run (seconds since the epoch).
    pub job_last_run: GaugeVec,
    /// Run time of each scheduled job.
    pub job_duration: HistogramVec,
    /// Runs of each scheduled job by result (`success`, `failure`).
    pub job_runs: IntCounterVec,
    /// The ingestion job's progress: symbols of the current (or last) run,
    /// `total` and `done`.
    pub ingest_symbols: IntGaugeVec,
    /// Spare tenant schemas of the running template waiting to be claimed
    /// by a provisioning (the `spares` job's last count).
    pub spare_schemas: IntGauge,
    /// Daily bars the ingestion job stored, by `inserted`, `updated`,
    /// `unchanged`.
    pub ingest_rows: IntCounterVec,
}

fn err(e: prometheus::Error) -> anyhow::Error {
    anyhow::anyhow!("metrics: {e}")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("rampart".into()), None).map_err(err)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["listener", "route", "method", "status"],
        )
        .map_err(err)?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["listener", "route", "method"],
        )
        .map_err(err)?;
        let in_flight =
            IntGauge::new("http_requests_in_flight", "HTTP requests being served").map_err(err)?;
        let spare_schemas = IntGauge::new(
            "tenant_spare_schemas",
            "Spare tenant schemas of the running template waiting to be claimed",
        )
        .map_err(err)?;
        let db_pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .map_err(err)?;
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "dependency_up",
                "1 when the dependency answered its last probe",
            ),
            &["dependency"],
        )
        .map_err(err)?;
        let auth_events = IntCounterVec::new(
            Opts::new("auth_events_total", "Authentication events"),
            &["event", "result"],
        )
        .map_err(err)?;
        let provision_seconds = HistogramVec::new(
            HistogramOpts::new(
                "tenant_provision_duration_seconds",
                "Tenant provisioning time",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["result"],
        )
        .map_err(err)?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by rate limits"),
            &["scope"],
        )
        .map_err(err)?;
        let start_time =
            Gauge::new("process_start_time_seconds", "Start time of the process").map_err(err)?;
        start_time.set(chrono::Utc::now().timestamp() as f64);
        let job_last_run = GaugeVec::new(
            Opts::new(
                "job_last_run_timestamp_seconds",
                "When the job last finished a run",
            ),
            &["job"],
        )
        .map_err(err)?;
        let job_duration = HistogramVec::new(
            HistogramOpts::new("job_duration_seconds", "Run time of scheduled jobs").buckets(vec![
                0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
            ]),
            &["job"],
        )
        .map_err(err)?;
        let job_runs = IntCounterVec::new(
            Opts::new("job_runs_total", "Runs of scheduled jobs by result"),
            &["job", "result"],
        )
        .map_err(err)?;
        let ingest_symbols = IntGaugeVec::new(
            Opts::new(
                "market_ingest_symbols",
                "Symbols of the current or last ingestion run (total, done)",
            ),
            &["state"],
        )
        .map_err(err)?;
        let ingest_rows = IntCounterVec::new(
            Opts::new("market_ingest_rows_total", "Daily bars stored by ingestion"),
            &["kind"],
        )
        .map_err(err)?;
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ingest_symbols.clone()),
            Box::new(ingest_rows.clone()),
            Box::new(http_latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(spare_schemas.clone()),
            Box::new(db_pool.clone()),
            Box::new(dependency_up.clone()),
            Box::new(auth_events.clone()),
            Box::new(provision_seconds.clone()),
            Box::new(rate_limited.clone()),
            Box::new(start_time.clone()),
            Box::new(job_last_run.clone()),
            Box::new(job_duration.clone()),
            Box::new(job_runs.clone()),
        ] {
            registry.register(c).map_err(err)?;
        }
        Ok(Self {
            registry,
            http_requests,
            http_latency,
            in_flight,
            spare_schemas,
            db_pool,
            dependency_up,
            auth_events,
            provision_seconds,
            rate_limited,
            start_time,
            job_last_run,
            job_duration,
            job_runs,
            ingest_symbols,
            ingest_rows,
        })
    }

    /// Records one run of a scheduled job.
    pub fn record_job(&self, job: &str, took: std::time::Duration, ok: bool) {
        self.job_last_run
            .with_label_values(&[job])
            .set(chrono::Utc::now().timestamp_millis() as f64 / 1e3);
        self.job_duration
            .with_label_values(&[job])
            .observe(took.as_secs_f64());
        let result = if ok { "success" } else { "failure" };
        self.job_runs.with_label_values(&[job, result]).inc();
    }

    /// The text exposition of this registry plus `extra` registries.
    pub fn render(&self, extra: &[&Registry]) -> String {
        let mut families = self.registry.gather();
        for r in extra {
            families.extend(r.gather());
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
