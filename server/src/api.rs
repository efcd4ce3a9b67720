//! The success envelope of the API (`{"success": true, "data", "meta"}`),
//! response helpers, and the request-body extractors. Errors and their
//! envelope live in [`crate::error`].
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use futures::future::LocalBoxFuture;
use serde::Serialize;

use crate::error::ApiError;
pub use crate::meta::{Meta, current_request_id};

/// `{"success": true, "data": …, "meta": …}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    success: bool,
    data: T,
    meta: Meta,
}

/// What a handler answers: a response, or the error envelope.
pub type Answer = Result<HttpResponse, ApiError>;

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

/// A page of the portfolio crate's lists (portfolios, cases, versions,
/// activity) as [`page`].
pub fn page_of<T: Serialize>(p: rampart_portfolio::Page<T>) -> HttpResponse {
    page(p.items, p.next)
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
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
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
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let is_json = req.content_type().ends_with("json");
        let body = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            if !is_json {
                return Err(ApiError::not_json().into());
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

/// A response holding a secret shown once: enveloped, never cached.
pub fn shown_once<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    let mut r = ok_status(status, data);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// A CSV download.
pub fn csv(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// An SVG chart (private, cacheable for a minute).
pub fn svg(svg: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
        .body(svg)
}

/// Marks a response that serves a last known value (every provider failed):
/// RFC 9111 `Age` in seconds and the RFC 7234 stale warning, so caches and
/// clients see it without reading the body.
pub fn mark_stale(res: &mut HttpResponse, age: std::time::Duration) {
    let headers = res.headers_mut();
    headers.insert(header::AGE, header::HeaderValue::from(age.as_secs()));
    headers.insert(
        header::WARNING,
        header::HeaderValue::from_static("110 - \"Response is Stale\""),
    );
}

/// `ok` around `data` that is already serialized JSON (a cached answer).
pub fn ok_raw(data: &[u8]) -> Result<HttpResponse, ApiError> {
    let meta = serde_json::to_vec(&Meta::now()).map_err(|e| ApiError::internal(&e))?;
    let mut body = Vec::with_capacity(data.len() + meta.len() + 40);
    body.extend_from_slice(br#"{"success":true,"data":"#);
    body.extend_from_slice(data);
    body.extend_from_slice(br#","meta":"#);
    body.extend_from_slice(&meta);
    body.push(b'}');
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}
