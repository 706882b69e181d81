//! Which device quantizes: the CPU pool, or a GPU that opened and passed the start-up self-test
//! (`kiln serve --device auto|gpu|cpu`). Chunks go to the GPU when it has a kernel for the
//! target; F32 copies, and any chunk the device fails on, run on the CPU, which gives the same
//! bytes. The blocks a GPU kernel flags (non-finite, subnormal, tiny inputs) are redone here on
//! the CPU ([`convert_on_gpu`], [`Quantizer::finish`]).

use std::sync::Arc;
use std::time::Instant;

use kiln_core::ggml_type::GgmlType;
use kiln_core::request::QuantizerBackend;
/// What `GET /api/kiln/info` reports about the quantizer (a wire type, so it lives in kiln-core).
pub use kiln_core::request::QuantizerInfo;
use rayon::prelude::*;

use super::QuantError;
use super::widen::widen;
use crate::config::Device;
use crate::gpu::{self, Gpu, GpuError};
use crate::kernels;

/// Values per parallel CPU task: enough to amortise scheduling, small enough to stay in cache.
const TASK_ELEMS: usize = 1 << 14;

/// The quantizer a server uses for every create.
pub struct Quantizer {
    pool: Arc<rayon::ThreadPool>,
    gpu: Option<Gpu>,
    info: QuantizerInfo,
}

impl std::fmt::Debug for Quantizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quantizer").field("info", &self.info).finish_non_exhaustive()
    }
}

/// A chunk's output and how many of its blocks the CPU redid for the GPU.
#[derive(Debug)]
pub struct Converted {
    /// The output bytes.
    pub bytes: Vec<u8>,
    /// Blocks the GPU handed back to the CPU (non-finite, subnormal, tiny).
    pub fallbacks: usize,
    /// Whether the GPU did this chunk.
    pub on_gpu: bool,
}

impl Quantizer {
    /// The CPU only.
    #[must_use]
    pub fn cpu(pool: Arc<rayon::ThreadPool>, threads: usize, why: &str) -> Self {
        let info = QuantizerInfo {
            backend: QuantizerBackend::Cpu,
            adapter: None,
            driver: None,
            self_test: format!("not run: {why}"),
            threads,
            gpu_types: Vec::new(),
            gpu_weighted_types: Vec::new(),
        };
        Self { pool, gpu: None, info }
    }

    /// Picks the device for `kiln serve --device`: `auto` takes a hardware GPU that passes the
    /// self-test (a software one too with `KILN_GPU_ALLOW_SOFTWARE=1`) and otherwise the CPU;
    /// `gpu` takes any adapter (lavapipe included) and refuses to start when there is none or
    /// the self-test fails; `cpu` never looks.
    ///
    /// # Errors
    /// With `--device gpu`: no adapter, or a failed self-test; the text says which.
    pub fn start(device: Device, pool: Arc<rayon::ThreadPool>, threads: usize) -> Result<Self, String> {
        if device == Device::Cpu {
            tracing::info!("quantizing on the CPU ({threads} threads; --device cpu)");
            return Ok(Self::cpu(pool, threads, "--device cpu"));
        }
        let required = device == Device::Gpu;
        // Test switch: lets `auto` take lavapipe, so that CI can exercise its self-test fallback.
        let allow_software = required || std::env::var_os("KILN_GPU_ALLOW_SOFTWARE").is_some_and(|v| v == "1");
        let gpu = match Gpu::open(allow_software) {
            Ok(g) => g,
            Err(e) if required => return Err(format!("--device gpu: {e}")),
            Err(e) => {
                tracing::warn!("{e}: quantizing on the CPU ({threads} threads)");
                return Ok(Self::cpu(pool, threads, &e.to_string()));
            }
        };
        let (adapter, driver) = (gpu.adapter(), gpu.driver());
        let started = Instant::now();
        let test = gpu::selftest::run(&gpu);
        let ms = started.elapsed().as_millis();
        let mut info = QuantizerInfo {
            backend: QuantizerBackend::Gpu,
            adapter: Some(adapter.clone()),
            driver: Some(driver.clone()),
            self_test: "passed".into(),
            threads,
            gpu_types: gpu::SUPPORTED.iter().map(|t| t.name().to_owned()).collect(),
            gpu_weighted_types: gpu::SUPPORTED_WEIGHTED.iter().map(|t| t.name().to_owned()).collect(),
        };
        match test {
            Ok(report) => {
                tracing::info!(%adapter, %driver, "quantizing on the GPU; self-test passed in {ms} ms: {report}");
                Ok(Self { pool, gpu: Some(gpu), info })
            }
            Err(e) if required => Err(format!("--device gpu: the GPU self-test failed on {adapter}: {e}")),
            Err(e) => {
                tracing::error!(%adapter, %driver, "GPU self-test failed ({e}): quantizing on the CPU ({threads} threads)");
                info.backend = QuantizerBackend::Cpu;
                info.self_test = format!("failed: {e}");
                info.gpu_types.clear();
                info.gpu_weighted_types.clear();
                Ok(Self { pool, gpu: None, info })
            }
        }
    }

