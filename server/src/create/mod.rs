//! The create pipeline: `CreatePlan` → resolved source layers → (quantization) → text/JSON
//! layers → config blob → manifest, with status events in Ollama's order (§2.5.2, §3).
//!
//! Everything that can fail because of the request — a missing `from` model, a blob that is not
//! uploaded or not GGUF, a source type that cannot be quantized — is checked before the first
//! event, so such failures get a real HTTP status even when streaming. Every digest the new
//! manifest will reference is pinned from the moment it is known, so a concurrent delete cannot
//! collect it; the manifest is written last.

pub mod config;
pub mod layers;

use std::collections::HashMap;
use std::sync::Arc;

use kiln_core::event::{PLACEHOLDER_DIGEST, ProgressEvent};
use kiln_core::file_type::FileType;
use kiln_core::gguf::Header;
use kiln_core::validate::{CreatePlan, Source};
use kiln_core::{Digest, file_type};
use serde_json::{Map, Value};

use self::config::{ConfigFile, human_number};
use self::layers::media;
use crate::gguf::read;
use crate::http::error::ApiError;
use crate::http::ndjson::{Events, Gone};
use crate::quantize;
use crate::state::AppState;
use crate::store::manifests::CONFIG_MEDIA_TYPE;
use crate::store::{Layer, Manifest, Store, StoreError};

/// Largest text/JSON layer kiln reads back (templates, params, messages, config).
pub const MAX_TEXT_LAYER: u64 = 64 << 20;

/// Why a create stopped.
#[derive(Debug)]
pub enum Fail {
    /// The client disconnected: stop quietly.
    Gone,
    /// An error to report.
    Api(ApiError),
}

impl From<Gone> for Fail {
    fn from(_: Gone) -> Self {
        Self::Gone
    }
}

impl<E: Into<ApiError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Self::Api(e.into())
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Fail> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Fail::Api(ApiError::internal(e.to_string())))
}

/// A layer of the new manifest and the status line it reports.
#[derive(Debug, Clone)]
struct Staged {
    layer: Layer,
    status: String,
}

/// Runs one create, sending its events; failures become the stream's error.
pub async fn run(state: AppState, plan: CreatePlan, events: Events) {
    match run_inner(&state, plan, &events).await {
        Ok(()) => {}
        Err(Fail::Gone) => tracing::info!("client disconnected; create cancelled"),
        Err(Fail::Api(e)) => events.fail(e).await,
    }
}

async fn parse_header(store: &Arc<Store>, d: &Digest) -> Result<Arc<Header>, Fail> {
    let path = store.blob_path(d);
    let header = blocking(move || read::read_header(&path)).await?;
    header.map(Arc::new).map_err(|e| Fail::Api(ApiError::bad_request(e.to_string())))
}

