//! The GPU kernels on whatever adapter wgpu finds (lavapipe in CI: `WGPU_BACKEND=vulkan` and
//! Debian's mesa-vulkan-drivers, installed by scripts/setup): ggml's vectors byte for byte, the
//! fallback corpus patched to the CPU's bytes, and the self-test. No adapter is a failure here,
//! not a skip: the server's CPU fallback for that case is tested end to end.
#![expect(clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

use std::path::PathBuf;

use kiln_core::ggml_type::GgmlType;
use kiln_server::gpu::{Gpu, selftest};
use kiln_server::kernels;
use kiln_server::quantize::backend::{Converted, convert_on_gpu};

fn gpu() -> Gpu {
    Gpu::open(true).unwrap_or_else(|e| {
        panic!("the GPU tests need an adapter (lavapipe: apt-get install mesa-vulkan-drivers): {e}")
    })
}

/// F32 values through the GPU, flagged blocks redone on the CPU: what a create writes.
fn quantize(g: &Gpu, ty: GgmlType, x: &[f32]) -> Converted {
    convert_on_gpu(g, GgmlType::F32, ty, bytemuck::cast_slice(x), None).unwrap()
}

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/quant")
}

/// ggml's output without weights for the formats new with the imatrix vectors (same input).
fn noweights(name: &str) -> PathBuf {
    vectors().join(format!("../imatrix/{name}.noweights.bin"))
}

#[test]
fn gpu_kernels_match_ggml_vectors() {
    let g = gpu();
    eprintln!("adapter: {} / driver: {}", g.adapter(), g.driver());
    let bytes = std::fs::read(vectors().join("input.f32")).unwrap();
    let x: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut tested = Vec::new();
    for (ty, file) in [
        (GgmlType::F16, vectors().join("f16.bin")),
        (GgmlType::BF16, vectors().join("bf16.bin")),
        (GgmlType::Q8_0, vectors().join("q8_0.bin")),
        (GgmlType::Q4_0, vectors().join("q4_0.bin")),
        (GgmlType::Q4_1, vectors().join("q4_1.bin")),
        (GgmlType::Q5_0, vectors().join("q5_0.bin")),
        (GgmlType::Q5_1, vectors().join("q5_1.bin")),
        (GgmlType::Q2_K, vectors().join("q2_K.bin")),
        (GgmlType::Q3_K, vectors().join("q3_K.bin")),
        (GgmlType::Q4_K, vectors().join("q4_K.bin")),
        (GgmlType::Q5_K, vectors().join("q5_K.bin")),
        (GgmlType::Q6_K, vectors().join("q6_K.bin")),
        (GgmlType::IQ4_NL, noweights("iq4_nl")),
        (GgmlType::IQ4_XS, noweights("iq4_xs")),
    ] {
        tested.push(ty);
        let want = std::fs::read(file).unwrap();
        let got = quantize(&g, ty, &x);
        let bb = ty.block_bytes() as usize;
        let bad: Vec<usize> =
            (0..want.len() / bb).filter(|&b| got.bytes[b * bb..(b + 1) * bb] != want[b * bb..(b + 1) * bb]).collect();
        assert!(
            bad.is_empty(),
            "{}: {} of {} blocks differ, first {:?}",
            ty.name(),
            bad.len(),
            want.len() / bb,
            &bad[..bad.len().min(8)]
        );
        eprintln!("{}: {} blocks identical to ggml ({} redone on the CPU)", ty.name(), want.len() / bb, got.fallbacks);
    }
    // Every format with a GPU kernel has its vectors here.
    assert_eq!(tested, kiln_server::gpu::SUPPORTED);
}

#[test]
fn awkward_blocks_fall_back_to_the_cpu_and_match() {
    let g = gpu();
    let x = selftest::corpus(4);
    for ty in kiln_server::gpu::SUPPORTED {
        let got = quantize(&g, ty, &x);
        let mut want = vec![0u8; got.bytes.len()];
        kernels::quantize(ty, &x, &mut want).unwrap();
        assert!(got.bytes == want, "{}: GPU bytes differ from the CPU", ty.name());
        // Tiny (1e-20), subnormal (1e-40) and non-finite rows, 4 of each: every block of them.
        let per_row = 256 / ty.block_elems() as usize;
        if !matches!(ty, GgmlType::F16 | GgmlType::BF16) {
            assert!(got.fallbacks >= 3 * 4 * per_row, "only {} fallback blocks", got.fallbacks);
        }
        eprintln!("{}: {} bytes identical, {} blocks redone on the CPU", ty.name(), want.len(), got.fallbacks);
    }
}

