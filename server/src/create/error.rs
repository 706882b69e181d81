//! Why a create failed, in the pipeline's own terms. `http/error.rs` maps each variant to a
//! status; the messages are Ollama's where Ollama has one.

use kiln_core::Digest;
use kiln_core::gguf::GgufError;

use super::events::Gone;
use crate::quantize::QuantError;
use crate::store::StoreError;

/// A create's failure.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The `from` model is not in the store.
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    /// A `files` or `adapters` digest that was never uploaded.
    #[error("blob \"{0}\" not found")]
    BlobNotFound(Digest),
    /// An uploaded file that is not GGUF.
    #[error("supplied file was not in GGUF format: {0}")]
    NotGguf(String),
    /// An uploaded GGUF whose header does not parse.
    #[error("{file}: {reason}")]
    BadGguf {
        /// The name the request gave the file.
        file: String,
        /// What is wrong with it.
        reason: GgufError,
    },
    /// A model layer of the `from` model whose header does not parse.
    #[error("{0}")]
    BadStoredGguf(GgufError),
    /// A blob the `from` model's manifest names is gone: the store is damaged.
    #[error("blob {digest} of model '{model}' is missing from the store")]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// The model naming it.
        model: String,
    },
    /// An uploaded Hugging Face directory that cannot be converted.
    #[error(transparent)]
    Import(#[from] crate::convert::import::ImportError),
    /// The importance matrix blob does not parse.
    #[error(transparent)]
    Imatrix(kiln_core::imatrix::ImatrixError),
    /// The model cannot be quantized as asked, or the quantizer failed.
    #[error(transparent)]
    Quantize(QuantError),
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A bug or a lost worker thread.
    #[error("{0}")]
    Internal(String),
    /// The client went away: stop quietly.
    #[error("client disconnected")]
    Cancelled,
}

impl From<Gone> for CreateError {
    fn from(_: Gone) -> Self {
        Self::Cancelled
    }
}

impl From<QuantError> for CreateError {
    fn from(e: QuantError) -> Self {
        match e {
            QuantError::Cancelled => Self::Cancelled,
            e => Self::Quantize(e),
        }
    }
}

impl From<tokio::task::JoinError> for CreateError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(format!("worker thread: {e}"))
    }
}
