//! One quantization from store to store: a stored source blob → [`pipeline::run`] into a temp
//! blob → published under its digest, with throttled progress and cancellation. The create
//! pipeline calls this once; it knows nothing of how a blob is written.

use std::time::{Duration, Instant};

use kiln_core::Digest;
use kiln_core::gguf::Header;

use super::backend::Quantizer;
use super::{QuantError, QuantPlan, pipeline};
use crate::store::Store;
use crate::store::blobs::Published;

/// The least time between two progress reports: enough for a live bar, few enough lines.
pub const REPORT_EVERY: Duration = Duration::from_millis(100);

/// Where a quantization reports how far it is, and learns that it should stop.
pub trait Progress {
    /// `completed` of `total` bytes of the source blob are done (at most every
    /// [`REPORT_EVERY`], and once at the end). `false` cancels.
    fn report(&mut self, completed: u64, total: u64) -> bool;
    /// Checked between reports: `true` cancels.
    fn cancelled(&self) -> bool;
}

/// A quantized model, stored.
#[derive(Debug)]
pub struct QuantizedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Whether the blob was new to the store.
    pub published: Published,
    /// Its header (the plan's: not read back from disk).
    pub header: Header,
    /// How the chunks ran.
    pub output: pipeline::Output,
}

/// Quantizes the stored blob `src` as `plan` says and publishes the result.
///
/// # Errors
/// [`QuantError::Cancelled`] when `progress` said stop; I/O and kernel errors. The temp file is
/// removed on every error.
pub fn quantize_blob(
    store: &Store,
    quantizer: &Quantizer,
    src: &Digest,
    plan: &QuantPlan,
    progress: &mut impl Progress,
) -> Result<QuantizedBlob, QuantError> {
    let total = store.blob_size(src)?;
    let file = std::fs::File::open(store.blob_path(src))?;
    quantize_from(store, quantizer, file, total, plan, progress)
}

/// Quantizes the GGUF `src` reads (`total` bytes: a stored blob, or a conversion made as it is
/// read) as `plan` says and publishes the result.
///
/// # Errors
/// As [`quantize_blob`].
pub fn quantize_from(
    store: &Store,
    quantizer: &Quantizer,
    src: impl std::io::Read + std::io::Seek + Send,
    total: u64,
    plan: &QuantPlan,
    progress: &mut impl Progress,
) -> Result<QuantizedBlob, QuantError> {
    // Progress is in the source's bytes, scaled so that the bar ends at the source's size.
    let data = total.saturating_sub(plan.src_data_offset).max(1);
    let tmp = store.blob_temp()?;
    let out = tmp.as_file().try_clone()?;
    let mut last = Instant::now();
    let (_, output) = pipeline::run(plan, src, out, quantizer, |done| {
        if last.elapsed() >= REPORT_EVERY || done >= data {
            last = Instant::now();
            let completed = u64::try_from(u128::from(done) * u128::from(total) / u128::from(data)).unwrap_or(total);
            return progress.report(completed.min(total), total);
        }
        !progress.cancelled()
    })?;
    let published = store.publish_blob(tmp, &output.digest)?;
    Ok(QuantizedBlob {
        digest: output.digest.clone(),
        size: output.size,
        published,
        header: plan.output.clone(),
        output,
    })
}
