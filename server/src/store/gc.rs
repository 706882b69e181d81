//! Garbage collection: the start-up sweep of temp files left by a crash, the start-up prune of
//! blobs no manifest references (as Ollama's `PruneLayers`, `shared/spec/ollama-api.md` §5.7),
//! and the removal of a replaced or deleted manifest's blobs and of those an abandoned create
//! wrote. Pinned digests — those an in-flight create or upload still needs — are never removed;
//! their collection waits for the last pin (`Pin`'s release).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use kiln_core::{Digest, ModelName};

use super::{Manifest, Store, TEMP_PREFIX};

/// Blobs modified this recently survive the start-up prune: another server sharing the store may
/// be writing a model that will reference them (Ollama ≥ 0.21's grace period).
pub const PRUNE_GRACE: Duration = Duration::from_secs(60 * 60);

/// Removes every kiln temp file in `blobs/` and `manifests/`. Runs before the server accepts
/// requests, so none of them can belong to live work.
///
/// # Errors
/// When a folder cannot be read.
pub fn sweep_temp_files(store: &Store) -> std::io::Result<usize> {
    let mut n = 0;
    // With a bucket the manifests are not on disk: only the cache's `blobs/` holds temp files.
    let dirs =
        if store.bucket().is_some() { vec![store.blobs_dir()] } else { vec![store.blobs_dir(), store.manifests_dir()] };
    for dir in dirs {
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

/// Whether the start-up prune runs: not when `OLLAMA_NOPRUNE` is truthy, read as Ollama's
/// `envconfig.Bool` does (trimmed, quotes stripped; a value `strconv.ParseBool` refuses counts as
/// set).
#[must_use]
pub fn prune_enabled() -> bool {
    let raw = std::env::var("OLLAMA_NOPRUNE").unwrap_or_default();
    let v = raw.trim().trim_matches(['"', '\'']);
    v.is_empty() || matches!(v, "0" | "f" | "F" | "false" | "FALSE" | "False")
}

/// The start-up prune: every blob no manifest references, and every stray file in `blobs/`, older
/// than [`PRUNE_GRACE`], then the empty folders under `manifests/`. Like Ollama, it prunes no
/// blob when a manifest is corrupt or a path four levels down is not a valid name: what such a
/// manifest references cannot be known.
///
/// With a bucket it prunes only the local cache, of every blob the bucket's manifests do not
/// reference (no grace: the cache is this server's alone, and anything it drops is still in the
/// bucket); objects in the bucket are never removed here (`kiln fsck --repair` does that).
pub fn prune(store: &Store) {
    let referenced = match store.bucket() {
        Some(bucket) => super::remote::strict_references(bucket),
        None => strict_references(&store.manifests_dir()),
    };
    let Some(referenced) = referenced else {
        return;
    };
    let grace = if store.bucket().is_some() { Duration::ZERO } else { PRUNE_GRACE };
    let now = SystemTime::now();
    let (mut removed, mut bytes) = (0_usize, 0_u64);
    for entry in std::fs::read_dir(store.blobs_dir()).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let recent = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_none_or(|age| age < grace);
        if !meta.is_file() || recent {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        let keep = Digest::parse(&file).is_ok_and(|d| d.file_name() == file && referenced.contains(&d));
        if !keep && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
            bytes += meta.len();
        }
    }
    let dirs = if store.bucket().is_some() { 0 } else { remove_empty_dirs(&store.manifests_dir(), true) };
    if removed > 0 || dirs > 0 {
        tracing::info!(removed, bytes, empty_manifest_dirs = dirs, "pruned unreferenced blobs");
    }
}

/// Every digest the manifests reference, or `None` (with a warning) when one of them cannot be
/// read: then what may be pruned is unknown.
fn strict_references(manifests: &Path) -> Option<HashSet<Digest>> {
    fn children(p: &Path) -> Vec<(String, std::path::PathBuf)> {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        v.sort();
        v
    }
    let mut referenced = HashSet::new();
    for (h, hp) in children(manifests).into_iter().filter(|(_, p)| p.is_dir()) {
        for (n, np) in children(&hp) {
            for (m, mp) in children(&np) {
                for (t, tp) in children(&mp) {
                    let manifest = ModelName::from_parts(&h, &n, &m, &t)
                        .ok_or_else(|| "not a valid model name".to_owned())
                        .and_then(|_| std::fs::read(&tp).map_err(|e| e.to_string()))
                        .and_then(|b| Manifest::decode(&b));
                    match manifest {
                        Ok(m) => referenced.extend(m.digests().cloned()),
                        Err(e) => {
                            tracing::warn!(path = %tp.display(), "start-up prune skipped: {e}");
                            return None;
                        }
                    }
                }
            }
        }
    }
    Some(referenced)
}

/// Removes the empty folders below `dir` (and `dir` itself unless `top`); how many.
fn remove_empty_dirs(dir: &Path, top: bool) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            n += remove_empty_dirs(&entry.path(), false);
        }
    }
    if !top && std::fs::remove_dir(dir).is_ok() {
        n += 1;
    }
    n
}

