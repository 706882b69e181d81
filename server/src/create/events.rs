//! Where a running create reports: progress events and, at most once, its failure. The pipeline
//! knows nothing of HTTP; `http/ndjson.rs` renders what arrives here. A send fails once the
//! receiver (the client) is gone, which is how the pipeline learns to stop.

use kiln_core::event::ProgressEvent;
use tokio::sync::mpsc;

use super::error::CreateError;

/// A message from a running create (or, with its own error type `E`, a push or pull).
#[derive(Debug)]
pub enum Msg<E = CreateError> {
    /// A status line.
    Progress(ProgressEvent),
    /// The work failed; nothing follows.
    Failed(E),
}

/// The receiver went away.
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
    /// [`Gone`] once the receiver has gone.
    pub async fn send(&self, e: ProgressEvent) -> Result<(), Gone> {
        self.0.send(Msg::Progress(e)).await.map_err(|_| Gone)
    }

    /// Sends a plain status line.
    ///
    /// # Errors
    /// [`Gone`] once the receiver has gone.
    pub async fn status(&self, s: impl Into<String>) -> Result<(), Gone> {
        self.send(ProgressEvent::status(s)).await
    }

    /// Sends a progress event from a blocking thread (the quantizer).
    ///
    /// # Errors
    /// [`Gone`] once the receiver has gone.
    pub fn send_blocking(&self, e: ProgressEvent) -> Result<(), Gone> {
        self.0.blocking_send(Msg::Progress(e)).map_err(|_| Gone)
    }

    /// Sends the failure (nobody may be listening any more: then there is no one to tell).
    pub async fn fail(&self, e: CreateError) {
        let _ = self.0.send(Msg::Failed(e)).await;
    }

    /// Whether the receiver is gone (checked by long CPU work between sends).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
