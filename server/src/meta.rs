//! The request id of the current request and the `meta` object of every
//! envelope (success and error alike): a leaf both envelopes build on.
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
    /// Now, with the current request's id.
    pub fn now() -> Self {
        Self {
            request_id: current_request_id(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            next_cursor: None,
        }
    }
}

/// Marks a request that came as HEAD and is routed as GET.
#[derive(Debug, Clone, Copy)]
pub struct WasHead;

/// GET routes whose answer changes something: e-mail verification spends
/// its token, `authorize` may issue a code, an upstream callback spends
/// the provider's code.
pub fn has_effect_on_get(path: &str) -> bool {
    path.ends_with("/email/verify")
        || path.ends_with("/oauth/authorize")
        || path.contains("/login/upstream/")
}
