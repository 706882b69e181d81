//! The start-up self-test: every GPU kernel quantizes a corpus that holds each kind of block
//! that can expose an inexact driver (random scales, outliers, ties on the rounding grid, zero,
//! constant, tiny, subnormal and non-finite blocks; shared/spec/quantization.md §3.7) and must
//! give the CPU's bytes. `KILN_GPU_SELFTEST_FAIL=1` flips one byte, for tests of the fallback.

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
        let mut got = backend::convert_on_gpu(gpu, GgmlType::F32, ty, raw).map_err(|e| e.to_string())?;
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
    Ok(report.join(", "))
}
