//! `POST /api/create`: body → `kiln_core::validate` → [`crate::create::run`] in a task →
//! NDJSON (or one object with `stream:false`) through [`crate::http::ndjson`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kiln_core::event::ProgressEvent;
use kiln_core::request::CreateRequest;
use kiln_core::validate::validate_create;

use crate::create::events::Events;
use crate::http::extract::{self, JsonBody};
use crate::http::ndjson::respond;
use crate::state::AppState;

/// `POST /api/create`.
#[utoipa::path(post, path = "/api/create", request_body = CreateRequest, responses((status = 200, description = "Progress lines (stream) or one status object", content((crate::http::openapi::StatusResponse = "application/json"), (ProgressEvent = "application/x-ndjson"))), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "The `from` model does not exist", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Storage failure", body = crate::http::openapi::ErrorResponse), (status = 507, description = "Disk full", body = crate::http::openapi::ErrorResponse)))]
pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> Response {
    // Decoding and validating grow with the body (up to 64 MiB): off the async workers.
    let plan = extract::decode_with(body, |b| {
        extract::json::<CreateRequest>(b).and_then(|r| validate_create(&r).map_err(Into::into))
    });
    let plan = match plan.await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let stream = plan.stream;
    let (events, rx) = Events::channel();
    tokio::spawn(crate::create::run(state.store.clone(), state.quantizer.clone(), plan, events));
    respond(rx, stream).await
}
