//! Which device quantizes: the CPU pool, or a GPU that opened and passed the start-up self-test
//! (`kiln serve --device auto|gpu|cpu`). Chunks go to the GPU when it has a kernel for the
//! target; F32 copies, and any chunk the device fails on, run on the CPU, which gives the same
//! bytes.

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
use crate::gpu::{self, Gpu};
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
    pub fn submit(&self, src_ty: GgmlType, dst_ty: GgmlType, raw: Vec<u8>) -> Result<Pending, QuantError> {
        if let Some(gpu) = self.gpu.as_ref().filter(|g| g.supports(dst_ty)) {
            match gpu.submit_raw(dst_ty, src_ty, &raw) {
                Ok(job) => return Ok(Pending(Job::Gpu { job, raw, src_ty, dst_ty })),
                Err(e) => tracing::warn!("GPU quantization failed ({e}); this chunk runs on the CPU"),
            }
        }
        let bytes = convert_cpu(&self.pool, src_ty, dst_ty, &raw)?;
        Ok(Pending(Job::Done(Converted { bytes, fallbacks: 0, on_gpu: false })))
    }

    /// Waits for a [`Quantizer::submit`]ted chunk.
    ///
    /// # Errors
    /// As [`Quantizer::submit`].
    pub fn finish(&self, pending: Pending) -> Result<Converted, QuantError> {
        match pending.0 {
            Job::Done(c) => Ok(c),
            Job::Gpu { job, raw, src_ty, dst_ty } => {
                let gpu = self.gpu.as_ref().expect("a GPU job comes from the GPU");
                match gpu.finish(job, &raw) {
                    Ok(q) => Ok(Converted { bytes: q.bytes, fallbacks: q.fallbacks, on_gpu: true }),
                    // The CPU gives the same bytes: a device failure costs time, not the create.
                    Err(e) => {
                        tracing::warn!("GPU quantization failed ({e}); this chunk runs on the CPU");
                        let bytes = convert_cpu(&self.pool, src_ty, dst_ty, &raw)?;
                        Ok(Converted { bytes, fallbacks: 0, on_gpu: false })
                    }
                }
            }
        }
    }
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
    Gpu { job: gpu::Pending, raw: Vec<u8>, src_ty: GgmlType, dst_ty: GgmlType },
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
                let x = &mut scratch[..r.len() / src_size];
                widen(src_ty, r, x);
                kernels::quantize(dst_ty, x, o)
            },
        )
    })?;
    Ok(out)
}
