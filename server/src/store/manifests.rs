//! Manifests: read, write, list, copy, delete. `manifests/<host>/<namespace>/<model>/<tag>`,
//! encoded byte-for-byte as Ollama writes them (§5.2); read leniently (any JSON layout), but a
//! layer digest that is not `sha256:<64 hex>` makes the manifest corrupt — it is reported, never
//! followed to a path.

use std::path::PathBuf;
use std::time::SystemTime;

use kiln_core::gojson::ObjectWriter;
use kiln_core::{Digest, ModelName};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, atomic, media};

/// One layer (or the config) of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// `application/vnd.ollama.image.*`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Parsed when the manifest is read: a malformed digest makes the whole manifest corrupt.
    pub digest: Digest,
    /// Bytes.
    pub size: u64,
    /// The model this layer was inherited from, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// File/tensor name in multi-blob models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Layer {
    /// A layer for a stored blob.
    #[must_use]
    pub fn new(media_type: &str, digest: &Digest, size: u64) -> Self {
        Self { media_type: media_type.into(), digest: digest.clone(), size, from: String::new(), name: String::new() }
    }

    fn encode(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("mediaType", &self.media_type).str("digest", &self.digest.to_string()).int("size", self.size as i64);
        o.str_opt("from", Some(&self.from)).str_opt("name", Some(&self.name));
        o.finish();
    }
}

/// A model manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`media::MANIFEST`].
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The config blob.
    pub config: Layer,
    /// Layers in order.
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    /// A manifest for these layers.
    #[must_use]
    pub fn new(config: Layer, layers: Vec<Layer>) -> Self {
        Self { schema_version: 2, media_type: media::MANIFEST.into(), config, layers }
    }

    /// Ollama's bytes: compact, fields in declaration order, trailing newline.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        let mut o = ObjectWriter::new(&mut out);
        o.int("schemaVersion", i64::from(self.schema_version)).str("mediaType", &self.media_type);
        let mut cfg = String::new();
        self.config.encode(&mut cfg);
        o.raw("config", &cfg);
        let mut layers = String::from("[");
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                layers.push(',');
            }
            l.encode(&mut layers);
        }
        layers.push(']');
        o.raw("layers", &layers);
        o.finish();
        out.push('\n');
        out.into_bytes()
    }

    /// Parses and checks every digest.
    ///
    /// # Errors
    /// A reason string when it is not a usable manifest.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Sum of all layer sizes plus the config size.
    #[must_use]
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum::<u64>() + self.config.size
    }

    /// Every digest this manifest keeps alive, the config's included.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> + '_ {
        std::iter::once(&self.config).chain(&self.layers).map(|l| &l.digest)
    }
}

/// A manifest as read from disk.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// The name it is stored under (stored spelling).
    pub name: ModelName,
    /// Parsed.
    pub manifest: Manifest,
    /// Raw bytes (its SHA-256 is the model digest).
    pub bytes: Vec<u8>,
    /// File mtime.
    pub modified: SystemTime,
}

impl Store {
    /// `manifests/<host>/<namespace>/<model>/<tag>`. Safe for any valid [`ModelName`]: no part
    /// can hold a separator or start with a dot.
    #[must_use]
    pub fn manifest_path(&self, name: &ModelName) -> PathBuf {
        let mut p = self.manifests_dir();
        for part in name.parts() {
            p.push(part);
        }
        p
    }

