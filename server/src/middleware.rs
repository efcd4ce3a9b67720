//! The middleware of both listeners, one concern each: request context
//! (request id, metrics, access log), rate limits, and the admin audit
//! trail. Security headers are actix's `DefaultHeaders` (see [`security_headers`]).
use rampart_tenancy::TenantSlug;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};

use crate::error::ApiError;
use crate::meta::REQUEST_ID;
use crate::state::AppState;

/// The security headers of every response (a handler may set its own
/// `Content-Security-Policy`, e.g. the admin page).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ))
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

/// Request id, metrics and the access log: they share the timing and the id.
pub async fn request_context(
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
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let metrics = state.as_ref().map(|s| &s.metrics);
    let method = req.method().to_string();
    let started = Instant::now();
    if let Some(m) = metrics {
        m.in_flight.inc();
    }
    let result = REQUEST_ID.scope(id.clone(), next.call(req)).await;
    if let Some(m) = metrics {
        m.in_flight.dec();
    }
    let mut res = result?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(m) = metrics {
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
    Ok(res)
}

/// HEAD is GET without the body (RFC 9110 §9.3.2: a general-purpose server
/// supports both): a HEAD request is routed as GET, and the HTTP layer,
/// which noted the method when it read the request, sends the GET answer's
/// status and headers (its `Content-Length` included) and no body. The
/// innermost middleware, so logs, metrics and rate limits see `HEAD`.
///
/// Not rewritten, so answered 405: a WebSocket upgrade (HEAD must not open
/// a stream), and the GET routes whose answer has an effect (a one-time
/// token spent, a code issued), which link scanners probe with HEAD.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD
        && !req.headers().contains_key(header::UPGRADE)
        && !crate::meta::has_effect_on_get(req.path())
    {
        req.extensions_mut().insert(crate::meta::WasHead);
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// Records every change made through the admin listener (any method but
/// GET/HEAD), with the operator's certificate identity, in
/// `platform.admin_audit`. Inline, so the record exists when the response
/// leaves; a failure to record is logged loudly but does not undo the action.
pub async fn admin_audit(
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

/// Whether the request carries a bearer token that this tenant issued
/// (signature, issuer and audience checked; revocation is the handler's
/// business): such requests draw from the tenant's authenticated budget.
fn authenticated_for(req: &ServiceRequest, state: &AppState, tenant: &TenantSlug) -> bool {
    let Some(token) = crate::extract::bearer_token(req.request()) else {
        return false;
    };
    let auth = &state.auth;
    let verified = auth.tokens().verify_access_token_shared(
        token,
        &auth.issuer(tenant),
        &auth.config().access_token_audience,
    );
    match verified {
        Ok(verified) => {
            req.extensions_mut().insert(crate::extract::VerifiedBearer {
                tenant: tenant.to_owned(),
                verified,
            });
            true
        }
        Err(_) => false,
    }
}

/// Per-IP, per-API-key and per-tenant limits; `429` with `Retry-After` and
/// `RateLimit-*` headers. Health and metrics are exempt.
///
/// The limits are counted all or nothing ([`rampart_ratelimit::RateLimiter::check_all`]):
/// a request refused by one spends nothing from the others, so a client
/// refused by its per-IP limit cannot drain its tenant's budget. Anonymous
/// requests and requests with a verified token of the tenant draw from two
/// separate tenant budgets, so no anonymous source can starve the tenant's
/// users.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    let exempt = matches!(path, "/health" | "/ready" | "/metrics");
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut decision = None;
    if let (false, Some(state)) = (exempt, state.as_ref()) {
        let limiter = &state.limiter;
        let mut limits = Vec::new();
        if let Some(ip) = crate::client_addr::client_ip(req.request()) {
            limits.push(limiter.ip_limit(ip));
        }
        if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
            limits.push(limiter.api_key_limit(key));
        }
        // Tenant-scoped paths: the OAuth issuer `/t/{tenant}/…` and the API
        // `/api/v1/t/{tenant}/…`.
        if let Some(tenant) = path
            .strip_prefix("/t/")
            .or_else(|| path.strip_prefix("/api/v1/t/"))
            .and_then(|rest| rest.split('/').next())
            .and_then(|t| TenantSlug::parse(t).ok())
        {
            let authenticated = authenticated_for(&req, state, &tenant);
            limits.push(limiter.tenant_limit(&tenant, authenticated));
        }
        if !limits.is_empty() {
            let verdict = limiter.check_all(&limits).await;
            let d = verdict.decision;
            if let Some(scope) = verdict.refused_by {
                state.metrics.rate_limited.with_label_values(&[scope]).inc();
                let err = ApiError::rate_limited(
                    format!("too many requests ({scope} limit)"),
                    d.retry_after.map(|r| r.as_secs().max(1)),
                );
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
