//! JSON bodies the Ollama way: no `Content-Type` needed, an empty body is
//! `missing request body`, and decode errors are 400 with the decoder's message.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::JSON_BODY_LIMIT;
use super::error::ApiError;

/// A JSON endpoint's raw body, read up to [`JSON_BODY_LIMIT`]; a larger or broken body is an
/// [`ApiError`] (413 / 400 with `{"error"}`), not axum's plain-text rejection.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body larger than {} MiB", JSON_BODY_LIMIT >> 20),
        };
        // Refuse from the declared length before reading anything; the limit on the stream
        // catches chunked bodies.
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > JSON_BODY_LIMIT as u64) {
            return Err(too_large());
        }
        Bytes::from_request(req, state).await.map(JsonBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request(format!("could not read the request body: {}", e.body_text()))
            }
        })
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
