//! `HEAD|POST /api/blobs/:digest`: the body streams into a temp file in `blobs/` while SHA-256
//! runs over it; the file is fsynced and renamed into place only if the digest matches. A blob is
//! never held in memory, and a mismatch, a client that disconnects or a full disk leave nothing.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kiln_core::Digest;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::http::error::ApiError;
use crate::http::limits::BodyError;
use crate::state::AppState;
use crate::store::blobs::finish;

/// `HEAD /api/blobs/:digest`: 200 if stored, else 404.
///
/// # Errors
/// 400 for a malformed digest, 404 when absent.
#[utoipa::path(head, path = "/api/blobs/{digest}", params(("digest" = String, Path, description = "sha256:<64 hex>")), responses((status = 200, description = "Stored"), (status = 400, description = "Malformed digest"), (status = 404, description = "Not stored")))]
pub async fn head(State(state): State<AppState>, Path(digest): Path<String>) -> Result<StatusCode, ApiError> {
    let d = Digest::parse(&digest)?;
    if state.store.has_blob(&d) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found(format!("blob \"{d}\" not found")))
    }
}

/// A read failure keeps its upload wording; a stall is the limits' 408.
fn interrupted(e: BodyError) -> ApiError {
    match e {
        BodyError::Read(e) => ApiError::bad_request(format!("upload interrupted: {e}")),
        e => e.into(),
    }
}

/// `POST /api/blobs/:digest`: 201 when stored, 200 when it already was.
///
/// # Errors
/// 400 for a malformed or mismatching digest; 507/500 for storage failures.
#[utoipa::path(post, path = "/api/blobs/{digest}", params(("digest" = String, Path, description = "sha256:<64 hex>")), request_body(content = String, content_type = "application/octet-stream", description = "The blob's bytes"), responses((status = 201, description = "Stored"), (status = 200, description = "Already stored"), (status = 400, description = "Malformed or mismatching digest", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Storage failure", body = crate::http::openapi::ErrorResponse), (status = 507, description = "Disk full", body = crate::http::openapi::ErrorResponse)))]
pub async fn upload(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let expected = Digest::parse(&digest)?;
    let store = state.store.clone();
    // Pinned before the existence check: a delete that races this upload then leaves the blob
    // in place (`keep` below), so a 200 means a following create finds it. One that ran just
    // before the pin shows as a missing blob, which is then stored from this body.
    let pin = store.pin([expected.clone()]);
    if store.has_blob(&expected) {
        store.touch(&expected);
        // Read the body to its end (discarding it): answering early makes hyper close the
        // connection under a client still sending, which that client sees as a transport error
        // instead of this 200.
        let mut stream = body.into_data_stream();
        while state.limits.next_chunk(&mut stream).await.map_err(interrupted)?.is_some() {}
        pin.keep();
        return Ok(StatusCode::OK);
    }
    let tmp = store.blob_temp()?;
    let mut file = tokio::fs::File::from_std(tmp.as_file().try_clone()?);
    let mut hasher = Sha256::new();
    let mut stream = body.into_data_stream();
    // A stalled upload fails after the body timeout, which removes its temp file.
    while let Some(chunk) = state.limits.next_chunk(&mut stream).await.map_err(interrupted)? {
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    let got = finish(hasher);
    if got != expected {
        return Err(ApiError::bad_request(format!("digest mismatch, expected \"{digest}\", got \"{got}\"")));
    }
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || store2.publish_blob(tmp, &got))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    pin.keep();
    Ok(StatusCode::CREATED)
}
