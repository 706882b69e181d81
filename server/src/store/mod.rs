//! The on-disk store, Ollama's layout (`shared/spec/ollama-api.md` §5):
//! `blobs/sha256-<hex>` (content-addressed, immutable) and
//! `manifests/<host>/<namespace>/<model>/<tag>` (one JSON file per name).
//!
//! Every write goes through [`atomic`] (temp file, fsync, rename, fsync of the directory), so a
//! crash at any point leaves each file either old or new, never half-written. Temp files carry
//! the `.kiln-tmp-` prefix and are swept at start-up. Manifest writes and garbage collection run
//! under one lock; digests an in-flight create or upload still needs are pinned and never collected.

pub mod atomic;
pub mod blobs;
pub mod config;
pub mod gc;
pub mod manifests;
pub mod media;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_core::Digest;

pub use blobs::MAX_TEXT_BLOB;
pub use config::ConfigFile;
pub use manifests::{Layer, Manifest};

/// Prefix of every temp file kiln creates inside the store.
pub const TEMP_PREFIX: &str = ".kiln-tmp-";

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A manifest on disk that does not parse or names a malformed digest.
    #[error("manifest {path} is corrupt: {reason}")]
    BadManifest {
        /// Which file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The model store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// Serialises manifest writes, deletes and garbage collection.
    lock: Mutex<()>,
    /// Digests in use by in-flight creates and uploads, with use counts.
    pins: Mutex<HashMap<Digest, usize>>,
}

impl Store {
    /// Opens (creating if needed) the store at `root` and sweeps temp files a crash left behind.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("manifests"))?;
        let store = Self { root: root.to_path_buf(), lock: Mutex::new(()), pins: Mutex::new(HashMap::new()) };
        let swept = gc::sweep_temp_files(&store)?;
        if swept > 0 {
            tracing::info!(swept, "removed temp files left by an earlier run");
        }
        Ok(store)
    }

    /// The store's root folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/`.
    #[must_use]
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// `manifests/`.
    #[must_use]
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `digests` from being garbage-collected until the returned guard drops.
    ///
    /// Pinning takes the store lock, so it is ordered against garbage collection: a digest pinned
    /// before a collection is kept by it; one pinned after may already be gone, which the caller
    /// sees when it checks the blob exists (always after pinning).
    pub fn pin(&self, digests: impl IntoIterator<Item = Digest>) -> Pin<'_> {
        let digests: Vec<Digest> = digests.into_iter().collect();
        let _guard = self.locked();
        let mut pins = self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in &digests {
            *pins.entry(d.clone()).or_insert(0) += 1;
        }
        Pin { store: self, digests }
    }

    fn is_pinned(&self, d: &Digest) -> bool {
        self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(d)
    }
}

/// Digests kept alive by [`Store::pin`].
#[derive(Debug)]
pub struct Pin<'a> {
    store: &'a Store,
    digests: Vec<Digest>,
}

impl Pin<'_> {
    /// Pins one more digest under this guard.
    pub fn add(&mut self, d: Digest) {
        let _guard = self.store.locked();
        let mut pins = self.store.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *pins.entry(d.clone()).or_insert(0) += 1;
        self.digests.push(d);
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let mut pins = self.store.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in &self.digests {
            if let Some(n) = pins.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(d);
                }
            }
        }
    }
}
