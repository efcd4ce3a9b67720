//! Assembling the server: the two apps (public and admin listener) with
//! their middleware, and both TLS listeners. The routes are registered
//! through [`utoipa_actix_web`] from the tables of [`crate::listeners`], which
//! the OpenAPI document ([`crate::openapi`]) is collected from too. `serve` and the tests build
//! the same apps through [`start`].
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::ServerConfig;
use crate::error;
use crate::listeners;
use crate::middleware::{self, Listener};
use crate::tls::{ClientAuth, TlsFiles, capture_client_identity, listener_tls, listener_tls_for};

pub use crate::state::AppState;

fn configure_common(cfg: &mut ServiceConfig, config: &ServerConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(config.http.json_body_limit_bytes)
            .error_handler(error::json_error),
    )
    .app_data(web::PayloadConfig::new(config.http.upload_limit_bytes))
    .app_data(web::FormConfig::default().limit(64 * 1024))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .app_data(web::QueryConfig::default().error_handler(error::query_error));
}

fn cors(config: &ServerConfig) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        // `X-API-Key` is a credential header of its own; `traceparent` and
        // `tracestate` carry the caller's trace (W3C Trace Context).
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static("traceparent"),
            header::HeaderName::from_static("tracestate"),
        ])
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

/// Waits for the signal to stop: SIGINT (Ctrl-C) or SIGTERM (what systemd,
/// Docker and Kubernetes send); returns its name.
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}

/// Stops `server` gracefully, unless a second SIGINT or SIGTERM comes
/// first: then at once (an operator pressing Ctrl-C again).
pub async fn stop_on_request(server: RunningServer) {
    tokio::select! {
        () = server.stop() => {}
        _ = shutdown_signal() => tracing::warn!("second signal: stopping without waiting"),
    }
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
        // Both listeners drain at once: at most one `shutdown_timeout`.
        futures::future::join_all(self.handles.iter().map(|h| h.stop(true))).await;
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
    // The admin listener: the client CA's certificates, and when an
    // allow-list of operators is configured, only theirs.
    let operators = config
        .tls_vault_pki
        .as_ref()
        .map(|v| v.operator_subjects.clone())
        .unwrap_or_default();
    let admin_tls = listener_tls_for(tls, ClientAuth::Required, operators)?;
    let reload = Duration::from_secs(config.tls_reload_secs.max(1));
    let tasks = vec![
        public_tls.reloader.clone().spawn_watch(reload),
        admin_tls.reloader.clone().spawn_watch(reload),
    ];
    let workers = if config.http.workers == 0 {
        num_workers()
    } else {
        config.http.workers
    };
    let data = web::Data::new(state.clone());
    let auth = web::Data::from(state.auth.clone());

    let public_listener = TcpListener::bind(config.public_addr)?;
    let public_addr = public_listener.local_addr()?;
    let cfg = config.clone();
    let d = data.clone();
    // One for all workers: a report computed on one is served by all.
    let analytics_cache = web::Data::new(crate::analytics_cache::AnalyticsCache::new(
        state.tenants.clone(),
    ));
    let public = HttpServer::new(move || {
        // The listener's OpenAPI paths name its routes for 405's `Allow`.
        let (app, api) = App::new()
            .into_utoipa_app()
            .app_data(d.clone())
            .app_data(auth.clone())
            .app_data(analytics_cache.clone())
            .app_data(web::Data::new(Listener("public")))
            .configure(|c| configure_common(c, &cfg))
            // `/openapi.json` is registered here rather than in a route
            // module: the document is built from the route lists.
            .map(|app| app.route("/openapi.json", web::get().to(crate::openapi::serve)))
            .configure(listeners::configure_public)
            // Plain actix routes (its operations are in `crate::openapi`'s
            // derive): the schema it serves needs the configuration.
            .map(|app| app.configure(|c| crate::graphql::configure(c, &cfg)))
            .default_service(web::to(error::not_found))
            .split_for_parts();
        app.app_data(web::Data::new(error::KnownRoutes::of(&api)))
            .wrap(from_fn(middleware::head_as_get))
            .wrap(from_fn(middleware::rate_limit))
            .wrap(cors(&cfg))
            .wrap(from_fn(middleware::request_context))
            .wrap(from_fn(crate::telemetry::trace_request))
            .wrap(middleware::security_headers())
    })
    .workers(workers)
    .keep_alive(Duration::from_secs(config.http.keep_alive_secs))
    .client_request_timeout(Duration::from_millis(config.http.client_request_timeout_ms))
    .shutdown_timeout(config.http.shutdown_timeout_secs)
    // The process stops both listeners and the jobs together on a signal
    // (`shutdown_signal`); actix's own handlers would stop the listeners alone.
    .disable_signals()
    .on_connect(capture_client_identity)
    .listen_rustls_0_23(public_listener, public_tls.config)?
    .run();

    let admin_listener = TcpListener::bind(config.admin_addr)?;
    let admin_addr = admin_listener.local_addr()?;
    let cfg = config.clone();
    let d = data.clone();
    let admin = HttpServer::new(move || {
        let (app, api) = App::new()
            .into_utoipa_app()
            .app_data(d.clone())
            .app_data(web::Data::new(Listener("admin")))
            .configure(|c| configure_common(c, &cfg))
            .configure(listeners::configure_admin)
            .default_service(web::to(error::not_found))
            .split_for_parts();
        app.app_data(web::Data::new(error::KnownRoutes::of(&api)))
            .wrap(from_fn(middleware::head_as_get))
            .wrap(from_fn(middleware::admin_audit))
            .wrap(from_fn(middleware::request_context))
            .wrap(from_fn(crate::telemetry::trace_request))
            .wrap(middleware::security_headers())
    })
    .workers(workers.min(2))
    .keep_alive(Duration::from_secs(config.http.keep_alive_secs))
    .client_request_timeout(Duration::from_millis(config.http.client_request_timeout_ms))
    .shutdown_timeout(config.http.shutdown_timeout_secs)
    // The process stops both listeners and the jobs together on a signal
    // (`shutdown_signal`); actix's own handlers would stop the listeners alone.
    .disable_signals()
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