    /// Every valid name with a manifest file, exactly four levels below `manifests/`.
    #[must_use]
    pub fn list_names(&self) -> Vec<ModelName> {
        if let Some(bucket) = &self.bucket {
            return Self::remote_list_names(bucket);
        }
        fn dirs(p: &std::path::Path) -> Vec<(String, PathBuf)> {
            let Ok(rd) = std::fs::read_dir(p) else {
                return Vec::new();
            };
            rd.flatten().filter_map(|e| Some((e.file_name().into_string().ok()?, e.path()))).collect()
        }
        let mut out = Vec::new();
        for (h, hp) in dirs(&self.manifests_dir()).into_iter().filter(|(_, p)| p.is_dir()) {
            for (n, np) in dirs(&hp) {
                for (m, mp) in dirs(&np) {
                    for (t, tp) in dirs(&mp) {
                        if let Some(name) = ModelName::from_parts(&h, &n, &m, &t).filter(|_| tp.is_file()) {
                            out.push(name);
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// The stored spelling of `name`, matched case-insensitively; `name` itself if none matches.
    #[must_use]
    pub fn resolve(&self, name: &ModelName) -> ModelName {
        self.list_names().into_iter().find(|n| n.eq_ignore_case(name)).unwrap_or_else(|| name.clone())
    }

    /// Reads the manifest stored under exactly `name`.
    ///
    /// # Errors
    /// I/O errors other than "not found", and corrupt manifests.
    pub fn read_manifest(&self, name: &ModelName) -> Result<Option<StoredManifest>, StoreError> {
        if let Some(bucket) = &self.bucket {
            return Self::remote_read_manifest(bucket, name);
        }
        let path = self.manifest_path(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let modified = std::fs::metadata(&path)?.modified()?;
        let manifest =
            Manifest::decode(&bytes).map_err(|reason| StoreError::BadManifest { path: name.to_string(), reason })?;
        Ok(Some(StoredManifest { name: name.clone(), manifest, bytes, modified }))
    }

    /// Every readable manifest; corrupt ones are logged and skipped.
    #[must_use]
    pub fn all_manifests(&self) -> Vec<StoredManifest> {
        self.list_names()
            .into_iter()
            .filter_map(|n| match self.read_manifest(&n) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            })
            .collect()
    }

    /// Writes `bytes` as the manifest of `name` (atomically) under its stored spelling, then
    /// collects the blobs of the manifest it replaced that nothing references any more. Returns
    /// the name written.
    ///
    /// The spelling is resolved and the replaced manifest read under the store lock, in the same
    /// step as the write: two concurrent writes of `Case` and `case` then end as one manifest,
    /// and each collects what the other wrote, not what it saw before it started.
    ///
    /// # Errors
    /// Filesystem errors; the previous manifest is then unchanged.
    pub fn write_manifest(&self, name: &ModelName, bytes: &[u8]) -> Result<ModelName, StoreError> {
        let _guard = self.locked();
        if let Some(bucket) = &self.bucket {
            return self.remote_write_manifest(bucket, name, bytes);
        }
        let name = self.resolve(name);
        let old = match self.read_manifest(&name) {
            Ok(m) => m.map(|m| m.manifest),
            // Its blobs cannot be known: the start-up prune or `kiln fsck --repair` gets them.
            Err(e) => {
                tracing::warn!("replacing {e}");
                None
            }
        };
        let path = self.manifest_path(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // The temp file sits at depth 1, where Ollama's 4-level glob never sees it.
        atomic::write(&self.manifests_dir(), &path, bytes)?;
        if let Some(old) = old {
            self.collect_unreferenced(old.digests().cloned().collect());
        }
        Ok(name)
    }

    /// Removes the manifest of `name` (its stored spelling), prunes empty directories and
    /// collects its blobs; `false` when there is none. The manifest is read under the store
    /// lock, so the blobs collected are those of the manifest removed, even when a create
    /// replaced it a moment before. A manifest that does not parse is removed too (that is how
    /// a user gets rid of it), but its blobs cannot be known from it, so none are collected
    /// here; the start-up prune or `kiln fsck --repair` removes them.
    ///
    /// # Errors
    /// Filesystem errors.
    pub fn delete_manifest(&self, name: &ModelName) -> Result<bool, StoreError> {
        let _guard = self.locked();
        if let Some(bucket) = &self.bucket {
            return self.remote_delete_manifest(bucket, name);
        }
        let name = self.resolve(name);
        let stored = match self.read_manifest(&name) {
            Ok(None) => return Ok(false),
            Ok(Some(m)) => Some(m),
            Err(e @ StoreError::BadManifest { .. }) => {
                tracing::warn!("deleting {e}");
                None
            }
            Err(e) => return Err(e),
        };
        self.remove_manifest_file(&name)?;
        if let Some(stored) = stored {
            self.collect_unreferenced(stored.manifest.digests().cloned().collect());
        }
        Ok(true)
    }

    fn remove_manifest_file(&self, name: &ModelName) -> Result<(), StoreError> {
        let path = self.manifest_path(name);
        std::fs::remove_file(&path)?;
        let top = self.manifests_dir();
        let mut dir = path.parent().map(std::path::Path::to_path_buf);
        while let Some(d) = dir {
            if d == top || std::fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(std::path::Path::to_path_buf);
        }
        Ok(())
    }
}
