//! The on-disk store, Ollama's layout (`shared/spec/ollama-api.md` §5):
//! `blobs/sha256-<hex>` (content-addressed, immutable) and
//! `manifests/<host>/<namespace>/<model>/<tag>` (one JSON file per name).
//!
//! Every write goes through [`atomic`] (temp file, fsync, rename, fsync of the directory), so a
//! crash at any point leaves each file either old or new, never half-written. Temp files carry
//! the `.kiln-tmp-` prefix and are swept at start-up. Manifest writes and garbage collection run
//! under one lock; digests an in-flight create or upload still needs are pinned and never collected
//! while pinned: a collection that meets a pinned blob defers it to the moment the last pin goes.
//!
//! With `--models s3://bucket/prefix` the same layout lives in an S3-compatible bucket
//! ([`object`]), which is the source of truth: manifests are listed, read, written (conditional
//! puts) and deleted there, blobs are uploaded there before they count as published, and the
//! local folder (`root`) is only a cache of verified blobs plus temp files ([`remote`]).

pub mod atomic;
pub mod blobs;
pub mod config;
pub mod gc;
pub mod manifests;
pub mod media;
pub mod object;
pub mod remote;

use std::collections::{HashMap, HashSet};
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
    /// Digests in use by in-flight creates and uploads.
    pins: Mutex<Pins>,
    /// The bucket when `--models` is `s3://…`; `root` is then its local cache.
    bucket: Option<object::Bucket>,
    /// Held while the store is open, so that two servers never share (and sweep) one cache.
    _cache_lock: Option<std::fs::File>,
}

/// Pinned digests with their use counts, and the collections they postponed.
#[derive(Debug, Default)]
struct Pins {
    counts: HashMap<Digest, usize>,
    /// Pinned blobs a collection found unreferenced: collected again when their last pin goes,
    /// so a blob that was pinned while its model was replaced or deleted does not stay behind.
    deferred: HashSet<Digest>,
}

impl Pins {
    fn add(&mut self, d: &Digest) {
        *self.counts.entry(d.clone()).or_insert(0) += 1;
    }

    /// Drops one use of each digest; those that are now unpinned and were deferred.
    fn release(&mut self, digests: &[Digest]) -> Vec<Digest> {
        let mut due = Vec::new();
        for d in digests {
            if let Some(n) = self.counts.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(d);
                    if self.deferred.remove(d) {
                        due.push(d.clone());
                    }
                }
            }
        }
        due
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`, sweeps temp files a crash left behind and,
    /// unless `OLLAMA_NOPRUNE` is set, prunes unreferenced blobs as Ollama does at start-up.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("manifests"))?;
        Self::start(root, None, None)
    }

    /// Opens the store `--models` names: a folder, or `s3://bucket/prefix` cached in `cache`
    /// (default [`remote::default_cache`]).
    ///
    /// # Errors
    /// When the folder cannot be created, or the bucket cannot be reached or the cache locked.
    pub fn open_models(models: &Path, cache: Option<&Path>) -> std::io::Result<Self> {
        match models.to_str().filter(|m| object::parse_url(m).is_some()) {
            Some(url) => {
                let cache = cache.map_or_else(|| remote::default_cache(url), Path::to_path_buf);
                Self::open_bucket(url, &cache)
            }
            None => Self::open(models),
        }
    }

    /// Opens the store in the bucket `url` (`s3://bucket/prefix`), caching blobs in `cache`,
    /// which it locks for as long as it is open. The start-up prune then prunes only the cache:
    /// an unreferenced object in the bucket may be another server's create in flight (`kiln fsck
    /// --repair` collects the old ones).
    ///
    /// # Errors
    /// When the bucket cannot be listed, or the cache cannot be created or is in use.
    pub fn open_bucket(url: &str, cache: &Path) -> std::io::Result<Self> {
        let bucket = object::Bucket::open(url)?;
        std::fs::create_dir_all(cache.join("blobs"))?;
        let lock = std::fs::File::options().create(true).truncate(false).write(true).open(cache.join(".kiln-lock"))?;
        lock.try_lock().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("the cache {} is in use by another kiln server: give each its own --cache", cache.display()),
            )
        })?;
        Self::start(cache, Some(bucket), Some(lock))
    }

    fn start(root: &Path, bucket: Option<object::Bucket>, lock: Option<std::fs::File>) -> std::io::Result<Self> {
        let store = Self {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
            pins: Mutex::new(Pins::default()),
            bucket,
            _cache_lock: lock,
        };
        let swept = gc::sweep_temp_files(&store)?;
        if swept > 0 {
            tracing::info!(swept, "removed temp files left by an earlier run");
        }
        if gc::prune_enabled() {
            gc::prune(&store);
        } else {
            tracing::info!("OLLAMA_NOPRUNE is set: unreferenced blobs are kept");
        }
        Ok(store)
    }

    /// The bucket, when the store is in one (`root` is then its local cache).
    #[must_use]
    pub fn bucket(&self) -> Option<&object::Bucket> {
        self.bucket.as_ref()
    }

    /// The store's root folder (with a bucket: the local cache).
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
        let mut pins = self.pins();
        for d in &digests {
            pins.add(d);
        }
        Pin { store: self, digests, wrote: Vec::new() }
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, Pins> {
        self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Digests kept alive by [`Store::pin`].
#[derive(Debug)]
pub struct Pin<'a> {
    store: &'a Store,
    digests: Vec<Digest>,
    /// Blobs the holder created (not found already stored): its own to collect if it gives up.
    wrote: Vec<Digest>,
}

impl Pin<'_> {
    /// Pins one more digest under this guard.
    pub fn add(&mut self, d: Digest) {
        let _guard = self.store.locked();
        self.store.pins().add(&d);
        self.digests.push(d);
    }

    /// Records that the holder created the blob `d` (which it has pinned): if the work is
    /// abandoned, [`Pin::release`] hands it back for collection.
    pub fn wrote(&mut self, d: Digest) {
        self.wrote.push(d);
    }

    /// Marks the pinned blobs as deliberately (re)published, as an upload does: a collection
    /// deferred while they were pinned no longer applies, so they outlive the pin.
    pub fn keep(&self) {
        let mut pins = self.store.pins();
        for d in &self.digests {
            pins.deferred.remove(d);
        }
    }

    /// Unpins everything and returns the blobs that may now be unreferenced: those a collection
    /// deferred while they were pinned and, when `abandoned`, those the holder wrote. Collect
    /// them with [`Store::collect`] (on a blocking thread; dropping the guard instead collects
    /// on the spot).
    #[must_use]
    pub fn release(mut self, abandoned: bool) -> Vec<Digest> {
        let digests = std::mem::take(&mut self.digests);
        let mut due = self.store.pins().release(&digests);
        if abandoned {
            due.append(&mut self.wrote);
        }
        due
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let due = self.store.pins().release(&self.digests);
        // Rare (a delete or overwrite met one of these pins): a few small reads, then unlinks.
        if !due.is_empty() {
            self.store.collect(due);
        }
    }
}
