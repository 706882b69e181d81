//! `GET|HEAD /` (health check) and `GET|HEAD /api/version`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

/// The Ollama API version kiln speaks.
pub const OLLAMA_API_VERSION: &str = "0.33.0";

/// `GET /`: a browser (`Accept: text/html`) goes to the dashboard; every other client gets
/// Ollama's health-check text.
pub async fn root(headers: HeaderMap) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser { Redirect::temporary("/ui/").into_response() } else { "Ollama is running".into_response() }
}

/// `GET /api/version`.
pub async fn version() -> Json<Value> {
    Json(json!({ "version": OLLAMA_API_VERSION, "kiln": env!("CARGO_PKG_VERSION") }))
}

/// `GET /api/kiln/info`: which quantizer runs.
pub async fn info(State(state): State<crate::state::AppState>) -> Json<Value> {
    Json(json!({ "quantizer": { "backend": "cpu", "threads": state.threads } }))
}
