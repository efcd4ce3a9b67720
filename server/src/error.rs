//! The one error table of the server: every library crate's error enum
//! becomes an [`ApiError`] here (one `From` per crate), with a status and a
//! stable [`ErrorCode`]. Routes return these and never invent codes; the
//! envelope (`{"success": false, "error": {code, message, details}, "meta"}`)
//! carries the request id.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rampart_auth::AuthError;
use rampart_market::MarketError;
use rampart_members::MembersError;
use rampart_notify::NotifyError;
use rampart_portfolio::PortfolioError;
use rampart_tenancy::TenancyError;
use serde::Serialize;

use crate::meta::{Meta, current_request_id};

/// Every stable error code the API answers with (the OpenAPI document lists
/// them as the `ErrorCode` schema). Serialized in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed (body, path, query or a field).
    InvalidRequest,
    /// No valid credential for this tenant.
    Unauthorized,
    /// The caller lacks the permission.
    Forbidden,
    /// No such thing (also: another tenant's thing).
    NotFound,
    /// No such route.
    RouteNotFound,
    /// The route exists, not with this method (`Allow` lists its methods).
    MethodNotAllowed,
    /// The thing exists already or the change conflicts.
    Conflict,
    /// The body is too large.
    PayloadTooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// Too many requests; see `Retry-After`.
    RateLimited,
    /// A server-side failure (logged with the request id).
    InternalError,
    /// PostgreSQL cannot be reached; retry shortly.
    DatabaseUnavailable,
    /// A wrong password or one-time code.
    InvalidCredentials,
    /// A link's token is invalid, used or expired.
    InvalidToken,
    /// The route needs a token issued to a login session.
    SessionRequired,
    /// The sign-in behind the token is too old for this account change:
    /// sign in again (`prompt=login` or `max_age`).
    ReauthenticationRequired,
    /// The route needs a user, not a machine client.
    UserRequired,
    /// The admin listener needs a client certificate.
    ClientCertificateRequired,
    /// A CSV import has invalid rows; nothing was applied.
    CsvRejected,
    /// A JSON import has refused items; nothing was applied.
    ImportRejected,
    /// No prices for a symbol in the analysis window.
    NoPrices,
    /// No market-data provider could answer.
    MarketUnavailable,
    /// A symbol no provider knows (per-symbol errors of batch quotes).
    UnknownSymbol,
    /// The mail relay could not take the message.
    MailUnavailable,
    /// A per-user limit is reached.
    LimitReached,
    /// Credential encryption (Vault transit) is unavailable.
    CredentialEncryptionUnavailable,
    /// The broker refused or failed.
    BrokerError,
    /// The tenant slug is malformed.
    TenantInvalidSlug,
    /// The tenant exists already.
    TenantAlreadyExists,
    /// No such tenant.
    TenantNotFound,
    /// The tenant is suspended.
    TenantSuspended,
    /// The tenant is deactivated.
    TenantDeactivated,
    /// The tenant was purged.
    TenantPurged,
    /// The lifecycle change is not allowed from the tenant's state.
    TenantInvalidTransition,
    /// The tenant's retention period has not elapsed.
    TenantRetentionNotElapsed,
    /// Another operation holds the tenant.
    TenantBusy,
    /// A tenant setting is invalid.
    TenantSettingInvalid,
    /// The import was committed already.
    ImportAlreadyCommitted,
    /// The import preview expired.
    ImportExpired,
    /// The import preview has refused rows.
    ImportHasRefusedRows,
    /// The digest does not match the preview.
    ImportHashMismatch,
    /// The members changed since the preview.
    ImportStale,
    /// The tenant's registration policy is `closed`.
    RegistrationClosed,
    /// The tenant's registration policy is `invitation_only`.
    InvitationRequired,
    /// Open registration, but not for this e-mail domain.
    EmailDomainNotAllowed,
    /// Login needs a verified e-mail address in this tenant.
    EmailNotVerified,
    /// Administrators of this tenant must enrol a second factor to log in.
    MfaEnrollmentRequired,
    /// The invitation link is malformed, unknown or was replaced by a newer one.
    InvitationInvalid,
    /// The invitation expired; an administrator can re-send it.
    InvitationExpired,
    /// The invitation was revoked.
    InvitationRevoked,
    /// The invitation was accepted already (sign in instead).
    InvitationUsed,
    /// An upstream identity provider could not be checked (its discovery
    /// document, explicit endpoints or JWKS): a wrong issuer, most often.
    IdpCheckFailed,
    /// A client secret was given but no secret store is configured
    /// (production without Vault).
    SecretStoreUnavailable,
    /// The route's feature flag is off for this tenant (`…/features`).
    FeatureDisabled,
    /// The audit row or tree size is not covered by a signed tree head
    /// (yet: the sealer runs every `auth.audit_seal_secs`).
    AuditNotSealed,
    /// A role's permission list names a scope that is no permission.
    UnknownPermission,
    /// The tenant has no role of this name.
    UnknownRole,
    /// A built-in role cannot be deleted (its permissions can be changed).
    RoleBuiltIn,
    /// The role is still assigned (users, clients, upstream providers).
    RoleInUse,
    /// The change would leave no active user able to manage users and roles.
    RoleLockout,
    /// The user has no connection to the upstream provider the route needs
    /// (never signed in through it, disconnected, or its refresh token was
    /// refused): sign in through the provider to connect.
    UpstreamNotConnected,
}

