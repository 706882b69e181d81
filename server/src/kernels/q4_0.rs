//! Q4_0 — 32 values in 18 bytes: f16 `d`, 16 bytes of nibbles (`quantize_row_q4_0_ref`).

use kiln_core::ggml_type::GgmlType;

use super::lanes::{L, SimdWeighted, absmax32, dispatch_weighted};
use super::legacy::{self, LaneBlock};
use super::qx_lanes::make_qx_quants_w_x8;
use super::{BlockFormat, ggml};

/// Q4_0.
pub struct Q4_0;

/// The signed value of the first element of largest magnitude, given that magnitude: what
/// ggml's strict `>` scan returns (0.0 when the block is all zeros).
#[inline(always)]
pub(super) fn first_with_abs(x: &[f32; 32], amax: f32) -> f32 {
    if amax == 0.0 {
        return 0.0;
    }
    x.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0)
}

impl BlockFormat for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (max, _) = ggml::argabsmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        for j in 0..16 {
            // (int8_t)(x*id + 8.5f), then MIN(15, ·) on int8.
            let q0 = (ggml::cvt(x[j] * id + 8.5) as i8).min(15);
            let q1 = (ggml::cvt(x[j + 16] * id + 8.5) as i8).min(15);
            out[2 + j] = (q0 as u8) | ((i32::from(q1) << 4) as u8);
        }
    }

    /// Element-parallel within each block (see Q8_0); non-finite blocks and overflowing `1/d`
    /// take the reference path.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// `quantize_row_q4_0_impl`: per block, the weighted symmetric search with weights
    /// `qw·sqrt(σ² + x²)`, σ² the mean square of the whole row.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        weighted_blocks(8, x, w, false, |b, l, d| pack_weighted(l, d, &mut out[18 * b..][..18]));
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
        weighted_blocks(8, x, w, true, |b, l, d| pack_weighted(l, d, &mut out[18 * b..][..18]));
    }
}

fn pack_weighted(l: &[u8; 32], d: f32, out: &mut [u8]) {
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    for j in 0..16 {
        out[2 + j] = l[j] | (l[j + 16] << 4);
    }
}

/// The `_0` formats' weighted search (`quantize_row_q4_0_impl`, `…q5_0_impl`) over a row:
/// weights `qw·sqrt(σ² + x²)` with σ² the row's mean square, the weighted `make_qx_quants` per
/// block, and `emit(block, quants, d)` for each. With `lanes`, eight blocks at a time go through
/// its SIMD twin; the rest, and everything without, one at a time.
#[inline(always)]
pub(super) fn weighted_blocks(
    nmax: i32,
    x: &[f32],
    w: &[f32],
    lanes: bool,
    mut emit: impl FnMut(usize, &[u8; 32], f32),
) {
    let sigma2 = ggml::mean_sq(x);
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
            let d = make_qx_quants_w_x8(nmax, &xt, &wt, &mut lt);
            for k in 0..L {
                let l: [u8; 32] = std::array::from_fn(|i| lt[i][k] as u8);
                emit(done + k, &l, d[k]);
            }
            done += L;
        }
    }
    let mut weight = [0f32; 32];
    let mut l = [0i8; 32];
    for (b, (xb, qw)) in x.chunks_exact(32).zip(w.chunks_exact(32)).enumerate().skip(done) {
        for j in 0..32 {
            weight[j] = ggml::importance(qw[j], sigma2, xb[j]);
        }
        let d = ggml::make_qx_quants_w(nmax, xb, &weight, &mut l);
        emit(b, &l.map(|v| v as u8), d);
    }
}

impl LaneBlock for Q4_0 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let (amax, finite) = absmax32(xa);
        let d = first_with_abs(xa, amax) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !finite || !id.is_finite() {
            return false;
        }
        ob[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        let mut q = [0u8; 32];
        for i in 0..32 {
            // x*id ∈ [-8, 8] here, so the truncating conversion is in range.
            let v = (xa[i] * id + 8.5) as i32;
            q[i] = if v > 15 { 15 } else { v as u8 };
        }
        for j in 0..16 {
            ob[2 + j] = q[j] | (q[j + 16] << 4);
        }
        true
    }
}
