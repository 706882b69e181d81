//! The create stream: the pipeline sends [`Msg`]s into an [`Events`] sink; this module turns them
//! into Ollama's responses — NDJSON lines when streaming, one object when not — with its error
//! rules (§1): an error before any output is a real HTTP status, after output an `{"error"}` line.
//! A send fails once the client has gone, which is how the pipeline learns to stop.

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kiln_core::event::ProgressEvent;
use tokio::sync::mpsc;

use super::error::ApiError;

/// A message from a running create.
#[derive(Debug)]
pub enum Msg {
    /// A status line.
    Progress(ProgressEvent),
    /// The create failed; nothing follows.
    Failed(ApiError),
}

/// The client went away.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("client disconnected")]
pub struct Gone;

/// Where a create sends its events.
#[derive(Debug, Clone)]
pub struct Events(mpsc::Sender<Msg>);

impl Events {
    /// A sink and its receiving end.
    #[must_use]
    pub fn channel() -> (Self, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(64);
        (Self(tx), rx)
    }

    /// Sends a progress event.
    ///
    /// # Errors
    /// [`Gone`] once the client has disconnected.
    pub async fn send(&self, e: ProgressEvent) -> Result<(), Gone> {
        self.0.send(Msg::Progress(e)).await.map_err(|_| Gone)
    }

    /// Sends a plain status line.
    ///
    /// # Errors
    /// [`Gone`] once the client has disconnected.
    pub async fn status(&self, s: impl Into<String>) -> Result<(), Gone> {
        self.send(ProgressEvent::status(s)).await
    }

    /// Sends a progress event from a blocking thread (the quantizer).
    ///
    /// # Errors
    /// [`Gone`] once the client has disconnected.
    pub fn send_blocking(&self, e: ProgressEvent) -> Result<(), Gone> {
        self.0.blocking_send(Msg::Progress(e)).map_err(|_| Gone)
    }

    /// Sends the failure.
    pub async fn fail(&self, e: ApiError) {
        let _ = self.0.send(Msg::Failed(e)).await;
    }

    /// Whether the client is gone (checked by long CPU work between sends).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

fn line(e: &ProgressEvent) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Answers a create from its event stream.
pub async fn respond(mut rx: mpsc::Receiver<Msg>, stream: bool) -> Response {
    let first = match rx.recv().await {
        Some(Msg::Progress(p)) => p,
        Some(Msg::Failed(e)) => return e.into_response(),
        None => return ApiError::internal("create ended without a result").into_response(),
    };
    if !stream {
        let mut last = first;
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Progress(p) => last = p,
                Msg::Failed(e) => return e.into_response(),
            }
        }
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], line(&last))
            .into_response();
    }
    let rest = tokio_stream_from(rx).map(|m| {
        Ok::<_, std::convert::Infallible>(match m {
            Msg::Progress(p) => line(&p),
            Msg::Failed(e) => Bytes::from(format!("{}\n", e.body())),
        })
    });
    let body = futures_util::stream::once(async move { Ok(line(&first)) }).chain(rest);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(body)).into_response()
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Msg>) -> impl futures_util::Stream<Item = Msg> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
