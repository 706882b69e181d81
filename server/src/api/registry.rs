//! `POST /api/pull` and `POST /api/push`: body → `RegistryRequest::target` (kiln-core) →
//! [`crate::registry`] on a blocking thread → NDJSON (or one object with `stream:false`) through
//! [`crate::http::ndjson`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kiln_core::event::ProgressEvent;
use kiln_core::request::{RegistryRequest, RegistryTarget};

use crate::http::extract::{self, JsonBody};
use crate::http::ndjson::respond;
use crate::registry::{Sink, pull, push};
use crate::state::AppState;
use crate::store::Store;

/// Decodes and checks the body, runs `work` on a blocking thread and answers from its events.
async fn serve(state: AppState, body: JsonBody, work: fn(&Arc<Store>, &RegistryTarget, &Sink)) -> Response {
    let JsonBody(body) = body;
    let target = extract::decode_with(body, |b| {
        extract::json::<RegistryRequest>(b).and_then(|r| r.target().map_err(Into::into))
    });
    let target = match target.await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let stream = target.stream;
    let (sink, rx) = Sink::channel();
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || work(&store, &target, &sink));
    respond(rx, stream).await
}

/// `POST /api/pull`.
#[utoipa::path(post, path = "/api/pull", request_body = RegistryRequest, responses((status = 200, description = "Progress lines (stream) or the last one", content((crate::http::openapi::StatusResponse = "application/json"), (ProgressEvent = "application/x-ndjson"))), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "The registry failed, refused the credentials or holds no such model; or storage failed", body = crate::http::openapi::ErrorResponse), (status = 507, description = "Disk full", body = crate::http::openapi::ErrorResponse)))]
pub async fn pull(State(state): State<AppState>, body: JsonBody) -> Response {
    serve(state, body, pull::run).await
}

/// `POST /api/push`.
#[utoipa::path(post, path = "/api/push", request_body = RegistryRequest, responses((status = 200, description = "Progress lines (stream) or the last one", content((crate::http::openapi::StatusResponse = "application/json"), (ProgressEvent = "application/x-ndjson"))), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model in the store", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "The registry failed or refused the credentials; or storage failed", body = crate::http::openapi::ErrorResponse)))]
pub async fn push(State(state): State<AppState>, body: JsonBody) -> Response {
    serve(state, body, push::run).await
}
