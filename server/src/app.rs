//! Assembling the server: shared state, middleware, both TLS listeners.
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};
use rampart_tenancy::TenantPool;

use crate::api::{self, ApiError, REQUEST_ID};
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::routes;
use crate::tls::{ClientAuth, TlsFiles, capture_client_identity, listener_tls};
use rampart_ratelimit::RateLimiter;
use rampart_vault::SecretStore;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Tenancy (PostgreSQL).
    pub tenants: TenantPool,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Rate limiter (Redis-backed or in memory).
    pub limiter: Arc<RateLimiter>,
    /// Vault, when configured.
    pub vault: Option<Arc<SecretStore>>,
    /// Redis client for readiness probes, when configured.
    pub redis: Option<redis::Client>,
    /// The OAuth authorization server.
    pub auth: Option<Arc<rampart_auth::AuthServer>>,
    /// Signing and encryption keys of the auth server (rotation, revoke).
    pub keys: Option<Arc<rampart_auth::KeyRing>>,
    /// The market-data provider chain.
    pub market: Arc<rampart_market::ProviderChain>,
    /// Configuration.
    pub config: Arc<ServerConfig>,
    /// When the server started.
    pub started: Instant,
}

/// The request id of a request (set by the request-context middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Which listener a request came through (a metrics label).
#[derive(Debug, Clone, Copy)]
pub struct Listener(pub &'static str);

fn well_formed_request_id(v: &str) -> bool {
    (8..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Request id, security headers, metrics — one concern each would be three
/// passes over the same request; they share the timing and the id.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let listener = req
        .app_data::<web::Data<Listener>>()
        .map(|l| l.0)
        .unwrap_or("public");
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let started = Instant::now();
    if let Some(m) = &metrics {
        m.in_flight.inc();
    }
    let result = REQUEST_ID.scope(id.clone(), next.call(req)).await;
    if let Some(m) = &metrics {
        m.in_flight.dec();
    }
    let mut res = result?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(m) = &metrics {
        let status = res.status().as_u16().to_string();
        m.http_requests
            .with_label_values(&[listener, &route, &method, &status])
            .inc();
        m.http_latency
            .with_label_values(&[listener, &route, &method])
            .observe(started.elapsed().as_secs_f64());
        // Auth events, from the OAuth routes' patterns (bounded labels).
        if let Some(event) = route.strip_prefix("/t/{tenant}/oauth/") {
            let result = if res.status().is_success() || res.status().is_redirection() {
                "ok"
            } else {
                "error"
            };
            m.auth_events.with_label_values(&[event, result]).inc();
        }
    }
    tracing::info!(
        request_id = %id,
        listener,
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    Ok(res)
}

/// Records every change made through the admin listener (any method but
/// GET/HEAD), with the operator's certificate identity, in
/// `platform.admin_audit`. Inline, so the record exists when the response
/// leaves; a failure to record is logged loudly but does not undo the action.
async fn admin_audit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mutating = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if let (true, Some(state)) = (mutating, state) {
        let request = res.request();
        let identity = request.conn_data::<crate::tls::ClientIdentity>().cloned();
        let action = rampart_tenancy::AdminAction {
            id: 0,
            occurred_at: chrono::Utc::now(),
            subject: identity
                .as_ref()
                .map(|i| i.subject.clone())
                .unwrap_or_else(|| "-".into()),
            sans: identity
                .as_ref()
                .map(|i| i.sans.clone())
                .unwrap_or_default(),
            fingerprint: identity.map(|i| i.fingerprint).unwrap_or_default(),
            method: request.method().to_string(),
            route: request
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
            path: request.path().chars().take(512).collect(),
            status: i32::from(res.status().as_u16()),
            request_id: request
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            ip: request.peer_addr().map(|a| a.ip().to_string()),
        };
        if let Err(e) = state.tenants.record_admin_action(&action).await {
            tracing::error!(error = %e, route = %action.route, "could not write the admin audit record");
        }
    }
    Ok(res)
}

fn client_ip(req: &ServiceRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// Per-IP, per-tenant and per-API-key limits; `429` with `Retry-After` and
/// `RateLimit-*` headers. Health and metrics are exempt.
async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    let exempt = matches!(path, "/health" | "/ready" | "/metrics");
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut decision = None;
    if let (false, Some(state)) = (exempt, state.as_ref()) {
        let mut scopes = Vec::new();
        if let Some(ip) = client_ip(&req) {
            scopes.push(("ip", state.limiter.check_ip(ip).await));
        }
        // Tenant-scoped paths: the OAuth issuer `/t/{tenant}/…` and the API
        // `/api/v1/t/{tenant}/…`.
        if let Some(tenant) = path
            .strip_prefix("/t/")
            .or_else(|| path.strip_prefix("/api/v1/t/"))
            .and_then(|rest| rest.split('/').next())
            && rampart_tenancy::TenantSlug::parse(tenant).is_ok()
        {
            scopes.push(("tenant", state.limiter.check_tenant(tenant).await));
        }
        if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
            scopes.push(("api_key", state.limiter.check_api_key(key).await));
        }
        let mut strictest: Option<(&str, rampart_ratelimit::Decision)> = None;
        for (scope, d) in scopes {
            if !d.allowed {
                state.metrics.rate_limited.with_label_values(&[scope]).inc();
            }
            strictest = Some(match strictest {
                None => (scope, d),
                Some((s, prev)) => {
                    let denied_now = !d.allowed && prev.allowed;
                    let merged = prev.stricter(d);
                    (if denied_now { scope } else { s }, merged)
                }
            });
        }
        if let Some((scope, d)) = strictest {
            if !d.allowed {
                let mut err = ApiError::new(
                    actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests ({scope} limit)"),
                );
                err.retry_after = d.retry_after.map(|r| r.as_secs().max(1));
                let id = req
                    .extensions()
                    .get::<RequestId>()
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                let mut res = REQUEST_ID
                    .scope(id, async { actix_web::ResponseError::error_response(&err) })
                    .await;
                add_rate_headers(res.headers_mut(), &d);
                return Ok(req.into_response(res).map_into_right_body());
            }
            decision = Some(d);
        }
    }
    let mut res = next.call(req).await?;
    if let Some(d) = decision {
        add_rate_headers(res.headers_mut(), &d);
    }
    Ok(res.map_into_left_body())
}

fn add_rate_headers(
    headers: &mut actix_web::http::header::HeaderMap,
    d: &rampart_ratelimit::Decision,
) {
    for (name, value) in d.headers() {
        // `from_bytes` lowercases; `from_static` would panic on `RateLimit-…`.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(n, v);
        }
    }
}

