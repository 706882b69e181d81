//! `kiln bench`: throughput of every block format (M values/s and MB/s of F16 input, on all
//! quantizer threads and on one; then with importance weights, as an imatrix run quantizes), and
//! end-to-end creates of a real model, with or without an imatrix, with peak RSS. Prints figures
//! only; comparisons with llama-quantize are made by `scripts/bench`, side by side.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use kiln_core::file_type::FileType;
use kiln_core::ggml_type::GgmlType;
use kiln_core::rng::Rng;
use kiln_core::validate::validate_create;
use rayon::prelude::*;

use crate::create::events::{Events, Msg};
use crate::kernels;

/// `kiln bench` options.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Values per format in the kernel benchmark.
    #[arg(long, default_value_t = 1 << 24)]
    pub elements: usize,
    /// Quantizer threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A GGUF model (F16/BF16/F32), or a Hugging Face model folder (safetensors: converted and
    /// quantized in one pass), to create end to end.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// File types for the end-to-end creates.
    #[arg(long, value_delimiter = ',', default_value = "Q8_0,Q4_K_M")]
    pub types: Vec<String>,
    /// An importance matrix (llama-imatrix's GGUF or `.dat`) for the end-to-end creates, as
    /// `llama-quantize --imatrix` takes it.
    #[arg(long)]
    pub imatrix: Option<PathBuf>,
    /// Skip the kernel benchmark.
    #[arg(long)]
    pub no_kernels: bool,
    /// End-to-end runs per type (each from a clean store: the new blob is written and fsynced).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Devices to measure: `cpu`, `gpu` (any adapter, lavapipe included; skipped with a line
    /// saying why when none opens or its self-test fails).
    #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
    pub devices: Vec<crate::config::Device>,
}

/// Deterministic Gaussian-like weights (sum of four uniforms), stored as F16 like a real model.
fn f16_weights(n: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        let mut v = 0.0f32;
        for _ in 0..4 {
            v += rng.next_f32() - 0.5;
        }
        out.extend_from_slice(&half::f16::from_f32(v * 0.03).to_bits().to_le_bytes());
    }
    out
}

fn time_best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn kernel_rate(pool: &rayon::ThreadPool, ty: GgmlType, raw: &[u8]) -> f64 {
    let n = raw.len() / 2;
    let block = ty.block_elems() as usize;
    let task = ((1usize << 14) / block).max(1) * block;
    let out_task = task / block * ty.block_bytes() as usize;
    let mut out = vec![0u8; ty.bytes_for(n as u64).unwrap_or(0) as usize];
    let d = time_best(3, || {
        pool.install(|| {
            raw.par_chunks(task * 2).zip(out.par_chunks_mut(out_task)).for_each_init(
                || vec![0f32; task],
                |scratch, (r, o)| {
                    let x = &mut scratch[..r.len() / 2];
                    crate::quantize::widen::widen(GgmlType::F16, r, x);
                    let _ = kernels::quantize(ty, x, o);
                },
            );
        });
    });
    n as f64 / d.as_secs_f64()
}

/// Values per row of the weighted kernel benchmark: a multiple of every block size, as wide as a
/// small model's rows.
const WEIGHTED_ROW: usize = 2048;

/// Values/s of `ty`'s weighted path on `raw` (F16), rows of [`WEIGHTED_ROW`] split over `pool`,
/// every row with the same positive weights (an imatrix entry's shape).
fn weighted_rate(pool: &rayon::ThreadPool, ty: GgmlType, raw: &[u8], weights: &[f32]) -> Result<f64, String> {
    let n = raw.len() / 2;
    let row_bytes = ty.bytes_for(WEIGHTED_ROW as u64).unwrap_or(0) as usize;
    let mut out = vec![0u8; n / WEIGHTED_ROW * row_bytes];
    let mut failed = None;
    let d = time_best(3, || {
        let r: Result<(), kernels::KernelError> = pool.install(|| {
            raw.par_chunks(WEIGHTED_ROW * 2).zip(out.par_chunks_mut(row_bytes)).try_for_each_init(
                || vec![0f32; WEIGHTED_ROW],
                |x, (r, o)| {
                    crate::quantize::widen::widen(GgmlType::F16, r, x);
                    kernels::quantize_weighted(ty, x, weights, o)
                },
            )
        });
        failed = r.err();
    });
    failed.map_or_else(|| Ok(n as f64 / d.as_secs_f64()), |e| Err(e.to_string()))
}

