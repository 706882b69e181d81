//! `GET|HEAD /` (health check) and `GET|HEAD /api/version`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use kiln_core::request::{KilnInfo, VersionResponse};

use crate::state::AppState;

/// The Ollama API version kiln speaks.
pub const OLLAMA_API_VERSION: &str = "0.33.0";

/// `GET /`: a browser (`Accept: text/html`) goes to the dashboard; every other client gets
/// Ollama's health-check text.
#[utoipa::path(get, path = "/", responses((status = 200, description = "Health check", content_type = "text/plain", body = String), (status = 307, description = "A browser (Accept: text/html) is sent to the dashboard")))]
pub async fn root(headers: HeaderMap) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser { Redirect::temporary("/ui/").into_response() } else { "Ollama is running".into_response() }
}

/// `GET /api/version`.
#[utoipa::path(get, path = "/api/version", responses((status = 200, description = "The API version", body = VersionResponse)))]
pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse { version: OLLAMA_API_VERSION.into(), kiln: env!("CARGO_PKG_VERSION").into() })
}

/// `GET /api/kiln/info`: which quantizer runs.
#[utoipa::path(get, path = "/api/kiln/info", responses((status = 200, description = "Which quantizer runs", body = KilnInfo)))]
pub async fn info(State(state): State<AppState>) -> Json<KilnInfo> {
    Json(KilnInfo { quantizer: state.quantizer.info().clone() })
}
