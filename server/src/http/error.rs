//! `ApiError`: the one place errors become HTTP — a status and Ollama's `{"error":"…"}` body
//! (escaped as Go's encoder escapes). Internal errors are logged here, once.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The message clients show.
    pub message: String,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: m.into() }
    }

    /// 404 with a message.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: m.into() }
    }

    /// 500 with a message (logged).
    pub fn internal(m: impl Into<String>) -> Self {
        let message = m.into();
        tracing::error!("internal error: {message}");
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message }
    }

    /// `{"error":"…"}` as bytes.
    #[must_use]
    pub fn body(&self) -> String {
        let mut s = String::from("{\"error\":");
        kiln_core::gojson::write_str(&mut s, &self.message);
        s.push('}');
        s
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<kiln_core::Error> for ApiError {
    fn from(e: kiln_core::Error) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self { status, message: e.to_string() }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            return Self {
                status: StatusCode::INSUFFICIENT_STORAGE,
                message: "no space left on the device that holds the model store".into(),
            };
        }
        Self::internal(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(io) => io.into(),
            e @ StoreError::BadManifest { .. } => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], self.body()).into_response()
    }
}