/// The weighted table: every format with a weighted path, on all threads.
fn weighted_kernels(pool: &rayon::ThreadPool, threads: usize, raw: &[u8]) {
    let mut rng = Rng::new(0x5EED_1A7B);
    // Squared activations, as llama-imatrix accumulates them: positive, spread over decades.
    let weights: Vec<f32> = (0..WEIGHTED_ROW).map(|_| (rng.next_f32() * 4.0).powi(2) + 1e-3).collect();
    println!("\nweighted (importance weights, rows of {WEIGHTED_ROW}), {} F16 values per format", raw.len() / 2);
    println!("{:<8} {:>16} {:>14}", "format", format!("{threads} thr M val/s"), "MB/s F16");
    let plain = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
    for ty in kernels::FORMATS.iter().map(|f| f.ty).filter(|t| !plain.contains(t)) {
        match weighted_rate(pool, ty, raw, &weights) {
            Ok(rate) => println!("{:<8} {:>16.1} {:>14.0}", ty.name(), rate / 1e6, rate * 2.0 / 1e6),
            Err(e) => println!("{:<8} failed: {e}", ty.name()),
        }
    }
}

/// The GPU kernels on `raw` (F16), per format: values/s, timed from F16 in host memory to bytes
/// back in host memory (upload, widening and kernel on the device, readback, CPU fallback
/// blocks), as a create runs them.
fn gpu_kernels(raw: &[u8]) {
    let gpu = match crate::gpu::Gpu::open(true) {
        Ok(g) => g,
        Err(e) => {
            println!("\nGPU kernels: not measured ({e})");
            return;
        }
    };
    let n = raw.len() / 2;
    println!(
        "\nGPU kernels on {} ({}), {n} F16 values per format, upload + kernel + readback",
        gpu.adapter(),
        gpu.driver()
    );
    println!("{:<6} {:>12} {:>14} {:>10}", "format", "G val/s", "GB/s F16 in", "CPU blocks");
    for ty in crate::gpu::SUPPORTED {
        let mut fallbacks = 0;
        let mut failed = None;
        let d = time_best(3, || match crate::quantize::backend::convert_on_gpu(&gpu, GgmlType::F16, ty, raw, None) {
            Ok(q) => fallbacks = q.fallbacks,
            Err(e) => failed = Some(e),
        });
        if let Some(e) = failed {
            println!("{:<6} failed: {e}", ty.name());
            continue;
        }
        let rate = n as f64 / d.as_secs_f64();
        println!("{:<6} {:>12.3} {:>14.2} {:>10}", ty.name(), rate / 1e9, rate * 2.0 / 1e9, fallbacks);
    }
    gpu_weighted_kernels(&gpu, &raw[..raw.len() / (WEIGHTED_ROW * 2) * (WEIGHTED_ROW * 2)]);
}

