//! Step 2 of a create: when `quantize` is asked, the model layer is planned (and refused, if it
//! must be) before the first event, then quantized by [`crate::quantize::blob`] with progress
//! lines, and replaces the source layer.

use std::sync::Arc;
use std::time::Instant;

use kiln_core::Digest;
use kiln_core::event::{PLACEHOLDER_DIGEST, ProgressEvent};
use kiln_core::file_type::FileType;
use kiln_core::gguf::Header;
use kiln_core::imatrix::Imatrix;
use kiln_core::quant_controls::Controls;

use super::error::CreateError;
use super::events::Events;
use super::sources::Sources;
use super::{Staged, adopt, blocking};
use crate::quantize::backend::Quantizer;
use crate::quantize::blob::{Progress, quantize_blob};
use crate::quantize::{self, PlanOptions, QuantPlan};
use crate::store::{Layer, Pin, Store, media};

/// A quantization the create will run.
#[derive(Debug)]
pub(super) struct QuantJob {
    src: Digest,
    plan: QuantPlan,
    status: String,
}

/// Plans the quantization of the model layer to `target`; `None` when there is no model layer
/// or it already is that type (Ollama's no-op).
///
/// # Errors
/// [`CreateError::Quantize`] when the model cannot be quantized to `target`.
pub(super) fn prepare(
    sources: &Sources,
    target: FileType,
    label: &str,
    options: PlanOptions<'_>,
) -> Result<Option<QuantJob>, CreateError> {
    let Some(layer) = sources.staged.iter().find(|s| s.layer.media_type == media::MODEL) else {
        return Ok(None);
    };
    let src = layer.layer.digest.clone();
    let header = sources.headers.get(&src).ok_or_else(|| CreateError::Internal("model layer header missing".into()))?;
    let src_name = quantize::source_type_name(header);
    // Ollama's no-op, unless per-tensor controls ask for changes or an importance matrix is to
    // be recorded (llama-quantize writes its `quantize.imatrix.*` keys even into an F16 → F16).
    if src_name == target.name() && options.controls.is_none_or(Controls::is_empty) && options.imatrix.is_none() {
        return Ok(None);
    }
    let plan = quantize::plan_with(header, target, options)?;
    Ok(Some(QuantJob { src, plan, status: format!("quantizing {src_name} model to {label}") }))
}

/// The most bytes of an importance matrix kiln reads (a large MoE model's is some hundred MB).
pub const MAX_IMATRIX: u64 = 2 << 30;

/// Reads and parses the importance matrix blob `d`, pinned into `pin`.
///
/// # Errors
/// [`CreateError::BlobNotFound`] when it was never uploaded, [`CreateError::Imatrix`] when it
/// does not parse.
pub(super) async fn load_imatrix(store: &Arc<Store>, d: &Digest, pin: &mut Pin<'_>) -> Result<Imatrix, CreateError> {
    pin.add(d.clone());
    if !store.has_blob(d) {
        return Err(CreateError::BlobNotFound(d.clone()));
    }
    let (s, d) = (store.clone(), d.clone());
    let bytes = blocking(move || s.read_small_blob(&d, MAX_IMATRIX)).await??;
    blocking(move || kiln_core::imatrix::parse(&bytes)).await?.map_err(CreateError::Imatrix)
}

/// Progress lines from a blocking thread (the quantizer's, or the converter's copy), all with
/// one status.
pub(super) struct Reporter {
    /// Where the lines go.
    pub events: Events,
    /// Their status text.
    pub status: String,
}

impl Progress for Reporter {
    fn report(&mut self, completed: u64, total: u64) -> bool {
        let tick = ProgressEvent::progress(&self.status, PLACEHOLDER_DIGEST, total, completed);
        self.events.send_blocking(tick).is_ok()
    }

    fn cancelled(&self) -> bool {
        self.events.is_closed()
    }
}

/// Runs `job` on the blocking pool: the new model layer and its header.
///
/// # Errors
/// [`CreateError::Cancelled`] when the client went away; quantizer and store failures.
pub(super) async fn run(
    store: &Arc<Store>,
    quantizer: &Arc<Quantizer>,
    job: QuantJob,
    events: &Events,
    pin: &mut Pin<'_>,
) -> Result<(Staged, Arc<Header>), CreateError> {
    let total = store.blob_size(&job.src)?;
    events.send(ProgressEvent::progress(&job.status, PLACEHOLDER_DIGEST, total, 0)).await?;
    for (name, wanted, got) in &job.plan.fallbacks {
        tracing::debug!(tensor = %name, "row length is not a multiple of {}'s block: using {}", wanted.name(), got.name());
    }
    tracing::info!(shape_fallbacks = job.plan.fallbacks.len(), target = %job.status, "quantizing");
    let (s, quantizer) = (store.clone(), quantizer.clone());
    let mut reporter = Reporter { events: events.clone(), status: job.status };
    let started = Instant::now();
    let q = blocking(move || quantize_blob(&s, &quantizer, &job.src, &job.plan, &mut reporter)).await??;
    tracing::info!(
        digest = %q.digest,
        bytes = q.size,
        seconds = started.elapsed().as_secs_f64(),
        gpu_chunks = q.output.gpu_chunks,
        chunks = q.output.chunks,
        cpu_fallback_blocks = q.output.fallbacks,
        "quantized"
    );
    let status = adopt(store, pin, &q.digest, q.published)?;
    let staged = Staged { status, layer: Layer::new(media::MODEL, &q.digest, q.size) };
    Ok((staged, Arc::new(q.header)))
}
