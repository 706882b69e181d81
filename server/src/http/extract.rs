//! JSON bodies the Ollama way: no `Content-Type` needed, an empty body is
//! `missing request body`, and decode errors are 400 with the decoder's message. Bodies are read
//! under the server's limits (`http/limits.rs`) and decoded off the async workers when large.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::JSON_BODY_LIMIT;
use super::error::ApiError;
use super::limits::BufferPermit;
use crate::state::AppState;

/// Bodies up to this size are decoded on the async worker; larger ones on a blocking thread, so
/// that a 64 MiB body cannot hold up other requests.
const INLINE_DECODE: usize = 64 << 10;

/// A JSON endpoint's raw body, read up to [`JSON_BODY_LIMIT`] within the body timeout and the
/// shared JSON budget; a larger, stalled or refused body is an [`ApiError`] (413 / 408 / 503 / 400
/// with `{"error"}`), not axum's plain-text rejection.
pub struct JsonBody(pub Buffered);

/// A buffered body and its share of the JSON budget, given back when this is dropped.
pub struct Buffered {
    /// The bytes.
    pub bytes: Bytes,
    _permit: BufferPermit,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let (bytes, permit) = state.limits.read_json_body(req.into_body(), declared, JSON_BODY_LIMIT).await?;
        Ok(Self(Buffered { bytes, _permit: permit }))
    }
}

/// Decodes a JSON request body.
///
/// # Errors
/// 400 `missing request body` or the decoder's message.
pub fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(kiln_core::Error::MissingBody.into());
    }
    serde_json::from_slice(body).map_err(|e| kiln_core::Error::BadJson(format!("invalid JSON body: {e}")).into())
}

/// Runs `f` (decoding, validation: work that grows with the body) over a body, on a blocking
/// thread when the body is large; the body and its budget share are freed when `f` returns.
///
/// # Errors
/// `f`'s error, or 500 if the blocking task panicked.
pub async fn decode_with<T: Send + 'static>(
    body: Buffered,
    f: impl FnOnce(&Bytes) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if body.bytes.len() <= INLINE_DECODE {
        return f(&body.bytes);
    }
    tokio::task::spawn_blocking(move || f(&body.bytes)).await.map_err(|e| ApiError::internal(e.to_string()))?
}

/// Decodes a JSON request body, off the async workers when it is large.
///
/// # Errors
/// As [`json`].
pub async fn decode<T: DeserializeOwned + Send + 'static>(body: Buffered) -> Result<T, ApiError> {
    decode_with(body, json).await
}