/// The weighted GPU kernels on `raw` (F16, rows of [`WEIGHTED_ROW`] sharing one importance
/// vector), per format: values/s as [`gpu_kernels`] times them, and whether the bytes equal the
/// CPU's weighted path.
fn gpu_weighted_kernels(gpu: &crate::gpu::Gpu, raw: &[u8]) {
    let weights = &crate::gpu::selftest::importance(WEIGHTED_ROW)[0];
    let n = raw.len() / 2;
    let mut wide = vec![0f32; n];
    crate::quantize::widen::widen(GgmlType::F16, raw, &mut wide);
    println!(
        "
GPU weighted kernels (importance weights, rows of {WEIGHTED_ROW}), {n} F16 values per format"
    );
    println!("{:<6} {:>12} {:>14} {:>10} {:>10}", "format", "G val/s", "GB/s F16 in", "CPU blocks", "CPU bytes");
    for ty in crate::gpu::SUPPORTED_WEIGHTED {
        let mut last = None;
        let d = time_best(3, || {
            last = Some(crate::quantize::backend::convert_on_gpu(gpu, GgmlType::F16, ty, raw, Some(weights)));
        });
        let q = match last {
            Some(Ok(q)) => q,
            Some(Err(e)) => {
                println!("{:<6} failed: {e}", ty.name());
                continue;
            }
            None => continue,
        };
        let mut want = vec![0u8; q.bytes.len()];
        let same = kernels::quantize_weighted(ty, &wide, weights, &mut want).is_ok() && want == q.bytes;
        let rate = n as f64 / d.as_secs_f64();
        let verdict = if same { "identical" } else { "DIFFER" };
        println!(
            "{:<6} {:>12.3} {:>14.2} {:>10} {:>10}",
            ty.name(),
            rate / 1e9,
            rate * 2.0 / 1e9,
            q.fallbacks,
            verdict
        );
    }
}

/// Peak resident set since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs the benchmark.
///
/// # Errors
/// I/O failures and failed creates.
pub fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    if !args.no_kernels {
        let n = args.elements / 256 * 256;
        let raw = f16_weights(n);
        println!("kernels: {n} F16 values per format");
        println!(
            "{:<6} {:>16} {:>14} {:>16} {:>14}",
            "format",
            format!("{threads} thr M val/s"),
            "MB/s F16",
            "1 thr M val/s",
            "MB/s F16"
        );
        // Types that need importance weights have no plain path to time.
        for ty in kernels::FORMATS.iter().filter(|f| f.ty != GgmlType::F32 && !f.needs_weights).map(|f| f.ty) {
            let all = kernel_rate(&pool, ty, &raw);
            let single = kernel_rate(&one, ty, &raw);
            println!(
                "{:<6} {:>16.1} {:>14.0} {:>16.1} {:>14.0}",
                ty.name(),
                all / 1e6,
                all * 2.0 / 1e6,
                single / 1e6,
                single * 2.0 / 1e6
            );
        }
        // A quarter of the values: the grid searches (IQ2, IQ1) take seconds per million.
        weighted_kernels(&pool, threads, &raw[..raw.len() / 4 / (WEIGHTED_ROW * 2) * (WEIGHTED_ROW * 2)]);
        if args.devices.contains(&crate::config::Device::Gpu) {
            gpu_kernels(&raw);
        }
    }
    if let Some(model) = &args.model {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        for &device in &args.devices {
            let run = CreateBench { model, imatrix: args.imatrix.as_deref(), threads, runs: args.runs.max(1), device };
            rt.block_on(create_bench(&run, &args.types))?;
        }
    }
    Ok(())
}

/// What one device's end-to-end table creates.
struct CreateBench<'a> {
    model: &'a std::path::Path,
    imatrix: Option<&'a std::path::Path>,
    threads: usize,
    runs: usize,
    device: crate::config::Device,
}

/// Copies `path` into the store as a blob, as an upload would, synced before any timing starts.
fn import_blob(store: &crate::store::Store, path: &std::path::Path) -> std::io::Result<kiln_core::Digest> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    let digest = crate::store::blobs::finish(h);
    std::fs::copy(path, store.blob_path(&digest))?;
    // The copy must be on disk before timing starts, or its writeback competes with the runs.
    std::fs::File::open(store.blob_path(&digest))?.sync_all()?;
    Ok(digest)
}

