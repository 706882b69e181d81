//! Garbage collection: the start-up sweep of temp files left by a crash, and the removal of
//! blobs no manifest references (after a delete or an overwrite). Pinned digests — those an
//! in-flight create or upload still needs — are never removed.

use std::collections::HashSet;

use kiln_core::Digest;

use super::{Store, TEMP_PREFIX};

/// Removes every kiln temp file in `blobs/` and `manifests/`. Runs before the server accepts
/// requests, so none of them can belong to live work.
///
/// # Errors
/// When a folder cannot be read.
pub fn sweep_temp_files(store: &Store) -> std::io::Result<usize> {
    let mut n = 0;
    for dir in [store.blobs_dir(), store.manifests_dir()] {
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

impl Store {
    /// Digests referenced by any manifest on disk (corrupt manifests are skipped, as in Ollama).
    #[must_use]
    pub fn referenced(&self) -> HashSet<Digest> {
        self.all_manifests().iter().flat_map(|m| m.manifest.digests().cloned().collect::<Vec<_>>()).collect()
    }

    /// Removes each candidate blob unless a manifest references it or it is pinned. Call with the
    /// store lock held.
    pub(super) fn collect_unreferenced(&self, candidates: Vec<Digest>) {
        let referenced = self.referenced();
        for d in candidates {
            if referenced.contains(&d) || self.is_pinned(&d) {
                continue;
            }
            match std::fs::remove_file(self.blob_path(&d)) {
                Ok(()) => tracing::debug!(digest = %d, "removed unreferenced blob"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(digest = %d, "could not remove blob: {e}"),
            }
        }
    }
}