impl ErrorCode {
    /// The code as it appears in the envelope.
    pub fn as_str(self) -> &'static str {
        use ErrorCode as C;
        match self {
            C::InvalidRequest => "invalid_request",
            C::Unauthorized => "unauthorized",
            C::Forbidden => "forbidden",
            C::NotFound => "not_found",
            C::RouteNotFound => "route_not_found",
            C::MethodNotAllowed => "method_not_allowed",
            C::Conflict => "conflict",
            C::PayloadTooLarge => "payload_too_large",
            C::UnsupportedMediaType => "unsupported_media_type",
            C::RateLimited => "rate_limited",
            C::InternalError => "internal_error",
            C::DatabaseUnavailable => "database_unavailable",
            C::InvalidCredentials => "invalid_credentials",
            C::InvalidToken => "invalid_token",
            C::SessionRequired => "session_required",
            C::ReauthenticationRequired => "reauthentication_required",
            C::UserRequired => "user_required",
            C::ClientCertificateRequired => "client_certificate_required",
            C::CsvRejected => "csv_rejected",
            C::ImportRejected => "import_rejected",
            C::NoPrices => "no_prices",
            C::MarketUnavailable => "market_unavailable",
            C::UnknownSymbol => "unknown_symbol",
            C::MailUnavailable => "mail_unavailable",
            C::LimitReached => "limit_reached",
            C::CredentialEncryptionUnavailable => "credential_encryption_unavailable",
            C::BrokerError => "broker_error",
            C::TenantInvalidSlug => "tenant_invalid_slug",
            C::TenantAlreadyExists => "tenant_already_exists",
            C::TenantNotFound => "tenant_not_found",
            C::TenantSuspended => "tenant_suspended",
            C::TenantDeactivated => "tenant_deactivated",
            C::TenantPurged => "tenant_purged",
            C::TenantInvalidTransition => "tenant_invalid_transition",
            C::TenantRetentionNotElapsed => "tenant_retention_not_elapsed",
            C::TenantBusy => "tenant_busy",
            C::TenantSettingInvalid => "tenant_setting_invalid",
            C::ImportAlreadyCommitted => "import_already_committed",
            C::ImportExpired => "import_expired",
            C::ImportHasRefusedRows => "import_has_refused_rows",
            C::ImportHashMismatch => "import_hash_mismatch",
            C::ImportStale => "import_stale",
            C::RegistrationClosed => "registration_closed",
            C::InvitationRequired => "invitation_required",
            C::EmailDomainNotAllowed => "email_domain_not_allowed",
            C::EmailNotVerified => "email_not_verified",
            C::MfaEnrollmentRequired => "mfa_enrollment_required",
            C::InvitationInvalid => "invitation_invalid",
            C::InvitationExpired => "invitation_expired",
            C::InvitationRevoked => "invitation_revoked",
            C::InvitationUsed => "invitation_used",
            C::IdpCheckFailed => "idp_check_failed",
            C::SecretStoreUnavailable => "secret_store_unavailable",
            C::FeatureDisabled => "feature_disabled",
            C::AuditNotSealed => "audit_not_sealed",
            C::UnknownPermission => "unknown_permission",
            C::UnknownRole => "unknown_role",
            C::RoleBuiltIn => "role_built_in",
            C::RoleInUse => "role_in_use",
            C::RoleLockout => "role_lockout",
            C::UpstreamNotConnected => "upstream_not_connected",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `error` of a failed envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
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
    pub code: ErrorCode,
    /// Message for the client.
    pub message: Box<str>,
    /// Details (boxed: errors travel in `Result`s and should stay small).
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds to put in `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 422 `import_rejected`: `refused` of `total` items of an import are
    /// invalid, nothing was applied; the report in `details`.
    pub fn import_rejected(
        refused: usize,
        total: usize,
        what: &str,
        report: &impl Serialize,
    ) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ImportRejected,
            format!("{refused} of {total} {what} are invalid; nothing was applied"),
        )
        .with_details(serde_json::to_value(report).unwrap_or_default())
    }

    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
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
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }
    /// 404 `not_found` (also what a caller gets for another tenant's data).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "not found")
    }
    /// 401 `unauthorized`: no valid credential for this tenant.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid access token is required",
        )
    }
    /// 403 `forbidden` with what was missing.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    /// 401 `client_certificate_required` (admin listener).
    pub fn client_certificate_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::ClientCertificateRequired,
            "a client certificate is required",
        )
    }
    /// 413 `payload_too_large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            message,
        )
    }
    /// 415 `unsupported_media_type`.
    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        )
    }
    /// 429 `rate_limited`.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            message,
        );
        err.retry_after = retry_after;
        err
    }
    /// 503 with `Retry-After` (a dependency is down; the cause is logged by
    /// the caller, not returned).
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after: u64) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        err.retry_after = Some(retry_after);
        err
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
            ErrorCode::InternalError,
            "internal error",
        )
    }
    /// 503 `database_unavailable` with `Retry-After: 2` (the cause is
    /// logged, not returned).
    pub fn database_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(request_id = %current_request_id(), error = %cause, "database unavailable");
        Self::unavailable(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable; retry shortly",
            2,
        )
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
                code: self.code,
                message: self.message.to_string(),
                details: self.details.as_deref().cloned(),
            },
            meta: Meta::now(),
        })
    }
}

