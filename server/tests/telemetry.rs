//! What an operator observes: traces exported over OTLP/HTTP to a collector
//! (here a receiver started by the test that decodes the protobuf
//! requests), job metrics in `/metrics`, and logs without colour codes when
//! they do not go to a terminal. The trace and log tests run the `rampart`
//! binary itself, as an operator would.
use rampart_testkit::{acme, valid_slug};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Pki, config, get_text, kit_smtp, serve_toml, start, url};

/// `rampart serve` in a child process, stopped with a signal.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
    out: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts the server with the test configuration plus `extra` TOML,
    /// standard output and standard error to files; returns once it is
    /// healthy.
    async fn start(pki: &Pki, database_url: &str, extra: &str) -> Self {
        let ((port, _), toml) = serve_toml(pki, database_url, "child-dev-secrets", "", extra);
        let file = pki.path(&format!("serve-{port}.toml"));
        std::fs::write(&file, toml).unwrap();
        let (log, out) = (
            pki.path(&format!("serve-{port}.err")),
            pki.path(&format!("serve-{port}.out")),
        );
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--config"])
            .arg(&file)
            .env("RAMPART_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            port,
            log,
            out,
        };
        let http = pki.client(None);
        let health = url(served.addr(), "/health");
        for _ in 0..600 {
            if let Ok(r) = http.get(&health).send().await
                && r.status() == 200
            {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("rampart serve did not start: {}", read_lossy(&served.log));
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Ctrl-C, and waits for a clean exit.
    async fn interrupt(&mut self) {
        self.stop_with(Signal::SIGINT).await;
    }

    /// Sends `signal`, and waits for a clean exit.
    async fn stop_with(&mut self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, signal).unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}: {}", read_lossy(&self.log));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("rampart serve did not stop: {}", read_lossy(&self.log));
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

async fn fresh_database() -> String {
    rampart_testkit::install_crypto_provider();
    rampart_testkit::fresh_database().await.unwrap().url
}

// ------------------------------------------------------------ logs

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_file_carry_no_colour_codes() {
    let pki = Pki::new();
    let db = fresh_database().await;
    let mut served = Served::start(&pki, &db, "").await;
    served.interrupt().await;
    let (log, out) = (std::fs::read(&served.log).unwrap(), read_lossy(&served.out));
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("listening"), "no log lines: {text}");
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !log.contains(&0x1b),
        "escape codes in a log written to a file: {text:?}"
    );
    assert!(!out.contains('\u{1b}'), "{out:?}");
}

/// What systemd, Docker and Kubernetes send to stop a service: the server
/// stops its listeners and jobs and exits, as on Ctrl-C.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_cleanly() {
    let pki = Pki::new();
    let db = fresh_database().await;
    let mut served = Served::start(&pki, &db, "").await;
    let health = url(served.addr(), "/health");
    let alive = crate::common::get_json(&pki.client(None), &health).await;
    assert_eq!(alive["data"]["status"], "ok", "{alive}");
    served.stop_with(Signal::SIGTERM).await;
    let log = read_lossy(&served.log);
    assert!(log.contains("stopping") && log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(
        pki.client(None).get(&health).send().await.is_err(),
        "still listening after exit"
    );
}

