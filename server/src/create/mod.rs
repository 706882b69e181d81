//! The create pipeline: `CreatePlan` → [`sources`] (resolve and check the base layers) →
//! [`quantize_step`] → [`layers`] (text/JSON layers) → [`commit`] (config blob, manifest), with
//! status events in Ollama's order (§2.5.2, §3) sent to [`events::Events`]. The pipeline speaks
//! no HTTP: it fails with a [`CreateError`], which `http/` maps to a status.
//!
//! Everything that can fail because of the request — a missing `from` model, a blob that is not
//! uploaded or not GGUF, a source type that cannot be quantized — is checked before the first
//! event, so such failures get a real HTTP status even when streaming. Every digest the new
//! manifest will reference is pinned from the moment it is known, so a concurrent delete cannot
//! collect it; the manifest is written last.

pub mod commit;
pub mod convert_step;
pub mod error;
pub mod events;
pub mod layers;
pub mod quantize_step;
pub mod sources;

use std::sync::Arc;

use kiln_core::Digest;
use kiln_core::validate::{CreatePlan, Source};

pub use self::error::CreateError;
use self::events::Events;
use crate::quantize::backend::Quantizer;
use crate::quantize::{PlanOptions, WithImatrix};
use crate::store::blobs::{Published, digest_of};
use crate::store::{Layer, MAX_TEXT_BLOB, Pin, Store};

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, CreateError> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// A layer of the new manifest and the status line it reports.
#[derive(Debug, Clone)]
pub struct Staged {
    layer: Layer,
    status: String,
}

impl Staged {
    /// A layer whose blob is already stored.
    fn existing(layer: Layer) -> Self {
        let status = format!("using existing layer {}", layer.digest);
        Self { layer, status }
    }
}

/// Takes a model blob this create just published into its pin, and gives its status line.
/// Its digest was known only once written, so it is pinned after publishing: a collection in
/// between (an identical create abandoned at that moment) shows here as a missing blob.
fn adopt(store: &Store, pin: &mut Pin<'_>, d: &Digest, published: Published) -> Result<String, CreateError> {
    pin.add(d.clone());
    if !store.has_blob(d) {
        return Err(CreateError::Internal(format!("new model blob {d} was collected concurrently; retry")));
    }
    if published == Published::Created {
        pin.wrote(d.clone());
    }
    Ok(published.status(d))
}

/// A small JSON blob (params, config), or the default when it cannot be read.
fn read_json<T: serde::de::DeserializeOwned + Default>(store: &Store, d: &Digest) -> T {
    store.read_small_blob(d, MAX_TEXT_BLOB).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Stores a text/JSON layer, pinned before it is written so that no collection can take it
/// between the write and the manifest; recorded as this create's own when it is new.
async fn write_layer(
    store: &Arc<Store>,
    pin: &mut Pin<'_>,
    media_type: &str,
    bytes: Vec<u8>,
) -> Result<Staged, CreateError> {
    let bytes = Arc::new(bytes);
    let b = bytes.clone();
    let d = blocking(move || digest_of(&b)).await?;
    pin.add(d.clone());
    let (s, d2) = (store.clone(), d.clone());
    let size = bytes.len() as u64;
    let published = blocking(move || s.write_blob_as(&d2, &bytes)).await??;
    if published == Published::Created {
        pin.wrote(d.clone());
    }
    Ok(Staged { layer: Layer::new(media_type, &d, size), status: published.status(&d) })
}

/// Runs one create, sending its events; a failure is the stream's last message.
///
/// Whatever the create wrote stays pinned until it ends. If it fails or its client goes away,
/// the blobs it created (quantized model, text/JSON layers, config) that no manifest references
/// are collected; the client's uploads are not (a client may retry with them; the start-up
/// prune removes them, as in Ollama).
pub async fn run(store: Arc<Store>, quantizer: Arc<Quantizer>, plan: CreatePlan, events: Events) {
    let mut pin = store.pin([]);
    let result = create(&store, &quantizer, &plan, &events, &mut pin).await;
    let due = pin.release(result.is_err());
    if !due.is_empty() {
        let s = store.clone();
        if let Err(e) = blocking(move || s.collect(due)).await {
            tracing::warn!("collecting an ended create's blobs: {e}");
        }
    }
    // `success` only once the collection is done: a client that then looks finds a clean store.
    let result = match result {
        Ok(()) => events.status("success").await.map_err(CreateError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {}
        Err(CreateError::Cancelled) => tracing::info!("client disconnected; create cancelled"),
        Err(e) => events.fail(e).await,
    }
}

async fn create(
    store: &Arc<Store>,
    quantizer: &Arc<Quantizer>,
    plan: &CreatePlan,
    events: &Events,
    pin: &mut Pin<'_>,
) -> Result<(), CreateError> {
    // Pin the uploaded blobs first: from here on no delete can collect them.
    if let Source::Files(files) | Source::Hf(files) = &plan.source {
        for (_, d) in files {
            pin.add(d.clone());
        }
    }
    for (_, d) in &plan.adapters {
        pin.add(d.clone());
    }
    let mut sources = sources::resolve(store, plan, pin).await?;
    let matrix = match &plan.imatrix {
        Some(d) => {
            let mut m = quantize_step::load_imatrix(store, d, pin).await?;
            m.filter_entries(&plan.imatrix_include, &plan.imatrix_exclude);
            Some(m)
        }
        None => None,
    };
    // The digest stands for the file name llama-quantize records: `show` then names it.
    let file = plan.imatrix.as_ref().map(ToString::to_string).unwrap_or_default();
    let imatrix = matrix.as_ref().map(|matrix| WithImatrix { matrix, file: &file });
    let options = PlanOptions { imatrix, controls: Some(&plan.controls) };
    let hf = match &plan.source {
        Source::Hf(files) => {
            Some(convert_step::prepare(store, files, plan.quantize.as_ref(), &plan.name, options).await?)
        }
        _ => None,
    };
    let job = match &plan.quantize {
        Some((target, label)) if hf.is_none() => quantize_step::prepare(&sources, *target, label, options)?,
        _ => None,
    };
    for _ in 0..sources.parsed_files {
        events.status("parsing GGUF").await?;
    }
    if let Some(hf) = hf {
        let (layer, header) = convert_step::run(store, quantizer, hf, events, pin).await?;
        sources.headers.insert(layer.layer.digest.clone(), header);
        sources.staged.insert(0, layer);
    }
    if let Some(job) = job {
        let (layer, header) = quantize_step::run(store, quantizer, job, events, pin).await?;
        sources.headers.insert(layer.layer.digest.clone(), header);
        if let Some(slot) = sources.staged.iter_mut().find(|s| s.layer.media_type == crate::store::media::MODEL) {
            *slot = layer;
        }
    }
    layers::stage(store, plan, &mut sources.staged, pin).await?;
    let model =
        commit::Model { name: plan.name.clone(), staged: sources.staged, headers: sources.headers, base: sources.base };
    commit::commit(store, plan, model, pin, events).await
}
