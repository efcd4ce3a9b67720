//! The exact JOSE protected headers this crate writes. Both the key ring
//! (which precomputes them per key) and the token service (which signs and
//! parses with them) use these, so they live apart from both.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::AuthError;

/// `typ` of access tokens (RFC 9068).
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of ID tokens.
pub(crate) const ID_TOKEN_TYP: &str = "JWT";
/// The `typ` values we sign with.
pub(crate) const SIGNED_TYPES: [&str; 2] = [ACCESS_TOKEN_TYP, ID_TOKEN_TYP];

#[derive(Serialize)]
struct OutgoingHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The base64url JWS protected header we write for `alg`, `typ` and `kid`.
pub(crate) fn jws_header_b64(alg: &str, typ: &str, kid: &str) -> Result<String, AuthError> {
    let json = serde_json::to_vec(&OutgoingHeader { alg, typ, kid })
        .map_err(|e| AuthError::Crypto(e.to_string()))?;
    Ok(B64.encode(json))
}

/// The base64url JWE protected header we write on a `tid` with key `kid`.
pub(crate) fn tid_header_b64(kid: &str) -> Result<String, AuthError> {
    let json = serde_json::to_vec(&TidHeader {
        alg: "dir".into(),
        enc: "A256GCM".into(),
        kid: Some(kid.into()),
        zip: None,
        crit: None,
    })
    .map_err(|e| AuthError::Crypto(e.to_string()))?;
    Ok(B64.encode(json))
}

/// A `tid` JWE protected header; anything beyond these fields is refused.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TidHeader {
    pub(crate) alg: String,
    pub(crate) enc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) zip: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) crit: Option<serde_json::Value>,
}
