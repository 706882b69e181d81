//! The NDJSON progress event of `/api/create` (`api.ProgressResponse`).
//!
//! Wire format: one compact JSON object per line, `\n`-terminated, never a blank line.
//! `{"status":"…","digest":"…","total":N,"completed":N}` with `digest`, `total` and `completed`
//! left out when empty or zero; a failure is one line `{"error":"…"}` that ends the stream.
//! Quantization progress uses the 19-zero placeholder digest [`PLACEHOLDER_DIGEST`] (old CLIs
//! slice `digest[7:19]`).

use alloc::string::String;

use serde::{Deserialize, Serialize};

/// Digest used by progress events that belong to no layer yet.
pub const PLACEHOLDER_DIGEST: &str = "0000000000000000000";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// One line of the create stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressEvent {
    /// What is happening, e.g. `parsing GGUF`, `writing manifest`, `success`.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub status: String,
    /// The layer (or placeholder) this progress belongs to.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub digest: String,
    /// Total bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Bytes done.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completed: u64,
    /// Set on the failure line only.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub error: String,
}

impl ProgressEvent {
    /// A plain status line.
    #[must_use]
    pub fn status(s: impl Into<String>) -> Self {
        Self { status: s.into(), ..Self::default() }
    }

    /// A progress tick.
    #[must_use]
    pub fn progress(s: impl Into<String>, digest: impl Into<String>, total: u64, completed: u64) -> Self {
        Self { status: s.into(), digest: digest.into(), total, completed, ..Self::default() }
    }

    /// The failure line.
    #[must_use]
    pub fn error(e: impl Into<String>) -> Self {
        Self { error: e.into(), ..Self::default() }
    }
}