// ------------------------------------------------------------ traces

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key)? {
        AnyValue::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attr_int(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        AnyValue::IntValue(i) => Some(*i),
        AnyValue::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_reach_an_otlp_collector_as_children_of_the_callers_trace() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let pki = Pki::new();
    let db = fresh_database().await;
    {
        let tenancy = rampart_tenancy::TenancyConfig {
            database_url: db.clone(),
            max_connections: 2,
            ..Default::default()
        };
        let pool = rampart_tenancy::TenantPool::connect(tenancy).await.unwrap();
        pool.ensure_tenant(&acme(), "Acme").await.unwrap();
    }
    let extra = format!(
        "[telemetry]\notlp_endpoint = {:?}\nservice_name = \"rampart-under-test\"\nsample_ratio = 1.0\n",
        collector.uri()
    );
    let mut served = Served::start(&pki, &db, &extra).await;
    let http = pki.client(None);
    let discovery = url(served.addr(), "/t/acme/.well-known/openid-configuration");
    let res = http
        .get(&discovery)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Without a traceparent: a trace of its own.
    let res = http
        .get(url(
            served.addr(),
            "/t/nosuchtenant/.well-known/openid-configuration",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Spans left in the batch are exported at shutdown.
    served.interrupt().await;

    let requests = collector.received_requests().await.unwrap();
    assert!(!requests.is_empty(), "nothing exported");
    let mut spans = Vec::new();
    for r in &requests {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
        let export = ExportTraceServiceRequest::decode(r.body.as_slice()).unwrap();
        for rs in export.resource_spans {
            let resource = rs.resource.unwrap_or_default();
            let service = resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value);
            assert_eq!(
                service,
                Some(AnyValue::StringValue("rampart-under-test".into()))
            );
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let route = "/t/{tenant}/.well-known/openid-configuration";
    let request = spans
        .iter()
        .find(|s| hex::encode(&s.trace_id) == TRACE_ID && s.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span in the caller's trace: {names:?}"));
    assert_eq!(request.name, format!("GET {route}"));
    assert_eq!(hex::encode(&request.parent_span_id), CALLER_SPAN);
    assert_eq!(attr_str(request, "tenant"), Some("acme"));
    assert_eq!(attr_str(request, "http.route"), Some(route));
    assert_eq!(attr_int(request, "http.response.status_code"), Some(200));
    assert_eq!(attr_str(request, "http.request.method"), Some("GET"));
    assert!(attr_str(request, "request_id").is_some_and(|id| id.len() >= 8));
    // The other request: its own trace, its status.
    let other = spans
        .iter()
        .find(|s| {
            s.kind == SpanKind::Server as i32
                && hex::encode(&s.trace_id) != TRACE_ID
                && attr_str(s, "tenant") == Some("nosuchtenant")
        })
        .unwrap_or_else(|| panic!("second request not traced: {names:?}"));
    assert_eq!(attr_int(other, "http.response.status_code"), Some(404));
    assert_eq!(attr_str(other, "http.route"), Some(route));
    assert!(other.parent_span_id.is_empty(), "a root span");
    // Its tenant lookups in PostgreSQL (acme's was cached by the jobs that
    // ran at start) are its children, in its trace.
    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == other.span_id)
        .collect();
    assert!(
        children.iter().any(|s| s.name == "db.pool.checkout")
            && children.iter().any(|s| s.name == "db.query"),
        "no PostgreSQL spans under the request: {names:?}"
    );
    assert!(children.iter().all(|s| s.trace_id == other.trace_id));
    // Scheduled jobs are traced too.
    assert!(names.contains(&"price_alerts"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("nosuchtenant")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_are_off_without_an_endpoint_and_bad_settings_are_refused() {
    use rampart_server::telemetry::TelemetryConfig;
    let off = TelemetryConfig::default();
    assert_eq!(off.traces_url(), None);
    let on = TelemetryConfig {
        otlp_endpoint: Some("http://collector:4318/".into()),
        ..TelemetryConfig::default()
    };
    assert_eq!(
        on.traces_url().as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    for bad in [
        TelemetryConfig {
            sample_ratio: 1.5,
            ..TelemetryConfig::default()
        },
        TelemetryConfig {
            otlp_endpoint: Some("collector:4318".into()),
            ..TelemetryConfig::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    // `rampart serve` refuses them, naming the key.
    let pki = Pki::new();
    let file = pki.path("bad-telemetry.toml");
    std::fs::write(&file, "[telemetry]\nsample_ratio = 2.0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("telemetry.sample_ratio"), "{err}");
}

// ------------------------------------------------------------ job metrics

fn sample(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("{metric} {labels:?} missing"))
}

#[tokio::test(flavor = "multi_thread")]
async fn job_runs_show_in_metrics_with_their_failures() {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.notify = kit_smtp();
    let (server, state) = start(config).await;
    let before = chrono::Utc::now().timestamp() as f64;
    rampart_server::jobs::run_login_alerts_once(&state)
        .await
        .unwrap();
    // A run that fails: the sender address is not a mailbox.
    let mut broken = state.clone();
    let mut c = (*state.config).clone();
    c.notify.from = "not a mailbox".into();
    broken.config = Arc::new(c);
    assert!(
        rampart_server::jobs::run_login_alerts_once(&broken)
            .await
            .is_err()
    );

    let operator = pki.client(Some(&pki.operator()));
    let text = get_text(&operator, &url(server.admin_addr, "/metrics")).await;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let job = [("job", "login_alerts")];
    let runs = |result: &str| {
        sample(
            &scrape,
            "rampart_job_runs_total",
            &[("job", "login_alerts"), ("result", result)],
        )
    };
    // Only this test's broken run failed; the scheduler may have run the
    // job at start as well.
    assert_eq!(runs("failure"), 1.0);
    assert!(runs("success") >= 1.0, "{text}");
    assert!(sample(&scrape, "rampart_job_last_run_timestamp_seconds", &job) >= before);
    let count = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "rampart_job_duration_seconds"
                && s.labels.get("job") == Some("login_alerts")
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(h) => h.last().map(|b| b.count).unwrap_or(0.0),
            _ => 0.0,
        })
        .unwrap();
    assert!(count >= 2.0, "{text}");
    // Every job has its failure counter from the start, at zero when it
    // never failed.
    for job in rampart_server::jobs::JOBS {
        if *job != "login_alerts" {
            assert_eq!(
                sample(
                    &scrape,
                    "rampart_job_runs_total",
                    &[("job", job), ("result", "failure")]
                ),
                0.0,
                "{job}"
            );
        }
    }
    server.stop().await;
}

/// The `spares` job keeps `database.spare_schemas` tenant schemas built
/// (shown in `/metrics`), and a tenant provisioned through the admin
/// listener takes one and works like any other.
#[tokio::test(flavor = "multi_thread")]
async fn the_spares_job_keeps_schemas_ready_for_provisioning() {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.database.spare_schemas = 2;
    let (server, state) = start(config).await;
    let operator = pki.client(Some(&pki.operator()));
    let gauge = async || {
        let text = get_text(&operator, &url(server.admin_addr, "/metrics")).await;
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        sample(&scrape, "rampart_tenant_spare_schemas", &[])
    };
    // The job's first pass comes 10 s after start.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while gauge().await < 2.0 {
        assert!(std::time::Instant::now() < deadline, "no spares after 40 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let res = operator
        .post(url(server.admin_addr, "/admin/tenants"))
        .json(&serde_json::json!({"slug": "sparely", "display_name": "Sparely"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let events = state.tenants.events(&valid_slug("sparely")).await.unwrap();
    let provisioned = events.iter().find(|e| e.event == "provisioned").unwrap();
    assert_eq!(
        provisioned.detail["spare"], true,
        "{:?}",
        provisioned.detail
    );
    // The tenant answers like any other.
    let res = pki
        .client(None)
        .get(url(
            server.public_addr,
            "/t/sparely/.well-known/openid-configuration",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}
