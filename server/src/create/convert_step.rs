//! Step 1b of a create from an uploaded Hugging Face directory: the conversion is planned and
//! checked (every fault a `400` before the first event), then made in one pass over the shards —
//! straight into the quantizer when `quantize` names a quantized type, else into a GGUF blob —
//! with `converting model` and byte progress lines. It becomes the model layer.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use kiln_core::event::{PLACEHOLDER_DIGEST, ProgressEvent};
use kiln_core::file_type::FileType;
use kiln_core::gguf::Header;
use kiln_core::hf::plan::OutType;
use kiln_core::{Digest, ModelName};

use super::error::CreateError;
use super::events::Events;
use super::quantize_step::Reporter;
use super::{Staged, adopt, blocking};
use crate::convert::import;
use crate::convert::source::Converted;
use crate::gguf::write::HashingWriter;
use crate::quantize::backend::Quantizer;
use crate::quantize::blob::{Progress, REPORT_EVERY, quantize_from};
use crate::quantize::{self, PlanOptions, QuantPlan};
use crate::store::blobs::Published;
use crate::store::{Layer, Pin, Store, media};

/// A conversion the create will run.
pub(super) struct ConvertJob {
    converted: Converted,
    quantize: Option<(QuantPlan, String)>,
}

/// The converter's output type for a create's `quantize`: F16/BF16 are the reference's
/// `--outtype`; anything else converts as `--outtype auto` and is quantized from that.
fn out_type(quantize: Option<&(FileType, String)>) -> OutType {
    match quantize.map(|(t, _)| *t) {
        Some(FileType::F16) => OutType::F16,
        Some(FileType::BF16) => OutType::BF16,
        _ => OutType::Auto,
    }
}

/// `general.name` as the reference derives it from a directory named like the model: the
/// model part of the name, words title-cased (`model` → `Model`, `my-llama` → `My Llama`).
fn general_name(name: &ModelName) -> String {
    name.model
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Plans the conversion of `files` (and its quantization, if asked).
///
/// # Errors
/// [`CreateError::Import`] for every fault of the directory; [`CreateError::Quantize`] when
/// the converted model cannot be quantized as asked.
pub(super) async fn prepare(
    store: &Arc<Store>,
    files: &[(String, Digest)],
    quantize: Option<&(FileType, String)>,
    name: &ModelName,
    options: PlanOptions<'_>,
) -> Result<ConvertJob, CreateError> {
    let out = out_type(quantize);
    let (s, files, general) = (store.clone(), files.to_vec(), general_name(name));
    let converted = blocking(move || import::prepare(&s, &files, out, &general)).await??;
    let quantize = match quantize {
        Some((target, label)) if !matches!(target, FileType::F16 | FileType::BF16) => {
            let header = converted.header();
            let src = quantize::source_type_name(header);
            Some((quantize::plan_with(header, *target, options)?, format!("quantizing {src} model to {label}")))
        }
        _ => None,
    };
    Ok(ConvertJob { converted, quantize })
}

/// Copies the converted GGUF into a new blob, hashing as it goes.
fn write_converted(
    store: &Store,
    mut src: Converted,
    progress: &mut Reporter,
) -> Result<(Digest, u64, Published), CreateError> {
    let total = src.size();
    let tmp = store.blob_temp()?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?));
    let mut buf = vec![0u8; 4 << 20];
    let mut done = 0u64;
    let mut last = Instant::now();
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
        done += n as u64;
        if last.elapsed() >= REPORT_EVERY || done == total {
            last = Instant::now();
            if !progress.report(done, total) {
                return Err(CreateError::Cancelled);
            }
        } else if progress.cancelled() {
            return Err(CreateError::Cancelled);
        }
    }
    let (file, digest, size) = w.finish()?;
    file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
    let published = store.publish_blob(tmp, &digest)?;
    Ok((digest, size, published))
}

/// Runs `job` on the blocking pool: the new model layer and its header.
///
/// # Errors
/// [`CreateError::Cancelled`] when the client went away; converter, quantizer and store
/// failures.
pub(super) async fn run(
    store: &Arc<Store>,
    quantizer: &Arc<Quantizer>,
    job: ConvertJob,
    events: &Events,
    pin: &mut Pin<'_>,
) -> Result<(Staged, Arc<Header>), CreateError> {
    events.status("converting model").await?;
    let total = job.converted.size();
    let status = job.quantize.as_ref().map_or_else(|| "converting model".to_owned(), |(_, s)| s.clone());
    events.send(ProgressEvent::progress(&status, PLACEHOLDER_DIGEST, total, 0)).await?;
    let mut reporter = Reporter { events: events.clone(), status };
    let (s, quantizer) = (store.clone(), quantizer.clone());
    let started = Instant::now();
    let (digest, size, published, header) = blocking(move || -> Result<_, CreateError> {
        match job.quantize {
            Some((plan, _)) => {
                let q = quantize_from(&s, &quantizer, job.converted, total, &plan, &mut reporter)?;
                Ok((q.digest, q.size, q.published, q.header))
            }
            None => {
                let header = job.converted.header().clone();
                let (digest, size, published) = write_converted(&s, job.converted, &mut reporter)?;
                Ok((digest, size, published, header))
            }
        }
    })
    .await??;
    tracing::info!(%digest, bytes = size, seconds = started.elapsed().as_secs_f64(), "converted");
    let status = adopt(store, pin, &digest, published)?;
    let staged = Staged { status, layer: Layer::new(media::MODEL, &digest, size) };
    Ok((staged, Arc::new(header)))
}