// ------------------------------------------------------------ crate errors

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        use ErrorCode as C;
        use TenancyError as T;
        let (status, code) = match &e {
            T::InvalidSlug { .. } => (StatusCode::BAD_REQUEST, C::TenantInvalidSlug),
            T::Setting { .. } => (StatusCode::BAD_REQUEST, C::TenantSettingInvalid),
            T::AlreadyExists(_) => (StatusCode::CONFLICT, C::TenantAlreadyExists),
            T::InvalidTransition { .. } => (StatusCode::CONFLICT, C::TenantInvalidTransition),
            T::RetentionNotElapsed { .. } => (StatusCode::CONFLICT, C::TenantRetentionNotElapsed),
            T::Busy(_) => (StatusCode::CONFLICT, C::TenantBusy),
            T::NotFound(_) => (StatusCode::NOT_FOUND, C::TenantNotFound),
            T::Purged(_) => (StatusCode::NOT_FOUND, C::TenantPurged),
            T::Suspended(_) => (StatusCode::FORBIDDEN, C::TenantSuspended),
            T::Deactivated(_) => (StatusCode::FORBIDDEN, C::TenantDeactivated),
            _ if e.is_unavailable() => return ApiError::database_unavailable(&e),
            _ => return ApiError::internal(&e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The HTTP status of an auth error on the OAuth endpoints (RFC 6749 §5.2,
/// RFC 6750 §3.1); their body is the OAuth error object, not the envelope.
pub fn oauth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::InvalidClient | AuthError::InvalidToken(_) | AuthError::InvalidCredentials => {
            StatusCode::UNAUTHORIZED
        }
        AuthError::Forbidden(_)
        | AuthError::AccessDenied(_)
        | AuthError::MfaRequired
        | AuthError::LinkRefused(_)
        | AuthError::RegistrationClosed
        | AuthError::InvitationRequired
        | AuthError::EmailDomainNotAllowed
        | AuthError::EmailNotVerified
        | AuthError::MfaEnrollmentRequired => StatusCode::FORBIDDEN,
        AuthError::NotFound(_) | AuthError::NotSealed(_) => StatusCode::NOT_FOUND,
        AuthError::Conflict(_) => StatusCode::CONFLICT,
        AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Upstream(_) => StatusCode::BAD_GATEWAY,
        e if e.is_unknown_tenant() => StatusCode::NOT_FOUND,
        e if e.is_server_side() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use ErrorCode as C;
        match e {
            AuthError::InvalidToken(_) | AuthError::InvalidClient => ApiError::unauthorized(),
            // A wrong current password or one-time code on an account route.
            AuthError::InvalidCredentials | AuthError::InvalidGrant(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                C::InvalidCredentials,
                "wrong password or code",
            ),
            AuthError::Forbidden(_) | AuthError::AccessDenied(_) | AuthError::MfaRequired => {
                ApiError::forbidden("not allowed")
            }
            AuthError::LinkRefused(ref m) => ApiError::forbidden(m.clone()),
            ref e @ (AuthError::RegistrationClosed
            | AuthError::InvitationRequired
            | AuthError::EmailDomainNotAllowed
            | AuthError::EmailNotVerified
            | AuthError::MfaEnrollmentRequired) => {
                let code = match e {
                    AuthError::RegistrationClosed => C::RegistrationClosed,
                    AuthError::InvitationRequired => C::InvitationRequired,
                    AuthError::EmailDomainNotAllowed => C::EmailDomainNotAllowed,
                    AuthError::EmailNotVerified => C::EmailNotVerified,
                    _ => C::MfaEnrollmentRequired,
                };
                ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
            }
            AuthError::NotFound(_) => ApiError::not_found(),
            AuthError::NotSealed(_) => {
                ApiError::new(StatusCode::NOT_FOUND, C::AuditNotSealed, e.to_string())
            }
            AuthError::InvitationInvalid => {
                ApiError::new(StatusCode::NOT_FOUND, C::InvitationInvalid, e.to_string())
            }
            AuthError::InvitationExpired => {
                ApiError::new(StatusCode::GONE, C::InvitationExpired, e.to_string())
            }
            AuthError::InvitationRevoked => {
                ApiError::new(StatusCode::GONE, C::InvitationRevoked, e.to_string())
            }
            AuthError::InvitationUsed => {
                ApiError::new(StatusCode::CONFLICT, C::InvitationUsed, e.to_string())
            }
            AuthError::UpstreamDiscovery(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, C::IdpCheckFailed, e.to_string())
            }
            AuthError::UpstreamNotConnected(ref m) => {
                ApiError::new(StatusCode::CONFLICT, C::UpstreamNotConnected, m)
            }
            AuthError::NoSecretStore => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                C::SecretStoreUnavailable,
                e.to_string(),
            ),
            AuthError::UnknownPermission(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, C::UnknownPermission, e.to_string())
            }
            AuthError::UnknownRole(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, C::UnknownRole, e.to_string())
            }
            AuthError::RoleBuiltIn(_) => {
                ApiError::new(StatusCode::CONFLICT, C::RoleBuiltIn, e.to_string())
            }
            AuthError::RoleInUse(_) => {
                ApiError::new(StatusCode::CONFLICT, C::RoleInUse, e.to_string())
            }
            AuthError::RoleLockout => {
                ApiError::new(StatusCode::CONFLICT, C::RoleLockout, e.to_string())
            }
            ref e if e.is_unknown_tenant() => ApiError::not_found(),
            AuthError::Conflict(ref m) => ApiError::new(StatusCode::CONFLICT, C::Conflict, m),
            AuthError::RateLimited { retry_after } => {
                ApiError::rate_limited("too many requests", Some(retry_after.as_secs().max(1)))
            }
            ref e if e.is_server_side() => ApiError::internal(e),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<PortfolioError> for ApiError {
    fn from(e: PortfolioError) -> Self {
        use ErrorCode as C;
        match e {
            PortfolioError::NotFound => ApiError::not_found(),
            PortfolioError::Forbidden { needed } => {
                ApiError::forbidden(format!("needs {needed} access to this portfolio or case"))
            }
            PortfolioError::Invalid(m) => ApiError::bad_request(m),
            PortfolioError::CsvRejected(report) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                C::CsvRejected,
                format!(
                    "{} of {} rows are invalid; nothing was applied",
                    report.errors.len(),
                    report.rows
                ),
            )
            .with_details(serde_json::to_value(&*report).unwrap_or_default()),
            PortfolioError::TooLarge { limit, unit } => {
                ApiError::too_large(format!("at most {limit} {unit}"))
            }
            PortfolioError::MissingPrices { symbol } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                C::NoPrices,
                format!("no prices for {symbol} in the window"),
            ),
            PortfolioError::Valuation(v) => ApiError::bad_request(v.to_string()),
            PortfolioError::Tenancy(t) => ApiError::from(t),
            other => ApiError::internal(&other),
        }
    }
}

