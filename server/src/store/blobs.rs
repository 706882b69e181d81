//! Content-addressed blobs: exists, open, publish. A blob is only ever renamed into place after
//! its bytes were hashed and fsynced, so `blobs/sha256-<hex>` always holds exactly `<hex>`'s bytes.

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use kiln_core::Digest;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::{Store, atomic};

/// Largest text/JSON blob kiln reads back whole (templates, params, messages, config).
pub const MAX_TEXT_BLOB: u64 = 64 << 20;

/// Whether publishing created the blob or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The blob is new.
    Created,
    /// An identical blob was already stored.
    Existing,
}

impl Published {
    /// The status line Ollama sends for a layer.
    #[must_use]
    pub fn status(self, d: &Digest) -> String {
        match self {
            Self::Created => format!("creating new layer {d}"),
            Self::Existing => format!("using existing layer {d}"),
        }
    }
}

/// SHA-256 of a byte slice as a digest.
#[must_use]
pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest::from_bytes(&Sha256::digest(bytes).into())
}

/// Finishes a running hash into a digest.
#[must_use]
pub fn finish(hasher: Sha256) -> Digest {
    Digest::from_bytes(&hasher.finalize().into())
}

impl Store {
    /// `blobs/sha256-<hex>` under the root, whether or not it exists (with a bucket: the cache's
    /// copy, which may be absent).
    pub(super) fn cached_blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.file_name())
    }

    /// `blobs/sha256-<hex>`, the blob's file. With a bucket: the local cache's copy, downloaded
    /// (and verified) first when it is not cached; when that fails, the path of the missing file,
    /// so that opening it fails (see [`Store::blob_file`] for the reason).
    #[must_use]
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blob_file(d).unwrap_or_else(|e| {
            tracing::warn!(digest = %d, "blob not available locally: {e}");
            self.cached_blob_path(d)
        })
    }

    /// The blob's file, as [`Store::blob_path`], or why it cannot be had locally.
    ///
    /// # Errors
    /// With a bucket: the blob is not in it, its bytes are not its digest, or the download
    /// fails. On disk: never (a missing blob shows when the path is opened).
    pub fn blob_file(&self, d: &Digest) -> std::io::Result<PathBuf> {
        let path = self.cached_blob_path(d);
        if let Some(bucket) = &self.bucket
            && !path.is_file()
        {
            self.cache_blob(bucket, d, &path)?;
        }
        Ok(path)
    }

    /// Whether the blob is stored (with a bucket: in the bucket, whatever the cache holds).
    #[must_use]
    pub fn has_blob(&self, d: &Digest) -> bool {
        match &self.bucket {
            None => self.cached_blob_path(d).is_file(),
            Some(bucket) => bucket
                .head(&bucket.blob_key(d))
                .unwrap_or_else(|e| {
                    tracing::warn!(digest = %d, "cannot ask the bucket for a blob: {e}");
                    None
                })
                .is_some(),
        }
    }

    /// Size of a stored blob.
    ///
    /// # Errors
    /// When it is missing.
    pub fn blob_size(&self, d: &Digest) -> std::io::Result<u64> {
        let path = self.cached_blob_path(d);
        match &self.bucket {
            Some(bucket) if !path.is_file() => bucket
                .head(&bucket.blob_key(d))?
                .map(|m| m.size)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("blob {d} is not stored"))),
            _ => Ok(std::fs::metadata(path)?.len()),
        }
    }

    /// Sets a blob's mtime to now (Ollama does this on reuse; it protects against the GC grace
    /// window). With a bucket, only the cached copy's: objects keep their upload time.
    pub fn touch(&self, d: &Digest) {
        if let Ok(f) = std::fs::File::options().append(true).open(self.cached_blob_path(d)) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// A temp file in `blobs/` for a blob being written.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn blob_temp(&self) -> std::io::Result<NamedTempFile> {
        atomic::temp_in(&self.blobs_dir())
    }

    /// Publishes a fully written temp file whose SHA-256 is `d`.
    ///
    /// # Errors
    /// Any filesystem error; the temp file is then removed.
    pub fn publish_blob(&self, tmp: NamedTempFile, d: &Digest) -> std::io::Result<Published> {
        let dest = self.cached_blob_path(d);
        if let Some(bucket) = &self.bucket {
            return self.publish_remote(bucket, tmp, d, &dest);
        }
        if dest.is_file() {
            self.touch(d);
            return Ok(Published::Existing);
        }
        // Concurrent uploads of one digest: both renames put identical bytes in place.
        atomic::persist(tmp, &dest)?;
        Ok(Published::Created)
    }

    /// Stores a small in-memory blob (template, params, config, …).
    ///
    /// # Errors
    /// Any filesystem error.
    pub fn write_blob(&self, bytes: &[u8]) -> std::io::Result<(Digest, Published)> {
        let d = digest_of(bytes);
        let p = self.write_blob_as(&d, bytes)?;
        Ok((d, p))
    }

    /// Stores a small in-memory blob whose SHA-256 the caller computed (and pinned) as `d`.
    ///
    /// # Errors
    /// Any filesystem error.
    pub fn write_blob_as(&self, d: &Digest, bytes: &[u8]) -> std::io::Result<Published> {
        debug_assert_eq!(&digest_of(bytes), d, "write_blob_as: digest of other bytes");
        if self.has_blob(d) {
            self.touch(d);
            return Ok(Published::Existing);
        }
        let mut tmp = self.blob_temp()?;
        tmp.write_all(bytes)?;
        self.publish_blob(tmp, d)
    }

    /// Reads a small blob whole, refusing anything larger than `max` bytes.
    ///
    /// # Errors
    /// When missing or too large.
    pub fn read_small_blob(&self, d: &Digest, max: u64) -> std::io::Result<Vec<u8>> {
        // The size first: with a bucket, a blob too large is refused before it is downloaded.
        let len = self.blob_size(d)?;
        if len > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob {d} is {len} bytes, more than the {max} expected for this layer"),
            ));
        }
        std::fs::read(self.blob_file(d)?)
    }
}