fn configure_common(cfg: &mut web::ServiceConfig, config: &ServerConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(config.http.json_body_limit_bytes)
            .error_handler(api::json_error),
    )
    .app_data(web::PayloadConfig::new(config.http.upload_limit_bytes))
    .app_data(web::FormConfig::default().limit(64 * 1024))
    .app_data(web::PathConfig::default().error_handler(api::path_error))
    .app_data(web::QueryConfig::default().error_handler(api::query_error));
}

fn cors(config: &ServerConfig) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            "x-request-id",
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
        ])
        .max_age(600);
    for origin in &config.http.cors_allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Handles of a running server.
pub struct RunningServer {
    /// Where the public listener listens.
    pub public_addr: SocketAddr,
    /// Where the admin listener listens.
    pub admin_addr: SocketAddr,
    handles: Vec<ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// A background task stopped with the server.
    pub fn add_task(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Stops both listeners gracefully (in-flight requests finish).
    pub async fn stop(self) {
        for h in &self.handles {
            h.stop(true).await;
        }
        for t in self.tasks {
            t.abort();
        }
        for s in self.servers {
            let _ = s.await;
        }
    }
}

/// Binds and starts both listeners. `tls` is required (HTTPS only).
pub async fn start(state: AppState, tls: &TlsFiles) -> anyhow::Result<RunningServer> {
    let config = state.config.clone();
    let public_tls = listener_tls(tls, ClientAuth::Optional)?;
    let admin_tls = listener_tls(tls, ClientAuth::Required)?;
    let reload = Duration::from_secs(config.tls_reload_secs.max(1));
    let tasks = vec![
        public_tls.reloader.clone().spawn_watch(reload),
        admin_tls.reloader.clone().spawn_watch(reload),
        spawn_probes(state.clone()),
        spawn_maintenance(state.clone()),
    ];
    let workers = if config.http.workers == 0 {
        num_workers()
    } else {
        config.http.workers
    };
    let data = web::Data::new(state.clone());
    let auth = state.auth.clone();

    let public_listener = TcpListener::bind(config.public_addr)?;
    let public_addr = public_listener.local_addr()?;
    let cfg = config.clone();
    let d = data.clone();
    // One for all workers: a report computed on one is served by all.
    let analytics_cache = web::Data::new(routes::portfolios::AnalyticsCache::default());
    let public = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(d.clone())
            .app_data(analytics_cache.clone())
            .app_data(web::Data::new(Listener("public")))
            .configure(|c| configure_common(c, &cfg))
            .configure(routes::health::configure)
            .configure(routes::openapi::configure)
            .configure(routes::stream::configure)
            .configure(routes::portfolios::configure)
            .configure(routes::api_v1::configure)
            .configure(routes::notify::configure)
            .configure(routes::users::configure)
            .configure(routes::market_api::configure)
            .configure(routes::admin_page::configure)
            .configure(routes::account::configure)
            .configure(routes::members::configure);
        if let Some(auth) = &auth {
            app = app
                .app_data(web::Data::from(auth.clone()))
                .configure(routes::oauth::configure);
        }
        app.default_service(web::to(api::not_found))
            .wrap(from_fn(rate_limit))
            .wrap(cors(&cfg))
            .wrap(from_fn(request_context))
    })
    .workers(workers)
    .keep_alive(Duration::from_secs(config.http.keep_alive_secs))
    .client_request_timeout(Duration::from_millis(config.http.client_request_timeout_ms))
    .shutdown_timeout(config.http.shutdown_timeout_secs)
    .on_connect(capture_client_identity)
    .listen_rustls_0_23(public_listener, public_tls.config)?
    .run();

    let admin_listener = TcpListener::bind(config.admin_addr)?;
    let admin_addr = admin_listener.local_addr()?;
    let cfg = config.clone();
    let d = data.clone();
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(d.clone())
            .app_data(web::Data::new(Listener("admin")))
            .configure(|c| configure_common(c, &cfg))
            .configure(routes::health::configure)
            .configure(routes::admin::configure)
            .configure(routes::members::configure_admin)
            .default_service(web::to(api::not_found))
            .wrap(from_fn(admin_audit))
            .wrap(from_fn(request_context))
    })
    .workers(workers.min(2))
    .keep_alive(Duration::from_secs(config.http.keep_alive_secs))
    .client_request_timeout(Duration::from_millis(config.http.client_request_timeout_ms))
    .shutdown_timeout(config.http.shutdown_timeout_secs)
    .on_connect(capture_client_identity)
    .listen_rustls_0_23(admin_listener, admin_tls.config)?
    .run();

    let handles = vec![public.handle(), admin.handle()];
    let servers = vec![tokio::spawn(public), tokio::spawn(admin)];
    Ok(RunningServer {
        public_addr,
        admin_addr,
        handles,
        tasks,
        servers,
    })
}

fn num_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Keeps the dependency gauges and pool gauges fresh for `/metrics`.
fn spawn_probes(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let report = routes::health::probe(&state).await;
            for (dep, up) in [
                ("postgres", report.postgres.ok),
                ("redis", report.redis.ok),
                ("vault", report.vault.ok),
            ] {
                state
                    .metrics
                    .dependency_up
                    .with_label_values(&[dep])
                    .set(i64::from(up));
            }
        }
    })
}

/// Scheduled platform jobs: tenant usage counters flushed every minute,
/// tenants past their retention deadline purged every hour.
fn spawn_maintenance(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes = 0u64;
        loop {
            tick.tick().await;
            if let Err(e) = state.tenants.flush_usage().await {
                tracing::warn!(error = %e, "flushing tenant usage failed");
            }
            if minutes.is_multiple_of(60) {
                match state.tenants.purge_expired().await {
                    Ok(purged) if !purged.is_empty() => {
                        tracing::info!(?purged, "purged tenants past retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention purge failed"),
                }
            }
            minutes += 1;
        }
    })
}
