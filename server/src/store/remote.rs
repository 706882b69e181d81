//! The store's operations when it lives in a bucket ([`super::object`]): the bucket is the
//! source of truth, the local root a cache of verified blobs.
//!
//! - A blob is published by uploading it (from the temp file it was written to) before
//!   `publish_blob` returns, then renaming that file into the cache. Reading one by path first
//!   downloads it into the cache, checking its SHA-256; content-addressed, a cached blob never
//!   goes stale.
//! - Manifests are listed, read, written and deleted in the bucket. A write checks that every
//!   blob it names is in the bucket, then puts conditionally (create-only for a new name, or
//!   only over the very manifest it read): when another server wrote the name in between, it
//!   reads again and retries, so the name always holds one writer's whole manifest.
//! - Nothing here removes a blob from the bucket: pins are per server, so an object no manifest
//!   references may be what another server's create is about to name. Deletes and replaced
//!   manifests free only the local cache; `kiln fsck --repair` collects old orphans.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_core::{Digest, ModelName};
use tempfile::NamedTempFile;

use super::blobs::Published;
use super::manifests::StoredManifest;
use super::object::{Bucket, Written};
use super::{Manifest, Store, StoreError, atomic};

/// Conditional manifest writes tried before a write gives up (each loses only to a writer that
/// changed the same name in between).
const WRITE_TRIES: u32 = 8;

/// The default cache of `s3://bucket/prefix`: `$XDG_CACHE_HOME/kiln/s3/bucket/prefix`, else
/// `~/.cache/kiln/s3/…`, else under the temp folder.
#[must_use]
pub fn default_cache(url: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let mut p = base.join("kiln").join("s3");
    if let Some((bucket, prefix)) = super::object::parse_url(url) {
        p.push(bucket);
        p.extend(prefix.split('/').filter(|s| !s.is_empty() && *s != "." && *s != ".."));
    }
    p
}

/// Every digest the bucket's manifests reference, or `None` (with a warning) when one of them
/// cannot be read or a key is not a model name: then what the cache may drop is unknown.
pub(super) fn strict_references(bucket: &Bucket) -> Option<HashSet<Digest>> {
    let listed = match bucket.list("manifests") {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("start-up prune of the cache skipped: {e}");
            return None;
        }
    };
    let mut referenced = HashSet::new();
    for (parts, meta) in listed {
        let manifest = name_of(&parts)
            .ok_or_else(|| "not a valid model name".to_owned())
            .and_then(|n| bucket.get_manifest(&n).map_err(|e| e.to_string()))
            .and_then(|m| m.ok_or_else(|| "deleted while listed".to_owned()))
            .and_then(|m| Manifest::decode(&m.bytes));
        match manifest {
            Ok(m) => referenced.extend(m.digests().cloned()),
            Err(e) => {
                tracing::warn!(key = %meta.location, "start-up prune of the cache skipped: {e}");
                return None;
            }
        }
    }
    Some(referenced)
}

/// The model name of a key's parts below `manifests/`, when they are exactly four valid ones.
#[must_use]
pub fn name_of(parts: &[String]) -> Option<ModelName> {
    match parts {
        [h, n, m, t] => ModelName::from_parts(h, n, m, t),
        _ => None,
    }
}

impl Store {
    /// Downloads the blob `d` into the cache at `dest` (a verified copy, renamed into place).
    pub(super) fn cache_blob(&self, bucket: &Bucket, d: &Digest, dest: &Path) -> std::io::Result<()> {
        let tmp = self.blob_temp()?;
        bucket.download_blob(d, &tmp)?;
        // Two readers racing here both rename identical bytes into place.
        atomic::persist(tmp, dest)
    }

    /// Publishes the written temp file `tmp` (SHA-256 `d`): uploaded unless the bucket has it,
    /// then kept as the cached copy.
    pub(super) fn publish_remote(
        &self,
        bucket: &Bucket,
        tmp: NamedTempFile,
        d: &Digest,
        dest: &Path,
    ) -> std::io::Result<Published> {
        let published = if bucket.head(&bucket.blob_key(d))?.is_some() {
            Published::Existing
        } else {
            bucket.upload_blob(d, tmp.reopen()?)?;
            Published::Created
        };
        if dest.is_file() {
            self.touch(d);
        } else {
            atomic::persist(tmp, dest)?;
        }
        Ok(published)
    }

    /// The valid names with a manifest in the bucket, sorted; none (with a warning) when it
    /// cannot be listed.
    pub(super) fn remote_list_names(bucket: &Bucket) -> Vec<ModelName> {
        let listed = match bucket.list("manifests") {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot list the manifests in {}: {e}", bucket.url());
                return Vec::new();
            }
        };
        let mut out: Vec<ModelName> = listed.iter().filter_map(|(parts, _)| name_of(parts)).collect();
        out.sort();
        out
    }

    /// The manifest stored under exactly `name` in the bucket.
    pub(super) fn remote_read_manifest(
        bucket: &Bucket,
        name: &ModelName,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let Some(r) = bucket.get_manifest(name)? else {
            return Ok(None);
        };
        let manifest =
            Manifest::decode(&r.bytes).map_err(|reason| StoreError::BadManifest { path: name.to_string(), reason })?;
        Ok(Some(StoredManifest { name: name.clone(), manifest, bytes: r.bytes, modified: r.meta.last_modified.into() }))
    }

    /// [`Store::write_manifest`] in the bucket; called with the store lock held.
    pub(super) fn remote_write_manifest(
        &self,
        bucket: &Bucket,
        name: &ModelName,
        bytes: &[u8],
    ) -> Result<ModelName, StoreError> {
        // A manifest never names a blob the bucket lacks: another server may have to serve it.
        if let Ok(m) = Manifest::decode(bytes) {
            for d in m.digests() {
                if bucket.head(&bucket.blob_key(d))?.is_none() {
                    return Err(StoreError::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("blob {d} of the new manifest is not in {}", bucket.url()),
                    )));
                }
            }
        }
        for attempt in 1..=WRITE_TRIES {
            let name = self.resolve(name);
            let current = bucket.get_manifest(&name)?;
            match bucket.put_manifest(&name, bytes.to_vec(), current.as_ref().map(|c| &c.meta))? {
                Written::Done => {
                    match current.map(|c| Manifest::decode(&c.bytes)) {
                        Some(Ok(old)) => self.collect_unreferenced(old.digests().cloned().collect()),
                        Some(Err(e)) => tracing::warn!("replaced the corrupt manifest of {}: {e}", name.short()),
                        None => {}
                    }
                    return Ok(name);
                }
                Written::Conflict => {
                    tracing::info!(attempt, "manifest of {} changed while it was written; retrying", name.short());
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                }
            }
        }
        Err(StoreError::Io(std::io::Error::other(format!(
            "the manifest of {} kept changing during {WRITE_TRIES} writes; try again",
            name.short()
        ))))
    }

    /// [`Store::delete_manifest`] in the bucket; called with the store lock held.
    pub(super) fn remote_delete_manifest(&self, bucket: &Bucket, name: &ModelName) -> Result<bool, StoreError> {
        let name = self.resolve(name);
        let Some(current) = bucket.get_manifest(&name)? else {
            return Ok(false);
        };
        bucket.delete(&bucket.manifest_key(&name))?;
        match Manifest::decode(&current.bytes) {
            Ok(m) => self.collect_unreferenced(m.digests().cloned().collect()),
            Err(e) => tracing::warn!("deleted the corrupt manifest of {}: {e}", name.short()),
        }
        Ok(true)
    }
}