    /// What `/api/kiln/info` shows.
    #[must_use]
    pub fn info(&self) -> &QuantizerInfo {
        &self.info
    }

    /// Values per chunk the pipeline hands over, a few in flight at once: 4 Mi for the CPU
    /// (16 MiB of f32); 16 Mi for the GPU, so that one dispatch fills a large device.
    #[must_use]
    pub fn chunk_elems(&self) -> u64 {
        if self.gpu.is_some() { 1 << 24 } else { 1 << 22 }
    }

    /// Starts converting a chunk of `src_ty` values (`raw`, whole blocks of `dst_ty`): on the GPU
    /// this queues the work and returns at once (the pipeline reads and submits the next chunk
    /// meanwhile); on the CPU it converts it now.
    ///
    /// # Errors
    /// Kernel errors (lengths that are not whole blocks).
    pub fn submit(
        &self,
        src_ty: GgmlType,
        dst_ty: GgmlType,
        raw: Vec<u8>,
        weights: Option<&[f32]>,
    ) -> Result<Pending, QuantError> {
        // Weights only where the format's quantizer reads them (Q8_0 and the float types do not).
        let weights = weights.filter(|_| super::uses_weights(dst_ty));
        let on_gpu = |g: &&Gpu| match weights {
            Some(_) => g.supports_weighted(dst_ty),
            None => g.supports(dst_ty),
        };
        if let Some(gpu) = self.gpu.as_ref().filter(on_gpu) {
            match gpu.submit(src_ty, dst_ty, &raw, weights) {
                Ok(job) => {
                    let weights = weights.map(<[f32]>::to_vec);
                    return Ok(Pending(Job::Gpu { job, raw, src_ty, dst_ty, weights }));
                }
                Err(e) => tracing::warn!("GPU quantization failed ({e}); this chunk runs on the CPU"),
            }
        }
        let bytes = convert_cpu_any(&self.pool, src_ty, dst_ty, &raw, weights)?;
        Ok(Pending(Job::Done(Converted { bytes, fallbacks: 0, on_gpu: false })))
    }

    /// Waits for a [`Quantizer::submit`]ted chunk; on the GPU, redoes the blocks it flagged.
    ///
    /// # Errors
    /// As [`Quantizer::submit`].
    pub fn finish(&self, pending: Pending) -> Result<Converted, QuantError> {
        match pending.0 {
            Job::Done(c) => Ok(c),
            Job::Gpu { job, raw, src_ty, dst_ty, weights } => {
                let weights = weights.as_deref();
                let done = match &self.gpu {
                    Some(gpu) => gpu.finish(job).and_then(|out| redo_flagged(out, src_ty, dst_ty, &raw, weights)),
                    None => Err(GpuError::NoAdapter("a GPU chunk without a GPU".into())),
                };
                match done {
                    Ok(c) => Ok(c),
                    // The CPU gives the same bytes: a device failure costs time, not the create.
                    Err(e) => {
                        tracing::warn!("GPU quantization failed ({e}); this chunk runs on the CPU");
                        let bytes = convert_cpu_any(&self.pool, src_ty, dst_ty, &raw, weights)?;
                        Ok(Converted { bytes, fallbacks: 0, on_gpu: false })
                    }
                }
            }
        }
    }
}

