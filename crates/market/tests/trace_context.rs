//! Vendor calls are client spans that carry the W3C `traceparent` of the
//! caller's trace (what the server exports over OTLP), and carry nothing
//! when no propagator is installed.
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use rampart_market::MarketDataProvider;
use rampart_market::vendor::FinnhubProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{init, settings};

#[tokio::test(flavor = "current_thread")]
async fn vendor_calls_carry_the_callers_trace() {
    init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/quote"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                include_str!("fixtures/finnhub_quote.json")
                    .as_bytes()
                    .to_vec(),
                "application/json",
            ),
        )
        .mount(&server)
        .await;
    let provider = FinnhubProvider::new(settings("finnhub", &server.uri())).unwrap();

    // Without a trace pipeline: no header.
    provider.quote("AAPL").await.unwrap();

    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let caller = tracing::info_span!("caller");
    let caller_context = caller.context().span().span_context().clone();
    assert!(caller_context.is_valid());
    provider.quote("AAPL").instrument(caller).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].headers.get("traceparent").is_none());
    let traceparent = requests[1]
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("traceparent on the vendor call");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], caller_context.trace_id().to_string());
    // The parent on the vendor's side is the vendor-call span, not the caller.
    assert_ne!(parts[2], caller_context.span_id().to_string());
    assert_eq!(parts[3], "01", "sampled");
}
