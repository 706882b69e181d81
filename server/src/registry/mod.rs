//! Push and pull against OCI registries (`shared/spec/ollama-registry.md`): a model name's host
//! is the registry, `<namespace>/<model>` the repository, the tag the manifest's reference. The
//! work runs on a blocking thread (`ureq`, files streamed, never whole in memory) and reports
//! through a [`Sink`]; it speaks no HTTP to kiln's own client: `http/ndjson.rs` renders what
//! arrives, `http/error.rs` maps a [`RegistryError`] to a status.

pub mod client;
pub mod pull;
pub mod push;

use std::time::{Duration, Instant};

use kiln_core::ModelName;
use kiln_core::event::ProgressEvent;
use tokio::sync::mpsc;

use crate::create::events::Msg;
use crate::store::StoreError;

/// Why a push or pull failed, worded as Ollama words it where its clients show it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A push of a model the store does not hold.
    #[error("model \"{0}\" not found")]
    ModelNotFound(String),
    /// The registry answered 401 even with the credentials kiln has (or it has none).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The registry has no such manifest (Ollama's text, which its CLI matches).
    #[error("pull model manifest: file does not exist")]
    ManifestNotFound,
    /// The registry's manifest is not one kiln will store.
    #[error("pull model manifest: {0}")]
    BadManifest(String),
    /// A blob's bytes are not its digest; the partial file was deleted.
    #[error("digest mismatch, file must be downloaded again: want {want}, got {got}")]
    DigestMismatch {
        /// The manifest's digest.
        want: String,
        /// What arrived.
        got: String,
    },
    /// The registry answered an unexpected status: `<code>: <body>` as Ollama reports it.
    #[error("{code}: {body}")]
    Status {
        /// HTTP status.
        code: u16,
        /// Its body, clipped.
        body: String,
    },
    /// The registry could not be reached, or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// A store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file failure (reading a blob, writing a download).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The client went away.
    #[error("client disconnected")]
    Cancelled,
}

/// Where a push or pull reports.
pub type RegistryMsg = Msg<RegistryError>;

/// The sending end of a push or pull, used from its blocking thread.
#[derive(Debug, Clone)]
pub struct Sink(mpsc::Sender<RegistryMsg>);

impl Sink {
    /// A sink and its receiving end.
    #[must_use]
    pub fn channel() -> (Self, mpsc::Receiver<RegistryMsg>) {
        let (tx, rx) = mpsc::channel(64);
        (Self(tx), rx)
    }

    /// Sends one event.
    ///
    /// # Errors
    /// [`RegistryError::Cancelled`] once the client is gone.
    pub fn send(&self, e: ProgressEvent) -> Result<(), RegistryError> {
        self.0.blocking_send(Msg::Progress(e)).map_err(|_| RegistryError::Cancelled)
    }

    /// Sends a plain status line.
    ///
    /// # Errors
    /// [`RegistryError::Cancelled`] once the client is gone.
    pub fn status(&self, s: impl Into<String>) -> Result<(), RegistryError> {
        self.send(ProgressEvent::status(s))
    }

    /// Reports the failure (a client that is gone hears nothing).
    pub fn fail(&self, e: RegistryError) {
        let _ = self.0.blocking_send(Msg::Failed(e));
    }

    /// Whether the client is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Progress lines for one blob, at most one per [`Ticker::EVERY`] (Ollama's 60 ms), the last
/// always sent.
#[derive(Debug)]
pub struct Ticker {
    status: String,
    digest: String,
    total: u64,
    last: Option<Instant>,
}

impl Ticker {
    /// Ollama's progress period.
    pub const EVERY: Duration = Duration::from_millis(60);

    /// `<verb> <12 hex>` for the blob `digest` of `total` bytes.
    #[must_use]
    pub fn new(verb: &str, digest: &kiln_core::Digest, total: u64) -> Self {
        Self { status: format!("{verb} {}", &digest.hex()[..12]), digest: digest.to_string(), total, last: None }
    }

    /// Reports `completed` bytes if a period has passed (or it is the end).
    ///
    /// # Errors
    /// [`RegistryError::Cancelled`] once the client is gone.
    pub fn tick(&mut self, sink: &Sink, completed: u64) -> Result<(), RegistryError> {
        let due = self.last.is_none_or(|t| t.elapsed() >= Self::EVERY) || completed >= self.total;
        if !due {
            return if sink.is_closed() { Err(RegistryError::Cancelled) } else { Ok(()) };
        }
        self.last = Some(Instant::now());
        sink.send(ProgressEvent::progress(&self.status, &self.digest, self.total, completed))
    }
}

/// A repository on a registry: the URLs of §2.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `http(s)://host[:port]`.
    pub base: String,
    /// `host[:port]`.
    pub host: String,
    /// `<namespace>/<model>`.
    pub repo: String,
    /// The manifest reference.
    pub tag: String,
}

impl Remote {
    /// The repository `name` names; `https` unless `insecure`.
    #[must_use]
    pub fn new(name: &ModelName, insecure: bool) -> Self {
        let scheme = if insecure { "http" } else { "https" };
        Self {
            base: format!("{scheme}://{}", name.host),
            host: name.host.clone(),
            repo: format!("{}/{}", name.namespace, name.model),
            tag: name.tag.clone(),
        }
    }

    /// `/v2/<repo>/manifests/<tag>`.
    #[must_use]
    pub fn manifest_url(&self) -> String {
        format!("{}/v2/{}/manifests/{}", self.base, self.repo, self.tag)
    }

    /// `/v2/<repo>/blobs/<digest>`.
    #[must_use]
    pub fn blob_url(&self, d: &kiln_core::Digest) -> String {
        format!("{}/v2/{}/blobs/{d}", self.base, self.repo)
    }

    /// `/v2/<repo>/blobs/uploads/` (trailing slash, as the protocol has it).
    #[must_use]
    pub fn uploads_url(&self) -> String {
        format!("{}/v2/{}/blobs/uploads/", self.base, self.repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_the_spec_maps_names() {
        let n = ModelName::parse("localhost:5000/me/m:q4").expect("name");
        let r = Remote::new(&n, true);
        assert_eq!(r.manifest_url(), "http://localhost:5000/v2/me/m/manifests/q4");
        assert_eq!(r.uploads_url(), "http://localhost:5000/v2/me/m/blobs/uploads/");
        let n = ModelName::parse("llama3.2").expect("name");
        assert_eq!(
            Remote::new(&n, false).manifest_url(),
            "https://registry.ollama.ai/v2/library/llama3.2/manifests/latest"
        );
        let d = kiln_core::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("digest");
        assert_eq!(
            Remote::new(&n, false).blob_url(&d),
            format!("https://registry.ollama.ai/v2/library/llama3.2/blobs/{d}")
        );
    }
}