/// Quantizes a chunk on `gpu` (with a tensor's importance vector `weights`, where given) and
/// redoes the blocks it flagged on the CPU: the bytes a create writes for it (the self-test,
/// the GPU tests and `kiln bench` measure this).
///
/// # Errors
/// A device failure, as [`Gpu::submit`] and [`Gpu::finish`].
pub fn convert_on_gpu(
    gpu: &Gpu,
    src_ty: GgmlType,
    dst_ty: GgmlType,
    raw: &[u8],
    weights: Option<&[f32]>,
) -> Result<Converted, GpuError> {
    let out = gpu.finish(gpu.submit(src_ty, dst_ty, raw, weights)?)?;
    redo_flagged(out, src_ty, dst_ty, raw, weights)
}

/// Redoes the GPU's flagged blocks of `raw` (the chunk it was given) with the CPU kernels. A
/// weighted block is redone alone with its slice of the importance vector where its format
/// quantizes each block from that block's values and weights only, and with its whole row where
/// σ² spans the row ([`kernels::row_wide_weights`]).
fn redo_flagged(
    out: gpu::Output,
    src_ty: GgmlType,
    dst_ty: GgmlType,
    raw: &[u8],
    weights: Option<&[f32]>,
) -> Result<Converted, GpuError> {
    let gpu::Output { mut bytes, flagged } = out;
    let src_size = src_ty.block_bytes() as usize; // 2 or 4: plain float types
    let (block_elems, block_bytes) = (dst_ty.block_elems() as usize, dst_ty.block_bytes() as usize);
    if let Some(w) = weights.filter(|_| kernels::row_wide_weights(dst_ty)) {
        // σ² spans the row: the rows holding a flagged block are redone whole.
        let (row, row_blocks) = (w.len(), w.len() / block_elems);
        let mut rows: Vec<usize> = flagged.iter().map(|b| b / row_blocks).collect();
        rows.sort_unstable();
        rows.dedup();
        let mut scratch = vec![0f32; row];
        for r in rows {
            let out_of_range = || GpuError::Readback(format!("flagged row {r} is outside the chunk"));
            let src = raw.get(r * row * src_size..(r + 1) * row * src_size).ok_or_else(out_of_range)?;
            let dst = bytes
                .get_mut(r * row_blocks * block_bytes..(r + 1) * row_blocks * block_bytes)
                .ok_or_else(out_of_range)?;
            widen(src_ty, src, &mut scratch);
            kernels::quantize_weighted(dst_ty, &scratch, w, dst)
                .map_err(|e| GpuError::Kernel { ty: dst_ty.name(), reason: e.to_string() })?;
        }
        return Ok(Converted { bytes, fallbacks: flagged.len(), on_gpu: true });
    }
    let raw_block = block_elems * src_size;
    let mut scratch = vec![0f32; block_elems];
    for &b in &flagged {
        let out_of_range = || GpuError::Readback(format!("flagged block {b} is outside the chunk"));
        let src = raw.get(b * raw_block..(b + 1) * raw_block).ok_or_else(out_of_range)?;
        let dst = bytes.get_mut(b * block_bytes..(b + 1) * block_bytes).ok_or_else(out_of_range)?;
        widen(src_ty, src, &mut scratch);
        let done = match weights {
            Some(w) => {
                let at = b * block_elems % w.len().max(1);
                let wb = w.get(at..at + block_elems).ok_or_else(out_of_range)?;
                kernels::quantize_weighted(dst_ty, &scratch, wb, dst)
            }
            None => kernels::quantize(dst_ty, &scratch, dst),
        };
        done.map_err(|e| GpuError::Kernel { ty: dst_ty.name(), reason: e.to_string() })?;
    }
    Ok(Converted { bytes, fallbacks: flagged.len(), on_gpu: true })
}

