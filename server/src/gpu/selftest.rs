//! The start-up self-test: every GPU kernel quantizes a corpus that holds each kind of block
//! that can expose an inexact driver (random scales, outliers, ties on the rounding grid, zero,
//! constant, tiny, subnormal and non-finite blocks; shared/spec/quantization.md §3.7) and must
//! give the CPU's bytes, and every kernel with a weighted path does again with importance
//! weights ([`importance`]). `KILN_GPU_SELFTEST_FAIL=1` flips one byte, for tests of the fallback.

use kiln_core::ggml_type::GgmlType;
use kiln_core::rng::Rng;

use super::Gpu;
use crate::kernels;
use crate::quantize::backend;

const KINDS: usize = 11;

/// Deterministic rows of 256 values, one kind per row.
#[must_use]
pub fn corpus(rows_per_kind: usize) -> Vec<f32> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    // Uniform in [-1, 1) from 24 random bits; sums of four approximate a Gaussian.
    let mut uni = move || rng.next_f32() * 2.0 - 1.0;
    let mut out = Vec::new();
    for r in 0..rows_per_kind * KINDS {
        let kind = r % KINDS;
        let scale = [1e-3f32, 0.02, 1.0, 30.0][r / KINDS % 4];
        for i in 0..256 {
            let g = (uni() + uni() + uni() + uni()) * scale;
            out.push(match kind {
                0 => g,
                1 if i % 97 == 0 => g * 20.0,
                1 => g,
                2 => (uni() * 16.0).round() / 8.0 + 0.0625, // ties on the 1/8 and 1/16 grid
                3 => 0.0,
                4 => {
                    if i < 128 {
                        0.75
                    } else {
                        -0.75
                    }
                }
                5 => g * 1e-20,
                6 => g * 1e-40, // subnormal
                7 => match i % 64 {
                    3 => f32::NAN,
                    17 => f32::INFINITY,
                    40 => f32::NEG_INFINITY,
                    _ => g,
                },
                8 => g.abs(),
                // Just above the tiny threshold, beside values whose cubes are subnormal: the
                // searches' sums are small enough here that a device flushing subnormals to zero
                // gets other sums (quantization.md §3.5), so it fails the self-test
                // (server/tests/selftest_power.rs).
                10 if i % 2 == 1 => uni() * 1e-13,
                10 => (1.5 + uni()) * 1e-12 * (1 << (r / KINDS % 4)) as f32,
                _ => {
                    if i % 32 == 0 {
                        65504.0 + g
                    } else {
                        g * 1e4
                    }
                }
            });
        }
    }
    out
}

/// Importance vectors of `row` values, one per kind: the shapes of the imatrix vectors
/// (`shared/vectors/imatrix`): squares of a smooth curve, equal values, runs of zeros, a few
/// massive channels, and values spread over 24 decades (10^-12..10^12), where products leave
/// the usual range first.
#[must_use]
pub fn importance(row: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(0x5851_F42D_4C95_7F2D);
    let mut uni = move || rng.next_f32();
    let curve: Vec<f32> = (0..row).map(|i| (1.0 + (i as f32 * 0.05).sin() * 0.9).powi(2)).collect();
    let zeros: Vec<f32> = (0..row).map(|i| if (i / 32) % 3 == 1 || i % 7 == 0 { 0.0 } else { 1.0 + uni() }).collect();
    let massive: Vec<f32> = (0..row).map(|i| if i % 61 == 5 { 1e5 * (1.0 + uni()) } else { uni() }).collect();
    let spread: Vec<f32> = (0..row).map(|_| 10f32.powf(uni() * 24.0 - 12.0)).collect();
    vec![curve, vec![1.0; row], vec![3.5e-7; row], zeros, massive, spread]
}

/// Compares every kernel with the CPU on [`corpus`]; the text says what was checked or what differed.
///
/// # Errors
/// The first differing block, or a device failure.
pub fn run(gpu: &Gpu) -> Result<String, String> {
    check(gpu, std::env::var_os("KILN_GPU_SELFTEST_FAIL").is_some_and(|v| v == "1"))
}

/// [`run`], with `sabotage` flipping one GPU byte first (what `KILN_GPU_SELFTEST_FAIL=1` does).
///
/// # Errors
/// As [`run`].
pub fn check(gpu: &Gpu, sabotage: bool) -> Result<String, String> {
    let x = corpus(8);
    let raw: &[u8] = bytemuck::cast_slice(&x);
    let mut report = Vec::new();
    for ty in super::SUPPORTED {
        // The GPU's bytes with its flagged blocks redone, as a create writes them.
        let mut got = backend::convert_on_gpu(gpu, GgmlType::F32, ty, raw, None).map_err(|e| e.to_string())?;
        if sabotage && let Some(b) = got.bytes.get_mut(7) {
            *b ^= 1;
        }
        let mut want = vec![0u8; got.bytes.len()];
        kernels::quantize(ty, &x, &mut want).map_err(|e| e.to_string())?;
        let bb = ty.block_bytes() as usize;
        if let Some(b) = got.bytes.chunks_exact(bb).zip(want.chunks_exact(bb)).position(|(g, w)| g != w) {
            return Err(format!("{}: block {b} differs from the CPU", ty.name()));
        }
        report.push(format!("{} {} blocks ({} on the CPU)", ty.name(), want.len() / bb, got.fallbacks));
    }
    // Rows of 512 values, so that a row's two super-blocks take different parts of the vector.
    let row = 512;
    for ty in super::SUPPORTED_WEIGHTED {
        let (mut blocks, mut fallbacks) = (0, 0);
        for w in importance(row) {
            let got = backend::convert_on_gpu(gpu, GgmlType::F32, ty, raw, Some(&w)).map_err(|e| e.to_string())?;
            let mut want = vec![0u8; got.bytes.len()];
            kernels::quantize_weighted(ty, &x, &w, &mut want).map_err(|e| e.to_string())?;
            let bb = ty.block_bytes() as usize;
            if let Some(b) = got.bytes.chunks_exact(bb).zip(want.chunks_exact(bb)).position(|(g, w)| g != w) {
                return Err(format!("{} with importance weights: block {b} differs from the CPU", ty.name()));
            }
            blocks += want.len() / bb;
            fallbacks += got.fallbacks;
        }
        report.push(format!("{} weighted {blocks} blocks ({fallbacks} on the CPU)", ty.name()));
    }
    Ok(report.join(", "))
}