async fn create_bench(bench: &CreateBench<'_>, types: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let &CreateBench { model, imatrix, threads, runs, device } = bench;
    let dir = tempfile::Builder::new()
        .prefix("kiln-bench-")
        .tempdir_in(model.parent().unwrap_or(std::path::Path::new(".")))?;
    let store = crate::store::Store::open(dir.path())?;
    // Import the source as an upload would: each file hashed and stored as a blob.
    let sources: Vec<(String, PathBuf)> = if model.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(model)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), p))
            .collect();
        v.sort();
        v
    } else {
        vec![("model.gguf".to_owned(), model.to_path_buf())]
    };
    let mut files = serde_json::Map::new();
    let mut bytes_in = 0;
    for (key, path) in &sources {
        let digest = import_blob(&store, path)?;
        bytes_in += std::fs::metadata(path)?.len();
        files.insert(key.clone(), digest.to_string().into());
    }
    let imatrix_digest = imatrix.map(|p| import_blob(&store, p)).transpose()?;
    let args = crate::config::ServeArgs {
        host: "127.0.0.1:0".into(),
        models: dir.path().to_path_buf(),
        cache: None,
        device,
        threads: Some(threads),
        ui: None,
        origins: String::new(),
        limits: crate::config::LimitArgs::default(),
    };
    let state = match crate::state::AppState::new(store, &args) {
        Ok(s) => s,
        Err(e) => {
            println!("\nend-to-end create on {device:?}: not measured ({e})");
            return Ok(());
        }
    };
    let q = state.quantizer.info();
    let on = q
        .adapter
        .as_deref()
        .filter(|_| q.backend == kiln_core::request::QuantizerBackend::Gpu)
        .map_or_else(|| format!("CPU, {threads} threads"), |a| format!("GPU {a}"));
    let with = imatrix.map_or_else(String::new, |p| format!(" with the imatrix {}", p.display()));
    println!(
        "\nend-to-end create of {} ({:.0} MB){with} on the {on}, {runs} runs each from a clean store",
        model.display(),
        bytes_in as f64 / 1e6
    );
    println!("{:<8} {:>9} {:>9} {:>12} {:>14}", "type", "best s", "median s", "MB out", "peak RSS MiB");
    for t in types {
        FileType::parse_quantize(t)?;
        let name = format!("bench-{}", t.to_lowercase());
        let mut req = serde_json::json!({"model": name, "files": files, "quantize": t});
        if let Some(d) = &imatrix_digest {
            req["imatrix"] = d.to_string().into();
        }
        let mut times = Vec::new();
        let (mut out, mut rss) = (0u64, 0f64);
        for _ in 0..runs {
            let plan = validate_create(&serde_json::from_value(req.clone())?)?;
            reset_peak_rss();
            let (events, mut rx) = Events::channel();
            let started = Instant::now();
            let task = tokio::spawn(crate::create::run(state.store.clone(), state.quantizer.clone(), plan, events));
            let mut failed = None;
            while let Some(m) = rx.recv().await {
                if let Msg::Failed(e) = m {
                    failed = Some(e);
                }
            }
            task.await?;
            times.push(started.elapsed().as_secs_f64());
            if let Some(e) = failed {
                return Err(e.to_string().into());
            }
            rss = rss.max(peak_rss_mib().unwrap_or(f64::NAN));
            // Delete it again so the next run writes (and fsyncs) a new blob, as a first create does.
            let model_name = kiln_core::ModelName::parse(&name).ok_or("name")?;
            let m = state.store.read_manifest(&model_name)?.ok_or("manifest")?;
            out = m.manifest.layers.first().map_or(0, |l| l.size);
            state.store.delete_manifest(&model_name)?;
        }
        times.sort_by(f64::total_cmp);
        println!("{:<8} {:>9.3} {:>9.3} {:>12.1} {:>14.0}", t, times[0], times[times.len() / 2], out as f64 / 1e6, rss);
    }
    Ok(())
}
