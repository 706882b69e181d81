//! `GET|HEAD /` (health check) and `GET|HEAD /api/version`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// The Ollama API version kiln speaks.
pub const OLLAMA_API_VERSION: &str = "0.33.0";

/// `GET /`: Ollama's health-check text.
pub async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /api/version`.
pub async fn version() -> Json<Value> {
    Json(json!({ "version": OLLAMA_API_VERSION, "kiln": env!("CARGO_PKG_VERSION") }))
}

/// `GET /api/kiln/info`: which quantizer runs.
pub async fn info(State(state): State<crate::state::AppState>) -> Json<Value> {
    Json(json!({ "quantizer": { "backend": "cpu", "threads": state.threads } }))
}
