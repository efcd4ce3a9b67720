//! The one JSON envelope of the API and the one table that maps every
//! library error to an HTTP status and a stable error code.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rampart_tenancy::TenancyError;
use serde::Serialize;

tokio::task_local! {
    /// The current request's id, set by the request-context middleware for
    /// the duration of the request so error responses can carry it.
    pub static REQUEST_ID: String;
}

/// The current request id ("-" outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".to_owned())
}

/// `meta` of every envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Correlation id (also in the `X-Request-Id` header).
    pub request_id: String,
    /// Server time (RFC 3339).
    pub timestamp: String,
    /// Cursor of the next page, for lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Meta {
    fn now() -> Self {
        Self {
            request_id: current_request_id(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            next_cursor: None,
        }
    }
}

/// `{"success": true, "data": …, "meta": …}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    success: bool,
    data: T,
    meta: Meta,
}

/// A successful JSON response in the envelope.
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    HttpResponse::Ok().json(Envelope {
        success: true,
        data,
        meta: Meta::now(),
    })
}

/// A successful response with a status other than 200.
pub fn ok_status<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        success: true,
        data,
        meta: Meta::now(),
    })
}

/// A page of a list, with the cursor of the next one.
pub fn page<T: Serialize>(data: T, next_cursor: Option<String>) -> HttpResponse {
    let mut meta = Meta::now();
    meta.next_cursor = next_cursor;
    HttpResponse::Ok().json(Envelope {
        success: true,
        data,
        meta,
    })
}

/// `error` of a failed envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message (never contains secrets).
    pub message: String,
    /// Extra structured details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct ErrorEnvelope {
    success: bool,
    error: ErrorBody,
    meta: Meta,
}

/// An API error: status, stable code, safe message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message for the client.
    pub message: Box<str>,
    /// Details (boxed: errors travel in `Result`s and should stay small).
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds to put in `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into().into_boxed_str(),
            details: None,
            retry_after: None,
        }
    }
    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// 404 `not_found` (also what a caller gets for another tenant's data).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }
    /// 500 `internal_error` (the cause is logged, not returned) — unless the
    /// cause, or anything in its `source()` chain, is the database being
    /// unreachable: then 503 `database_unavailable` with `Retry-After`, so a
    /// PostgreSQL restart reads as "retry shortly" whichever crate's error
    /// carried it.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        if database_unreachable(cause) {
            return Self::database_unavailable(cause);
        }
        tracing::error!(request_id = %current_request_id(), error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
    /// 503 `database_unavailable` with `Retry-After: 2` (the cause is
    /// logged, not returned).
    pub fn database_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(request_id = %current_request_id(), error = %cause, "database unavailable");
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry shortly",
        );
        err.retry_after = Some(2);
        err
    }
    /// With details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        res.json(ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.to_string(),
                details: self.details.as_deref().cloned(),
            },
            meta: Meta::now(),
        })
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        use TenancyError as T;
        let status = match &e {
            T::InvalidSlug { .. } | T::Setting { .. } => StatusCode::BAD_REQUEST,
            T::AlreadyExists(_)
            | T::InvalidTransition { .. }
            | T::RetentionNotElapsed { .. }
            | T::Busy(_) => StatusCode::CONFLICT,
            T::NotFound(_) | T::Purged(_) => StatusCode::NOT_FOUND,
            T::Suspended(_) | T::Deactivated(_) => StatusCode::FORBIDDEN,
            _ if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return ApiError::internal(&e);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return ApiError::database_unavailable(&e);
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// True when `e` or one of its sources says PostgreSQL cannot be reached
/// (pool could not connect, connection lost mid-request, server shutting
/// down or starting up).
fn database_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<TenancyError>()
            && t.is_unavailable()
        {
            return true;
        }
        if let Some(d) = err.downcast_ref::<diesel::result::Error>()
            && rampart_tenancy::is_connection_lost(d)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Maps actix's extractor errors (bad JSON, bad path/query, too large) into
/// the envelope.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let e = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        ),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        other => ApiError::bad_request(format!("malformed JSON body: {other}")),
    };
    e.into()
}

/// Path extractor errors → 400 in the envelope.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad path parameter: {err}")).into()
}

/// Query extractor errors → 400 in the envelope.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad query string: {err}")).into()
}

/// Unknown routes → 404 in the envelope.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route",
    ))
}

/// A JSON body that must be an object. serde's derived `Deserialize` also
/// reads a struct from an array (`[null, null]` is a patch of nothing, and
/// was answered 200): the API takes objects only. Errors are the
/// envelope's 400, like [`json_error`]'s.
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let body = actix_web::web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move { object_body(body.await?.into_inner()).map(JsonObject) })
    }
}

/// An optional JSON object body: no body (or only whitespace) is `None`,
/// anything else must be a well-formed object of `T`. `Option<web::Json<T>>`
/// turns a malformed body into `None` silently, so a typo ran the action
/// with its defaults.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        use actix_web::HttpMessage;
        let is_json = req.content_type().ends_with("json");
        let body = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected Content-Type: application/json",
                )
                .into());
            }
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(malformed)?;
            object_body(value).map(|v| OptionalJson(Some(v)))
        })
    }
}

/// The envelope's 400 for a body that is not well-formed JSON of its type.
fn malformed(e: serde_json::Error) -> actix_web::Error {
    ApiError::bad_request(format!("malformed JSON body: {e}")).into()
}

/// `T` from a JSON body that must be an object (see [`JsonObject`]).
fn object_body<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, actix_web::Error> {
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object").into());
    }
    serde_json::from_value(value).map_err(malformed)
}