#[test]
fn odd_lengths() {
    let g = gpu();
    let x = selftest::corpus(4);
    // One block, three blocks (an odd pair or a partly filled workgroup), and 37 blocks.
    for ty in kiln_server::gpu::SUPPORTED {
        let be = ty.block_elems() as usize;
        for n in [be, 3 * be, 37 * be] {
            let got = quantize(&g, ty, &x[..n]);
            let mut want = vec![0u8; n / be * ty.block_bytes() as usize];
            kernels::quantize(ty, &x[..n], &mut want).unwrap();
            assert!(got.bytes == want, "{} {n} values", ty.name());
        }
    }
}

#[test]
fn self_test_passes_and_can_be_made_to_fail() {
    let g = gpu();
    let report = selftest::run(&g).unwrap();
    eprintln!("self-test: {report}");
    assert!(report.contains("Q8_0"));
    let failed = selftest::check(&g, true).unwrap_err();
    assert_eq!(failed, "F16: block 3 differs from the CPU");
}

#[test]
fn sixteen_bit_sources_are_widened_on_the_device() {
    let g = gpu();
    let x = selftest::corpus(2);
    let f16: Vec<u8> = x.iter().flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes()).collect();
    let bf16: Vec<u8> = x.iter().flat_map(|v| (v.to_bits() >> 16).to_le_bytes()[..2].to_vec()).collect();
    for (src_ty, raw) in [(GgmlType::F16, &f16), (GgmlType::BF16, &bf16)] {
        let mut wide = vec![0f32; x.len()];
        kiln_server::quantize::widen::widen(src_ty, raw, &mut wide);
        for ty in kiln_server::gpu::SUPPORTED {
            let got = convert_on_gpu(&g, src_ty, ty, raw, None).unwrap();
            let mut want = vec![0u8; got.bytes.len()];
            kernels::quantize(ty, &wide, &mut want).unwrap();
            assert!(got.bytes == want, "{} from {}: GPU bytes differ from the CPU", ty.name(), src_ty.name());
        }
        eprintln!("{} source: all {} formats identical", src_ty.name(), kiln_server::gpu::SUPPORTED.len());
    }
}

#[test]
fn inputs_split_into_many_pieces() {
    let mut g = gpu();
    // One unit per dispatch: a K-quant workgroup, a legacy pair of blocks, two F16 values.
    g.limit_piece(1);
    let x = selftest::corpus(1);
    for ty in kiln_server::gpu::SUPPORTED {
        let n = if ty.block_elems() == 1 { 64 } else { x.len() };
        let got = quantize(&g, ty, &x[..n]);
        let mut want = vec![0u8; got.bytes.len()];
        kernels::quantize(ty, &x[..n], &mut want).unwrap();
        assert!(got.bytes == want, "{} in pieces", ty.name());
    }
}