/// Checks an uploaded blob is a GGUF file and reads its header.
async fn import_gguf(store: &Arc<Store>, key: &str, d: &Digest) -> Result<Arc<Header>, Fail> {
    if !store.has_blob(d) {
        return Err(ApiError::bad_request(format!("blob \"{d}\" not found")).into());
    }
    let path = store.blob_path(d);
    if !blocking(move || read::is_gguf(&path)).await?? {
        return Err(ApiError::bad_request(format!("supplied file was not in GGUF format: {key}")).into());
    }
    parse_header(store, d).await.map_err(|e| match e {
        Fail::Api(e) => Fail::Api(ApiError::bad_request(format!("{key}: {}", e.message))),
        g @ Fail::Gone => g,
    })
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

fn read_json<T: serde::de::DeserializeOwned + Default>(store: &Store, d: &Digest) -> T {
    store.read_small_blob(d, MAX_TEXT_LAYER).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

async fn write_layer(store: &Arc<Store>, media_type: &str, bytes: Vec<u8>) -> Result<Staged, Fail> {
    let s = store.clone();
    let size = bytes.len() as u64;
    let (d, published) = blocking(move || s.write_blob(&bytes)).await??;
    Ok(Staged { layer: Layer::new(media_type, &d, size), status: published.status(&d) })
}

/// A quantization the create will run.
struct QuantJob {
    src: Digest,
    plan: quantize::QuantPlan,
    status: String,
}

/// Checks the model layer can be quantized to `target` and plans it; `None` when it already is
/// that type (Ollama's no-op).
fn prepare_quantize(
    staged: &[Staged],
    headers: &HashMap<Digest, Arc<Header>>,
    target: FileType,
    label: &str,
) -> Result<Option<QuantJob>, Fail> {
    let Some(layer) = staged.iter().find(|s| s.layer.media_type == media::MODEL) else {
        return Ok(None);
    };
    let src = layer.layer.digest();
    let Some(header) = headers.get(&src) else {
        return Err(ApiError::internal("model layer header missing").into());
    };
    let src_name = quantize::source_type_name(header);
    if src_name == target.name() {
        return Ok(None);
    }
    let plan = quantize::plan(header, target).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Some(QuantJob { src, plan, status: format!("quantizing {src_name} model to {label}") }))
}

/// Runs a quantization on the blocking pool, streaming progress, and publishes the new blob.
async fn quantize_layer(state: &AppState, job: QuantJob, events: &Events) -> Result<(Staged, Arc<Header>), Fail> {
    let store = state.store.clone();
    let quantizer = state.quantizer.clone();
    let total = store.blob_size(&job.src)?;
    let data = total.saturating_sub(job.plan.src_data_offset).max(1);
    events.send(ProgressEvent::progress(&job.status, PLACEHOLDER_DIGEST, total, 0)).await?;
    for (name, wanted, got) in &job.plan.fallbacks {
        tracing::debug!(tensor = %name, "row length is not a multiple of {}'s block: using {}", wanted.name(), got.name());
    }
    tracing::info!(shape_fallbacks = job.plan.fallbacks.len(), target = %job.status, "quantizing");
    let events = events.clone();
    let started = std::time::Instant::now();
    let result = blocking(move || -> Result<_, quantize::QuantError> {
        let tmp = store.blob_temp()?;
        let out = tmp.as_file().try_clone()?;
        let src = std::fs::File::open(store.blob_path(&job.src))?;
        let mut last = std::time::Instant::now();
        let (_, output) = quantize::pipeline::run(&job.plan, src, out, &quantizer, |done| {
            let completed = (u128::from(done) * u128::from(total) / u128::from(data)) as u64;
            if last.elapsed() >= std::time::Duration::from_millis(100) || done >= data {
                last = std::time::Instant::now();
                let tick = ProgressEvent::progress(&job.status, PLACEHOLDER_DIGEST, total, completed.min(total));
                return events.send_blocking(tick).is_ok();
            }
            !events.is_closed()
        })?;
        let published = store.publish_blob(tmp, &output.digest)?;
        let header = read::read_header(&store.blob_path(&output.digest))
            .map_err(|e| std::io::Error::other(format!("re-reading the quantized model: {e}")))?;
        Ok((output, published, header))
    })
    .await?;
    let (output, published, header) = match result {
        Ok(r) => r,
        Err(quantize::QuantError::Cancelled) => return Err(Fail::Gone),
        Err(quantize::QuantError::Io(e)) => return Err(e.into()),
        Err(e) => return Err(ApiError::internal(e.to_string()).into()),
    };
    tracing::info!(
        digest = %output.digest,
        bytes = output.size,
        seconds = started.elapsed().as_secs_f64(),
        gpu_chunks = output.gpu_chunks,
        chunks = output.chunks,
        cpu_fallback_blocks = output.fallbacks,
        "quantized"
    );
    let layer = Layer::new(media::MODEL, &output.digest, output.size);
    Ok((Staged { status: published.status(&output.digest), layer }, Arc::new(header)))
}

#[allow(clippy::too_many_lines)]
async fn run_inner(state: &AppState, plan: CreatePlan, events: &Events) -> Result<(), Fail> {
    let store = state.store.clone();
    let name = store.resolve(&plan.name);
    let old = store.read_manifest(&name).map_err(Into::<ApiError>::into)?.map(|m| m.manifest);
    // Pin the uploaded blobs first: from here on no delete can collect them.
    let uploaded = match &plan.source {
        Source::Files(files) => files.iter().map(|(_, d)| d.clone()).collect(),
        Source::From(_) => Vec::new(),
    };
    let mut pin = store.pin(uploaded.into_iter().chain(plan.adapters.iter().map(|(_, d)| d.clone())));
    let mut staged: Vec<Staged> = Vec::new();
    let mut headers: HashMap<Digest, Arc<Header>> = HashMap::new();
    let mut parsed_files = 0usize;
    let mut base = ConfigFile::default();

    // 1. Base layers.
    match &plan.source {
        Source::From(src) => {
            let src = store.resolve(src);
            let stored = store
                .read_manifest(&src)
                .map_err(Into::<ApiError>::into)?
                .ok_or_else(|| ApiError::not_found(format!("model '{}' not found", src.short())))?;
            for d in stored.manifest.digests() {
                pin.add(d.clone());
                if !store.has_blob(&d) {
                    return Err(ApiError::internal(format!(
                        "blob {d} of model '{}' is missing from the store",
                        src.short()
                    ))
                    .into());
                }
                store.touch(&d);
            }
            for l in &stored.manifest.layers {
                let mut layer = l.clone();
                layer.from = src.short();
                staged.push(Staged { status: format!("using existing layer {}", layer.digest), layer });
            }
            base = read_json(&store, &stored.manifest.config.digest());
        }
        Source::Files(files) => {
            for (key, d) in files {
                let header = import_gguf(&store, key, d).await?;
                pin.add(d.clone());
                let size = store.blob_size(d)?;
                staged.push(Staged {
                    layer: Layer::new(classify(&header), d, size),
                    status: format!("using existing layer {d}"),
                });
                headers.insert(d.clone(), header);
                parsed_files += 1;
            }
        }
    }
    for (key, d) in &plan.adapters {
        let header = import_gguf(&store, key, d).await?;
        pin.add(d.clone());
        let size = store.blob_size(d)?;
        staged.push(Staged { layer: Layer::new(media::ADAPTER, d, size), status: format!("using existing layer {d}") });
        headers.insert(d.clone(), header);
    }
    for s in staged.iter().filter(|s| s.layer.media_type == media::MODEL) {
        let d = s.layer.digest();
        if let std::collections::hash_map::Entry::Vacant(e) = headers.entry(d) {
            let h = parse_header(&store, e.key()).await?;
            e.insert(h);
        }
    }

    // 2. Quantization: planned (and refused, if it must be) before the first event.
    let job = match &plan.quantize {
        Some((target, label)) => prepare_quantize(&staged, &headers, *target, label)?,
        None => None,
    };
    for _ in 0..parsed_files {
        events.status("parsing GGUF").await?;
    }
    if let Some(job) = job {
        let (staged_layer, header) = quantize_layer(state, job, events).await?;
        let d = staged_layer.layer.digest();
        pin.add(d.clone());
        headers.insert(d, header);
        if let Some(slot) = staged.iter_mut().find(|s| s.layer.media_type == media::MODEL) {
            *slot = staged_layer;
        }
    }

    // 3. Text and JSON layers: template, system (replace), licenses (append), params (merge),
    //    messages (replace).
    if let Some(t) = &plan.template {
        staged.retain(|s| s.layer.media_type != media::TEMPLATE && s.layer.media_type != media::PROMPT);
        staged.push(write_layer(&store, media::TEMPLATE, t.clone().into_bytes()).await?);
    }
    if let Some(sys) = &plan.system {
        staged.retain(|s| s.layer.media_type != media::SYSTEM);
        staged.push(write_layer(&store, media::SYSTEM, sys.clone().into_bytes()).await?);
    }
    for license in &plan.licenses {
        staged.push(write_layer(&store, media::LICENSE, license.clone().into_bytes()).await?);
    }
    if let Some(params) = &plan.parameters {
        let inherited: Option<Map<String, Value>> =
            staged.iter().find(|s| s.layer.media_type == media::PARAMS).map(|s| read_json(&store, &s.layer.digest()));
        staged.retain(|s| s.layer.media_type != media::PARAMS);
        staged.push(write_layer(&store, media::PARAMS, layers::merge_params(inherited, params)).await?);
    }
    if !plan.messages.is_empty() {
        staged.retain(|s| s.layer.media_type != media::MESSAGES);
        staged.push(write_layer(&store, media::MESSAGES, layers::encode_messages(&plan.messages)).await?);
    }
    for s in &staged {
        pin.add(s.layer.digest());
    }

    // 4. Config, rebuilt from the model layers.
    let model_headers: Vec<&Arc<Header>> = staged
        .iter()
        .filter(|s| s.layer.media_type == media::MODEL)
        .filter_map(|s| headers.get(&s.layer.digest()))
        .collect();
    let family = |h: &Header| h.architecture().unwrap_or("unknown").to_string();
    let first = model_headers.first();
    let config = ConfigFile {
        model_format: if base.model_format.is_empty() { "gguf".into() } else { base.model_format.clone() },
        model_family: first.map_or_else(|| "unknown".into(), |h| family(h)),
        model_families: (!model_headers.is_empty()).then(|| model_headers.iter().map(|h| family(h)).collect()),
        model_type: human_number(first.map_or(0, |h| h.parameter_count())),
        file_type: first.and_then(|h| h.file_type()).map_or("unknown", file_type::file_type_name).to_string(),
        renderer: plan.renderer.clone().unwrap_or(base.renderer),
        parser: plan.parser.clone().unwrap_or(base.parser),
        requires: plan.requires.clone().unwrap_or(base.requires),
        capabilities: base.capabilities,
    };
    let cfg = write_layer(&store, CONFIG_MEDIA_TYPE, config.encode()).await?;
    pin.add(cfg.layer.digest());

    // 5. Report the layers in final order, then commit.
    for s in &staged {
        if !s.status.is_empty() {
            events.status(s.status.clone()).await?;
        }
    }
    events.status("writing manifest").await?;
    let manifest = Manifest::new(cfg.layer, staged.into_iter().map(|s| s.layer).collect());
    let s = store.clone();
    blocking(move || s.write_manifest(&name, &manifest.encode(), old.as_ref()))
        .await?
        .map_err(|e: StoreError| Fail::Api(e.into()))?;
    drop(pin);
    events.status("success").await?;
    Ok(())
}