impl From<MembersError> for ApiError {
    fn from(e: MembersError) -> Self {
        use ErrorCode as C;
        let conflict = match &e {
            MembersError::AlreadyCommitted => Some(C::ImportAlreadyCommitted),
            MembersError::Expired => Some(C::ImportExpired),
            MembersError::HasRefusedRows(_) => Some(C::ImportHasRefusedRows),
            MembersError::DigestMismatch => Some(C::ImportHashMismatch),
            MembersError::Stale(_) => Some(C::ImportStale),
            _ => None,
        };
        if let Some(code) = conflict {
            return ApiError::new(StatusCode::CONFLICT, code, e.to_string());
        }
        match e {
            MembersError::Invalid { ref problems } => ApiError::bad_request(e.to_string())
                .with_details(serde_json::json!({ "problems": problems })),
            MembersError::NotFound(_) => ApiError::not_found(),
            MembersError::Crypto(msg) => {
                tracing::error!(request_id = %current_request_id(), error = %msg, "broker credential encryption failed");
                ApiError::unavailable(
                    C::CredentialEncryptionUnavailable,
                    "credential encryption is unavailable; retry shortly",
                    5,
                )
            }
            MembersError::Broker(msg) => {
                ApiError::new(StatusCode::BAD_GATEWAY, C::BrokerError, msg)
            }
            MembersError::Tenancy(t) => ApiError::from(t),
            MembersError::Auth(a) => ApiError::from(a),
            other => ApiError::internal(&other),
        }
    }
}