impl Store {
    /// Digests referenced by any manifest on disk (corrupt manifests are skipped, as in Ollama).
    #[must_use]
    pub fn referenced(&self) -> HashSet<Digest> {
        self.all_manifests().iter().flat_map(|m| m.manifest.digests().cloned().collect::<Vec<_>>()).collect()
    }

    /// Removes each of `candidates` that no manifest references, under the store lock; a pinned
    /// one is removed when its last pin goes. For what [`super::Pin::release`] hands back.
    pub fn collect(&self, candidates: Vec<Digest>) {
        let _guard = self.locked();
        self.collect_unreferenced(candidates);
    }

    /// Removes each candidate blob unless a manifest references it; a pinned one is deferred to
    /// its last unpin. Call with the store lock held.
    pub(super) fn collect_unreferenced(&self, candidates: Vec<Digest>) {
        if candidates.is_empty() {
            return;
        }
        let referenced = self.referenced();
        for d in candidates {
            if referenced.contains(&d) {
                continue;
            }
            {
                let mut pins = self.pins();
                if pins.counts.contains_key(&d) {
                    pins.deferred.insert(d);
                    continue;
                }
            }
            // With a bucket only the cached copy goes: the object may be what another server's
            // create in flight is about to reference (`kiln fsck --repair` collects old ones).
            match std::fs::remove_file(self.cached_blob_path(&d)) {
                Ok(()) => tracing::debug!(digest = %d, "removed unreferenced blob"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(digest = %d, "could not remove blob: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kiln_core::ModelName;

    use crate::store::{Layer, Manifest, Store, media};

    /// A store holding model `m` whose only layer (and config) is `bytes`.
    fn store_with_model(bytes: &[u8]) -> (tempfile::TempDir, Store, kiln_core::Digest) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (d, _) = store.write_blob(bytes).expect("blob");
        let layer = Layer::new(media::MODEL, &d, bytes.len() as u64);
        let name = ModelName::parse("m").expect("name");
        store.write_manifest(&name, &Manifest::new(layer.clone(), vec![layer]).encode()).expect("manifest");
        (dir, store, d)
    }

    #[test]
    fn a_pinned_blob_is_collected_when_its_last_pin_goes() {
        let (_dir, store, d) = store_with_model(b"model");
        let pin = store.pin([d.clone()]);
        let again = store.pin([d.clone()]);
        assert!(store.delete_manifest(&ModelName::parse("m").expect("name")).expect("delete"));
        assert!(store.has_blob(&d), "pinned: kept by the delete");
        drop(pin);
        assert!(store.has_blob(&d), "still pinned once");
        store.collect(again.release(false));
        assert!(!store.has_blob(&d), "collected at the last release");
    }

    #[test]
    fn a_kept_pin_cancels_the_deferred_collection() {
        let (_dir, store, d) = store_with_model(b"model");
        let pin = store.pin([d.clone()]);
        assert!(store.delete_manifest(&ModelName::parse("m").expect("name")).expect("delete"));
        pin.keep();
        drop(pin);
        assert!(store.has_blob(&d), "an upload re-published it");
    }

    #[test]
    fn an_abandoned_holder_hands_back_what_it_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let d = crate::store::blobs::digest_of(b"layer");
        let mut pin = store.pin([d.clone()]);
        store.write_blob_as(&d, b"layer").expect("blob");
        pin.wrote(d.clone());
        let other = store.pin([d.clone()]);
        store.collect(pin.release(true));
        assert!(store.has_blob(&d), "another holder still pins it");
        drop(other);
        assert!(!store.has_blob(&d), "collected when that holder lets go");
    }
}
