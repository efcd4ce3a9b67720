//! Logs and traces. Logs go to standard error (text, or JSON lines), with
//! colour only on a terminal. Traces are exported over OTLP/HTTP (protobuf)
//! when `[telemetry] otlp_endpoint` is set, and are off otherwise: one span
//! per request ([`trace_request`]) whose parent is the caller's W3C
//! `traceparent`, with the library crates' spans (PostgreSQL checkouts and
//! transactions, Redis, Vault, market vendor calls) as its children.
//!
//! The telemetry section is read before anything else starts (see
//! [`TelemetryConfig::load`]), from the same sources as the rest of the
//! configuration, so `rampart demo` can export too
//! (`RAMPART_TELEMETRY__OTLP_ENDPOINT=http://localhost:4318`).
use std::io::IsTerminal;
use std::path::Path;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// `[telemetry]`: trace export. Off unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector's base URL, e.g. `http://localhost:4318`
    /// (spans are posted to `<endpoint>/v1/traces`; an endpoint that
    /// already ends with `/v1/traces` is used as it is). Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of new traces kept (0.0–1.0). A request that carries a
    /// `traceparent` follows its caller's sampling decision.
    pub sample_ratio: f64,
    /// Time allowed for one export request.
    pub export_timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "rampart".into(),
            sample_ratio: 1.0,
            export_timeout_ms: 10_000,
        }
    }
}

impl TelemetryConfig {
    /// The `[telemetry]` section alone, from `file` (if given) and
    /// `RAMPART_TELEMETRY__…` variables: read before logging starts, so
    /// problems with the rest of the configuration are still logged.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut figment = Figment::new();
        if let Some(path) = file.filter(|p| p.exists()) {
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("RAMPART_TELEMETRY__")
                .map(|k| format!("telemetry.{}", k.as_str().to_ascii_lowercase()).into()),
        );
        let config: Self = match figment.find_value("telemetry") {
            Ok(_) => figment
                .extract_inner("telemetry")
                .map_err(|e| e.to_string())?,
            Err(_) => Self::default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The first problem with these values.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("telemetry.sample_ratio must be between 0.0 and 1.0".into());
        }
        if let Some(e) = &self.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err("telemetry.otlp_endpoint must be an http:// or https:// URL".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name must not be empty".into());
        }
        Ok(())
    }

    /// Where spans are posted.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        Some(if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        })
    }
}

/// Keeps the trace pipeline alive; dropping it flushes the spans not yet
/// exported (at the end of `main`).
#[derive(Default)]
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("trace export: shutdown: {e}");
        }
    }
}

/// Colour in logs only when both standard output and standard error are
/// terminals and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn use_colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Starts logging to standard error (text, or JSON lines with `json`; the
/// filter comes from `RAMPART_LOG`, default `info`) and, when `telemetry`
/// names a collector, trace export.
pub fn init(json: bool, telemetry: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_env("RAMPART_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(use_colour());
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    }];
    let mut guard = TelemetryGuard::default();
    if let Some(url) = telemetry.traces_url() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(std::time::Duration::from_millis(
                telemetry.export_timeout_ms.max(1),
            ))
            .build()?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(telemetry.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                telemetry.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("rampart");
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::filter_fn(exported))
                .boxed(),
        );
        guard.provider = Some(provider);
    }
    tracing_subscriber::registry().with(layers).try_init()?;
    Ok(guard)
}

/// What the trace pipeline takes: Rampart's own spans (they are at `debug`
/// so that they cost nothing when traces are off) and `info` and above
/// from everything (events become span events).
fn exported(meta: &tracing::Metadata<'_>) -> bool {
    let ours = meta.target().starts_with("rampart");
    if meta.is_span() && ours {
        *meta.level() <= tracing::Level::DEBUG
    } else {
        *meta.level() <= tracing::Level::INFO
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// One span per request (`<method> <route pattern>`), with the tenant, the
/// route pattern, the status and the request id; the caller's
/// `traceparent` is its parent. Costs nothing while traces are off.
pub async fn trace_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().to_string();
    // The name is fixed when the span starts: the pattern comes from the
    // app's resource map, before routing.
    let name = match req.match_pattern() {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let span = tracing::debug_span!(
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = Empty,
        http.response.status_code = Empty,
        tenant = Empty,
        request_id = Empty,
    );
    if span.is_disabled() {
        return next.call(req).await;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    let _ = span.set_parent(parent);
    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(res) => {
            let request = res.request();
            let route = request
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            span.record("http.route", route.as_str());
            if let Some(tenant) = request.match_info().get("tenant") {
                span.record("tenant", tenant);
            }
            if let Some(id) = res
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
            {
                span.record("request_id", id);
            }
            res.status()
        }
        Err(e) => e.as_response_error().status_code(),
    };
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    result
}
