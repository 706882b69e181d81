//! Q4_1 — 32 values in 20 bytes: f16 `d`, f16 `m`, 16 bytes of nibbles (`quantize_row_q4_1_ref`).

use kiln_core::ggml_type::GgmlType;

use super::lanes::{L, SimdWeighted, dispatch_weighted, min_max32};
use super::legacy::{self, LaneBlock};
use super::qkx2_lanes::make_qkx2_quants_x8;
use super::{BlockFormat, ggml};

/// Q4_1.
pub struct Q4_1;

/// Min and max by explicit comparisons, as ggml scans them.
pub(super) fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Lane-parallel min/max when the result cannot depend on scan order: finite values, and no
/// zero extreme (where +0 and -0 would tie and the first seen wins).
#[inline(always)]
pub(super) fn min_max_fast(x: &[f32; 32]) -> Option<(f32, f32)> {
    let (min, max, finite) = min_max32(x);
    (finite && min != 0.0 && max != 0.0).then_some((min, max))
}

impl BlockFormat for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        out[2..4].copy_from_slice(&ggml::f16(min).to_le_bytes());
        for j in 0..16 {
            let q0 = (ggml::cvt((x[j] - min) * id + 0.5) as i8).min(15);
            let q1 = (ggml::cvt((x[j + 16] - min) * id + 0.5) as i8).min(15);
            out[4 + j] = (q0 as u8) | ((i32::from(q1) << 4) as u8);
        }
    }

    /// Element-parallel within each block; order-sensitive blocks take the reference path.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// `quantize_row_q4_1_impl`: per block, the weighted asymmetric search
    /// (`make_qkx3_quants`) with weights `qw·sqrt(σ² + x²)`, σ² the mean square of the row.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        weighted_blocks(15, x, w, false, |b, l, d, min| pack_weighted(l, d, min, &mut out[20 * b..][..20]));
        true
    }

    /// Eight blocks at a time in SIMD lanes.
    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<FastWeighted>(x, w, out);
        true
    }
}

/// The weighted fast path's body, compiled once plainly and once for AVX2.
struct FastWeighted;

impl SimdWeighted for FastWeighted {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        weighted_blocks(15, x, w, true, |b, l, d, min| pack_weighted(l, d, min, &mut out[20 * b..][..20]));
    }
}

fn pack_weighted(l: &[u8; 32], d: f32, the_min: f32, out: &mut [u8]) {
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    out[2..4].copy_from_slice(&ggml::f16(-the_min).to_le_bytes());
    for j in 0..16 {
        out[4 + j] = l[j] | (l[j + 16] << 4);
    }
}

/// The `_1` formats' weighted search (`quantize_row_q4_1_impl`, `…q5_1_impl`) over a row:
/// weights `qw·sqrt(σ² + x²)` with σ² the row's mean square, `make_qkx3_quants` per block, and
/// `emit(block, quants, d, the_min)` for each. With `lanes`, eight blocks at a time go through
/// the plain K-quants' SIMD search, which is `make_qkx3_quants` step for step given weights (see
/// Q4_K's `quantize_k_scales_weighted_x8`); the rest, and everything without, one at a time.
#[inline(always)]
pub(super) fn weighted_blocks(
    nmax: i32,
    x: &[f32],
    w: &[f32],
    lanes: bool,
    mut emit: impl FnMut(usize, &[u8; 32], f32, f32),
) {
    let sigma2 = ggml::mean_sq(x);
    let p = ggml::qkx3(nmax);
    let mut done = 0;
    if lanes {
        for (xg, wg) in x.chunks_exact(256).zip(w.chunks_exact(256)) {
            let (mut xt, mut wt, mut lt) = ([[0f32; L]; 32], [[0f32; L]; 32], [[0f32; L]; 32]);
            for k in 0..L {
                for i in 0..32 {
                    xt[i][k] = xg[32 * k + i];
                    wt[i][k] = ggml::importance(wg[32 * k + i], sigma2, xg[32 * k + i]);
                }
            }
            let (d, min) = make_qkx2_quants_x8(p, &xt, &wt, &mut lt);
            for k in 0..L {
                let l: [u8; 32] = std::array::from_fn(|i| lt[i][k] as u8);
                emit(done + k, &l, d[k], min[k]);
            }
            done += L;
        }
    }
    let mut weight = [0f32; 32];
    let (mut l, mut laux) = ([0u8; 32], [0u8; 32]);
    for (b, (xb, qw)) in x.chunks_exact(32).zip(w.chunks_exact(32)).enumerate().skip(done) {
        for j in 0..32 {
            weight[j] = ggml::importance(qw[j], sigma2, xb[j]);
        }
        let (d, min) = ggml::make_qkx3_quants(p, xb, &weight, &mut l, &mut laux);
        emit(b, &l, d, min);
    }
}

impl LaneBlock for Q4_1 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let Some((min, max)) = min_max_fast(xa) else { return false };
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !id.is_finite() || !(max - min).is_finite() {
            return false;
        }
        ob[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        ob[2..4].copy_from_slice(&ggml::f16(min).to_le_bytes());
        let mut q = [0u8; 32];
        for i in 0..32 {
            let v = ((xa[i] - min) * id + 0.5) as i32;
            q[i] = if v > 15 { 15 } else { v as u8 };
        }
        for j in 0..16 {
            ob[4 + j] = q[j] | (q[j + 16] << 4);
        }
        true
    }
}