/// A chunk on its way through the quantizer ([`Quantizer::submit`]).
#[derive(Debug)]
pub struct Pending(Job);

impl Pending {
    /// Whether the result is there already (the CPU path).
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.0, Job::Done(_))
    }
}

#[derive(Debug)]
enum Job {
    Done(Converted),
    Gpu { job: gpu::Pending, raw: Vec<u8>, src_ty: GgmlType, dst_ty: GgmlType, weights: Option<Vec<f32>> },
}

/// A chunk on the CPU: [`convert_cpu_weighted`] with weights, [`convert_cpu`] without.
fn convert_cpu_any(
    pool: &rayon::ThreadPool,
    src_ty: GgmlType,
    dst_ty: GgmlType,
    raw: &[u8],
    weights: Option<&[f32]>,
) -> Result<Vec<u8>, QuantError> {
    match weights {
        Some(w) => convert_cpu_weighted(pool, src_ty, dst_ty, raw, w),
        None => convert_cpu(pool, src_ty, dst_ty, raw),
    }
}

/// Converts one chunk of whole rows with importance weights `w` (one row's worth, shared by
/// every row) on the pool: each task widens and quantizes whole rows.
fn convert_cpu_weighted(
    pool: &rayon::ThreadPool,
    src_ty: GgmlType,
    dst_ty: GgmlType,
    raw: &[u8],
    w: &[f32],
) -> Result<Vec<u8>, QuantError> {
    let src_size = src_ty.block_bytes() as usize; // 2 or 4: plain float types
    let row = w.len().max(1);
    let rows = raw.len() / src_size / row;
    let row_bytes = dst_ty.bytes_for(row as u64).unwrap_or(0) as usize;
    let mut out = vec![0u8; rows * row_bytes];
    let rows_per_task = (TASK_ELEMS / row).max(1);
    pool.install(|| {
        raw.par_chunks(rows_per_task * row * src_size)
            .zip(out.par_chunks_mut(rows_per_task * row_bytes))
            .try_for_each_init(
                || vec![0f32; rows_per_task * row],
                |scratch, (r, o)| {
                    scratch.resize(r.len() / src_size, 0.0);
                    widen(src_ty, r, scratch);
                    kernels::quantize_weighted(dst_ty, scratch, w, o)
                },
            )
    })?;
    Ok(out)
}

/// Converts one chunk on the pool: each task widens its slice and quantizes whole blocks.
fn convert_cpu(
    pool: &rayon::ThreadPool,
    src_ty: GgmlType,
    dst_ty: GgmlType,
    raw: &[u8],
) -> Result<Vec<u8>, QuantError> {
    let src_size = src_ty.block_bytes() as usize; // 2 or 4: plain float types
    let n = raw.len() / src_size;
    let block = dst_ty.block_elems() as usize;
    let out_len = dst_ty.bytes_for(n as u64).unwrap_or(0) as usize;
    let mut out = vec![0u8; out_len];
    let task = (TASK_ELEMS / block).max(1) * block;
    let out_task = task / block * dst_ty.block_bytes() as usize;
    pool.install(|| {
        raw.par_chunks(task * src_size).zip(out.par_chunks_mut(out_task)).try_for_each_init(
            || vec![0f32; task],
            |scratch, (r, o)| {
                // The last task may be shorter: the scratch takes the slice's length.
                scratch.resize(r.len() / src_size, 0.0);
                widen(src_ty, r, scratch);
                kernels::quantize(dst_ty, scratch, o)
            },
        )
    })?;
    Ok(out)
}
