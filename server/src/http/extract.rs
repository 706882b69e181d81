//! JSON bodies the Ollama way: no `Content-Type` needed, an empty body is
//! `missing request body`, and decode errors are 400 with the decoder's message.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;

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