/// Little-endian f32s from a vectors file.
fn floats(path: PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// `shared/vectors/imatrix`: each input row with its own importance row, one call per row as
/// ggml made them, through every kernel with a weighted path.
#[test]
fn weighted_gpu_kernels_match_ggml_imatrix_vectors() {
    let g = gpu();
    let x = floats(vectors().join("input.f32"));
    let w = floats(vectors().join("../imatrix/weights.f32"));
    assert_eq!(x.len(), w.len());
    assert!(!kiln_server::gpu::SUPPORTED_WEIGHTED.is_empty());
    let mut failed = Vec::new();
    for ty in kiln_server::gpu::SUPPORTED_WEIGHTED {
        let name = ty.name().to_lowercase().replace("_k", "_K");
        let want = std::fs::read(vectors().join(format!("../imatrix/{name}.bin"))).unwrap();
        let row_bytes = ty.block_bytes() as usize * 256 / ty.block_elems() as usize;
        assert_eq!(want.len(), x.len() / 256 * row_bytes, "{name}");
        let (mut bad, mut fallbacks) = (Vec::new(), 0);
        for (r, (xr, wr)) in x.chunks_exact(256).zip(w.chunks_exact(256)).enumerate() {
            let got = convert_on_gpu(&g, GgmlType::F32, ty, bytemuck::cast_slice(xr), Some(wr)).unwrap();
            fallbacks += got.fallbacks;
            if got.bytes != want[r * row_bytes..(r + 1) * row_bytes] {
                bad.push(r);
            }
        }
        if bad.is_empty() {
            eprintln!("{}: 512 weighted rows identical to ggml ({fallbacks} blocks redone on the CPU)", ty.name());
        } else {
            failed.push(format!(
                "{}: {} of 512 weighted rows differ, first {:?}",
                ty.name(),
                bad.len(),
                &bad[..bad.len().min(8)]
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// One importance vector shared by many rows, in pieces of one workgroup: every piece finds its
/// place in the row, and the CPU's bytes come out; without weights the same kernels still give
/// the plain bytes.
#[test]
fn weighted_rows_in_many_pieces() {
    let mut g = gpu();
    g.limit_piece(1);
    // 55 rows of 256: 11 rows of 1280, so that most pieces (1024 or 2048 values for the K-quants,
    // 4096 or 16384 for the pairs) start inside a row.
    let x = selftest::corpus(5);
    for w in selftest::importance(1280) {
        for ty in kiln_server::gpu::SUPPORTED_WEIGHTED {
            let got = convert_on_gpu(&g, GgmlType::F32, ty, bytemuck::cast_slice(&x), Some(&w)).unwrap();
            let mut want = vec![0u8; got.bytes.len()];
            kernels::quantize_weighted(ty, &x, &w, &mut want).unwrap();
            let bb = ty.block_bytes() as usize;
            let bad = got.bytes.chunks_exact(bb).zip(want.chunks_exact(bb)).position(|(g, w)| g != w);
            assert!(bad.is_none(), "{} weighted, in pieces: block {bad:?} differs", ty.name());
        }
    }
}

#[test]
fn weights_for_a_kernel_without_a_weighted_path_are_refused() {
    let g = gpu();
    let x = selftest::corpus(1);
    let w = vec![1.0f32; 256];
    let err = g.submit(GgmlType::F32, GgmlType::Q8_0, bytemuck::cast_slice(&x), Some(&w)).unwrap_err();
    assert_eq!(err.to_string(), "Q8_0: no GPU kernel for 256 importance weights here");
    let err = g.submit(GgmlType::F32, GgmlType::Q4_K, bytemuck::cast_slice(&x), Some(&w[..100])).unwrap_err();
    assert_eq!(err.to_string(), "Q4_K: no GPU kernel for 100 importance weights here");
    // Input that is not whole rows of the weights: 11 rows of 256 are not rows of 512.
    let w = vec![1.0f32; 512];
    let err = g.submit(GgmlType::F32, GgmlType::Q4_0, bytemuck::cast_slice(&x), Some(&w)).unwrap_err();
    assert_eq!(err.to_string(), "Q4_0: no GPU kernel for 512 importance weights here");
}

/// The quantizer a server runs with `--device gpu`: a weighted chunk of a type with a weighted
/// kernel goes to the GPU, one without (IQ3_S: a grid type) to the CPU, and both give the CPU's
/// bytes.
#[test]
fn the_quantizer_sends_weighted_chunks_where_a_kernel_takes_them() {
    use kiln_server::config::Device;
    use kiln_server::quantize::backend::Quantizer;

    let pool = std::sync::Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
    let q = Quantizer::start(Device::Gpu, pool, 2).unwrap();
    assert_eq!(
        q.info().gpu_weighted_types,
        ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
    );
    let x = selftest::corpus(4);
    let w = &selftest::importance(1024)[0];
    for (ty, on_gpu) in
        [(GgmlType::Q4_K, true), (GgmlType::IQ4_XS, true), (GgmlType::Q5_1, true), (GgmlType::IQ3_S, false)]
    {
        let raw = bytemuck::cast_slice(&x).to_vec();
        let got = q.finish(q.submit(GgmlType::F32, ty, raw, Some(w)).unwrap()).unwrap();
        assert_eq!(got.on_gpu, on_gpu, "{}", ty.name());
        let mut want = vec![0u8; got.bytes.len()];
        kernels::quantize_weighted(ty, &x, w, &mut want).unwrap();
        assert!(got.bytes == want, "{} weighted through the quantizer", ty.name());
    }
}
