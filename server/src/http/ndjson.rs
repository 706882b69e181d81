//! The create (push, pull) stream rendered: the [`Msg`]s (`create/events.rs`) become Ollama's
//! responses — NDJSON lines when streaming, one object when not — with its error rules (§1): an
//! error before any output is a real HTTP status, after output an `{"error"}` line. Dropping the
//! receiver when the client goes is how the pipeline learns to stop.

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kiln_core::event::ProgressEvent;
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::create::events::Msg;

fn line(e: &ProgressEvent) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Answers a create (or a push or pull) from its event stream.
pub async fn respond<E>(mut rx: mpsc::Receiver<Msg<E>>, stream: bool) -> Response
where
    ApiError: From<E>,
    E: Send + 'static,
{
    let first = match rx.recv().await {
        Some(Msg::Progress(p)) => p,
        Some(Msg::Failed(e)) => return ApiError::from(e).into_response(),
        None => return ApiError::internal("create ended without a result").into_response(),
    };
    if !stream {
        let mut last = first;
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Progress(p) => last = p,
                Msg::Failed(e) => return ApiError::from(e).into_response(),
            }
        }
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], line(&last))
            .into_response();
    }
    let rest = tokio_stream_from(rx).map(|m| {
        Ok::<_, std::convert::Infallible>(match m {
            Msg::Progress(p) => line(&p),
            Msg::Failed(e) => Bytes::from(format!("{}\n", ApiError::from(e).logged().body())),
        })
    });
    let body = futures_util::stream::once(async move { Ok(line(&first)) }).chain(rest);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(body)).into_response()
}

fn tokio_stream_from<E>(mut rx: mpsc::Receiver<Msg<E>>) -> impl futures_util::Stream<Item = Msg<E>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
