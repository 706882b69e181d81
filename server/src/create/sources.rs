//! Step 1 of a create: the layers the new model starts from — the `from` model's, or the
//! uploaded GGUF `files` — plus `adapters`, each checked (stored, GGUF, header parses) and
//! pinned, with the parsed header of every model layer for the steps that follow.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use kiln_core::gguf::Header;
use kiln_core::validate::{CreatePlan, Source};
use kiln_core::{Digest, ModelName};

use super::error::CreateError;
use super::{Staged, blocking, read_json};
use crate::gguf::read;
use crate::store::{ConfigFile, Layer, Pin, Store, media};

/// What a create starts from.
#[derive(Debug, Default)]
pub(super) struct Sources {
    /// The base layers, in manifest order.
    pub staged: Vec<Staged>,
    /// The header of every model and adapter layer, by digest.
    pub headers: HashMap<Digest, Arc<Header>>,
    /// How many uploaded files were parsed (one `parsing GGUF` line each).
    pub parsed_files: usize,
    /// The `from` model's config, whose fields a create inherits.
    pub base: ConfigFile,
}

/// Resolves and checks the plan's sources, pinning every blob they name into `pin`.
///
/// # Errors
/// A missing `from` model (404), a missing or non-GGUF upload (400), a damaged store (500).
pub(super) async fn resolve(store: &Arc<Store>, plan: &CreatePlan, pin: &mut Pin<'_>) -> Result<Sources, CreateError> {
    let mut sources = match &plan.source {
        Source::From(name) => from_model(store, &store.resolve(name), pin)?,
        Source::Files(files) => from_files(store, files, pin).await?,
        // Converted by `convert_step`, which adds the model layer.
        Source::Hf(_) => Sources::default(),
    };
    for (key, d) in &plan.adapters {
        let header = import_gguf(store, key, d).await?;
        pin.add(d.clone());
        let size = store.blob_size(d)?;
        sources.staged.push(Staged::existing(Layer::new(media::ADAPTER, d, size)));
        sources.headers.insert(d.clone(), header);
    }
    // Model layers inherited from `from` are parsed here: quantize and the config need them.
    for s in sources.staged.iter().filter(|s| s.layer.media_type == media::MODEL) {
        if let Entry::Vacant(e) = sources.headers.entry(s.layer.digest.clone()) {
            let path = store.blob_path(e.key());
            let header = blocking(move || read::read_header(&path)).await?.map_err(CreateError::BadStoredGguf)?;
            e.insert(Arc::new(header));
        }
    }
    Ok(sources)
}

/// The layers of a stored model, marked as inherited from it.
fn from_model(store: &Store, name: &ModelName, pin: &mut Pin<'_>) -> Result<Sources, CreateError> {
    let stored = store.read_manifest(name)?.ok_or_else(|| CreateError::ModelNotFound(name.short()))?;
    for d in stored.manifest.digests() {
        pin.add(d.clone());
        if !store.has_blob(d) {
            return Err(CreateError::MissingBlob { digest: d.clone(), model: name.short() });
        }
        store.touch(d);
    }
    let staged =
        stored.manifest.layers.iter().map(|l| Staged::existing(Layer { from: name.short(), ..l.clone() })).collect();
    Ok(Sources { staged, base: read_json(store, &stored.manifest.config.digest), ..Sources::default() })
}

/// The uploaded GGUF files, each classified as Ollama does.
async fn from_files(store: &Arc<Store>, files: &[(String, Digest)], pin: &mut Pin<'_>) -> Result<Sources, CreateError> {
    let mut sources = Sources::default();
    for (key, d) in files {
        let header = import_gguf(store, key, d).await?;
        pin.add(d.clone());
        let size = store.blob_size(d)?;
        sources.staged.push(Staged::existing(Layer::new(classify(&header), d, size)));
        sources.headers.insert(d.clone(), header);
        sources.parsed_files += 1;
    }
    Ok(sources)
}

/// Checks an uploaded blob is a GGUF file and reads its header.
async fn import_gguf(store: &Arc<Store>, key: &str, d: &Digest) -> Result<Arc<Header>, CreateError> {
    if !store.has_blob(d) {
        return Err(CreateError::BlobNotFound(d.clone()));
    }
    let path = store.blob_path(d);
    let parsed = blocking(move || -> std::io::Result<_> {
        Ok(if read::is_gguf(&path)? { Some(read::read_header(&path)) } else { None })
    })
    .await??;
    let parsed = parsed.ok_or_else(|| CreateError::NotGguf(key.to_owned()))?;
    parsed.map(Arc::new).map_err(|reason| CreateError::BadGguf { file: key.to_owned(), reason })
}

/// Ollama's classification of a GGUF in `files` (§5.3).
fn classify(h: &Header) -> &'static str {
    match h.get_str("general.type") {
        Some("adapter") => media::ADAPTER,
        Some("projector" | "mmproj") => media::PROJECTOR,
        _ if h.architecture() == Some("clip") => media::PROJECTOR,
        _ => media::MODEL,
    }
}
