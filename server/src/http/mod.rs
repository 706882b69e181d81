//! The route table: `pub fn app(AppState) -> Router`, per-route body limits, and Ollama's
//! plain-text 404/405 for everything else.

pub mod error;
pub mod extract;
pub mod guard;
pub mod limits;
pub mod ndjson;
pub mod openapi;
pub mod serve;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, head, post};

use crate::api;
use crate::state::AppState;

/// Largest JSON body accepted (messages may carry base64 images).
pub const JSON_BODY_LIMIT: usize = 64 << 20;

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    let blobs = Router::new()
        .route("/api/blobs/{digest}", head(api::blobs::head).post(api::blobs::upload))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/", get(api::version::root).head(api::version::root))
        .route("/api/version", get(api::version::version).head(api::version::version))
        .route("/api/create", post(api::create::create))
        .route("/api/tags", get(api::models::tags).head(api::models::tags))
        .route("/api/show", post(api::models::show))
        .route("/api/copy", post(api::models::copy))
        .route("/api/delete", axum::routing::delete(api::models::delete))
        .route("/api/pull", post(api::registry::pull))
        .route("/api/push", post(api::registry::push))
        .route("/api/kiln/info", get(api::version::info))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(blobs)
        .nest_service("/ui", ui::service(state.ui.as_deref()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(guard::close_after_unread_body))
        .layer(guard::cors(&state.origins))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check_host))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "404 page not found")
}

async fn method_not_allowed() -> impl IntoResponse {
    (StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
}