impl From<MarketError> for ApiError {
    fn from(e: MarketError) -> Self {
        match e {
            MarketError::UnknownSymbol { .. } => ApiError::not_found(),
            MarketError::InvalidInput(m) => ApiError::bad_request(m),
            e => {
                tracing::warn!(error = %e, "market request failed");
                ApiError::unavailable(ErrorCode::MarketUnavailable, "no provider could answer", 5)
            }
        }
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        use ErrorCode as C;
        match e {
            NotifyError::InvalidRequest(m) => ApiError::bad_request(m),
            NotifyError::InvalidToken => ApiError::new(
                StatusCode::BAD_REQUEST,
                C::InvalidToken,
                "the link is invalid or has expired",
            ),
            NotifyError::NotFound(_) => ApiError::not_found(),
            NotifyError::Limit(m) => ApiError::new(StatusCode::CONFLICT, C::LimitReached, m),
            NotifyError::Auth(e) => e.into(),
            NotifyError::Tenancy(e) => e.into(),
            e @ NotifyError::Smtp(_) => {
                tracing::warn!(error = %e, "mail relay");
                ApiError::unavailable(
                    C::MailUnavailable,
                    "the message could not be sent; try again later",
                    60,
                )
            }
            e => ApiError::internal(&e),
        }
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

// ------------------------------------------------------------ actix's own errors

/// Maps actix's JSON extractor errors (bad JSON, too large, not JSON) into
/// the envelope.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let e = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::too_large("request body is too large")
        }
        J::ContentType => ApiError::not_json(),
        other => ApiError::bad_request(format!("malformed JSON body: {other}")),
    };
    e.into()
}

