//! `ApiError`: the one place errors become HTTP — a status and Ollama's `{"error":"…"}` body
//! (escaped as Go's encoder escapes). Conversions have no side effect; server errors are logged
//! once, when the answer is rendered.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::BodyError;
use crate::convert::import::ImportError;
use crate::create::CreateError;
use crate::quantize::QuantError;
use crate::store::StoreError;

/// The most characters of an error message a client is sent (kiln's own messages are far
/// shorter; this bounds any that quote input).
pub const MESSAGE_CHARS: usize = 1024;

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

    /// 500 with a message.
    pub fn internal(m: impl Into<String>) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message: m.into() }
    }

    /// Logs a server error (5xx) as it goes out; client errors are the client's to read.
    #[must_use]
    pub fn logged(self) -> Self {
        // A 503 is load shedding (a cap reached), the server working as meant.
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = self.status.as_u16(), "internal error: {}", self.message);
        }
        self
    }

    /// `{"error":"…"}` as bytes; a message is cut at [`MESSAGE_CHARS`], so that no path can
    /// echo a whole request back.
    #[must_use]
    pub fn body(&self) -> String {
        let mut s = String::from("{\"error\":");
        kiln_core::gojson::write_str(&mut s, &kiln_core::error::clip_to(&self.message, MESSAGE_CHARS));
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

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::Read(_) => return Self::bad_request(format!("could not read the request body: {e}")),
        };
        Self { status, message: e.to_string() }
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

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::ModelNotFound(_) => Self::not_found(e.to_string()),
            CreateError::BlobNotFound(_)
            | CreateError::NotGguf(_)
            | CreateError::BadGguf { .. }
            | CreateError::BadStoredGguf(_) => Self::bad_request(e.to_string()),
            CreateError::Quantize(QuantError::Io(io))
            | CreateError::Io(io)
            | CreateError::Import(ImportError::Io(io)) => io.into(),
            CreateError::Import(_) | CreateError::Imatrix(_) => Self::bad_request(e.to_string()),
            CreateError::Quantize(
                QuantError::SourceType(_)
                | QuantError::TensorSource { .. }
                | QuantError::Header(_)
                | QuantError::Imatrix(_)
                | QuantError::ImatrixUnused { .. }
                | QuantError::ImatrixFilteredEmpty
                | QuantError::RowsUnfit(_)
                | QuantError::Policy(_)
                | QuantError::NoKernel { .. },
            ) => Self::bad_request(e.to_string()),
            CreateError::Store(s) => s.into(),
            CreateError::Quantize(_)
            | CreateError::MissingBlob { .. }
            | CreateError::Internal(_)
            | CreateError::Cancelled => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = self.logged();
        (this.status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], this.body()).into_response()
    }
}