/// Path extractor errors → 400 in the envelope.
pub fn path_error(
    err: actix_web::error::PathError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    // A malformed tenant slug gets the tenancy's own typed refusal
    // (`tenant_invalid_slug`), wherever in the path it stands.
    for name in ["tenant", "slug"] {
        if let Some(Err(e)) = req
            .match_info()
            .get(name)
            .map(rampart_tenancy::TenantSlug::parse)
        {
            return ApiError::from(e).into();
        }
    }
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
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = req
        .app_data::<actix_web::web::Data<KnownRoutes>>()
        .and_then(|routes| routes.allowed(req.path()));
    // A HEAD routed as GET is named as it came.
    let came_as_head = actix_web::HttpMessage::extensions(&req)
        .get::<crate::meta::WasHead>()
        .is_some();
    let method = if came_as_head {
        "HEAD".to_owned()
    } else {
        req.method().to_string()
    };
    let Some(allow) = allowed else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            "no such route",
        ));
    };
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{method} is not one of this route's methods ({allow})"),
    )
    .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        res.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    Ok(res)
}

/// The documented routes of one listener with their methods (from the
/// listener's own OpenAPI paths), so that a known path asked with another
/// method is answered 405 with `Allow` (RFC 9110 §15.5.6), not 404.
#[derive(Debug, Default)]
pub struct KnownRoutes(Vec<(actix_web::dev::ResourceDef, Vec<&'static str>)>);

impl KnownRoutes {
    /// The routes of `api`'s paths.
    pub fn of(api: &utoipa::openapi::OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.get.is_some() || item.head.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                let methods = methods
                    .into_iter()
                    .filter_map(|(method, has)| has.then_some(method))
                    .collect();
                (actix_web::dev::ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(routes)
    }

    /// The methods of the routes `path` matches (`GET, HEAD, POST`), if any.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let mut methods: Vec<&str> = Vec::new();
        for (def, of_route) in &self.0 {
            if !def.is_match(path) {
                continue;
            }
            for method in of_route {
                if !methods.contains(method) {
                    methods.push(method);
                }
            }
        }
        if crate::meta::has_effect_on_get(path) {
            methods.retain(|m| *m != "HEAD");
        }
        (!methods.is_empty()).then(|| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_get_their_rfc_statuses() {
        assert_eq!(
            oauth_status(&AuthError::InvalidClient),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            oauth_status(&AuthError::InvalidGrant("used".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            oauth_status(&AuthError::RateLimited {
                retry_after: std::time::Duration::from_secs(3)
            }),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            oauth_status(&AuthError::Tenancy(TenancyError::NotFound("x".into()))),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            oauth_status(&AuthError::Crypto("boom".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn codes_serialize_as_their_stable_text() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::Unauthorized,
            ErrorCode::TenantNotFound,
            ErrorCode::ImportHashMismatch,
            ErrorCode::CredentialEncryptionUnavailable,
        ] {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::String(code.as_str().to_owned()))
            );
        }
    }
}
