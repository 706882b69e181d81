//! IQ3_S — 256 values (8 groups of 32) in 110 bytes: f16 `d`, 64 low bytes of grid indices (one
//! per 4 values, 512-point grid), 8 bytes of their ninth bits, 32 bytes of signs (one bit per
//! value), 4 bytes of 4-bit group scales (`quantize_row_iq3_s_impl`, block size 32).
//!
//! Without weights (`quantize_row_iq3_s_ref`, and llama-quantize without an imatrix) ggml weights
//! each value by its own square; with them, by `qw·sqrt(σ² + x²)`.

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, nearest_int};
use super::iq3_grids::{Search, grid_512};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};

/// IQ3_S.
pub struct Iq3S;

/// Byte offsets in the block: `d`, `qs`, `qh`, `signs`, `scales`.
const QS: usize = 2;
const QH: usize = 66;
const SIGNS: usize = 74;
const SCALES: usize = 106;

impl BlockFormat for Iq3S {
    const TYPE: GgmlType = GgmlType::IQ3_S;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        plain::<false>(x, out);
    }

    /// The neighbour searches in lanes.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        weighted::<false>(x, w, out);
        true
    }

    /// The neighbour searches in lanes.
    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<Fast>(x, w, out);
        true
    }
}

/// The fast paths' bodies, compiled once plainly and once per SIMD level.
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(110)) {
            plain::<true>(xb, ob);
        }
    }
}

impl SimdWeighted for Fast {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        weighted::<true>(x, w, out);
    }
}

/// One super-block without weights: ggml then weights each value by its square.
#[inline(always)]
fn plain<const FAST: bool>(x: &[f32], out: &mut [u8]) {
    let mut weight = [[0f32; 32]; 8];
    for (i, &v) in x.iter().enumerate() {
        weight[i / 32][i % 32] = v * v;
    }
    block::<FAST>(x, &weight, out);
}

/// Super-blocks with importance weights `qw·sqrt(σ² + x²)`, σ² twice the super-block's mean
/// square.
#[inline(always)]
fn weighted<const FAST: bool>(x: &[f32], w: &[f32], out: &mut [u8]) {
    for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(110)) {
        let sigma2 = 2.0 * ggml::sum_sq(xb) / 256.0;
        let mut weight = [[0f32; 32]; 8];
        for i in 0..256 {
            weight[i / 32][i % 32] = ggml::importance(qw[i], sigma2, xb[i]);
        }
        block::<FAST>(xb, &weight, ob);
    }
}

/// One super-block with the values' weights (per group of 32).
#[inline(always)]
fn block<const FAST: bool>(x: &[f32], weight: &[[f32; 32]; 8], out: &mut [u8]) {
    let search = Search { grid: grid_512(), steps: 9, xxs: false };
    out.fill(0);
    let mut scales = [0f32; 8];
    let mut max_scale = 0.0f32;
    // ggml advances its `qs` and `signs` pointers only past groups it writes: after an all-zero
    // group the later groups' indices and signs move up into its place (the ninth bits and the
    // scales stay put), and the last slots stay zero.
    let (mut qs, mut signs) = (QS, SIGNS);
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let w = &weight[ib];
        let waux: [f32; 32] = w.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut block_signs = [0u8; 4];
        for i in 0..32 {
            if xb[i] >= 0.0 {
                xval[i] = xb[i];
            } else {
                xval[i] = -xb[i];
                block_signs[i / 8] |= 1 << (i % 8);
            }
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        if max == 0.0 {
            continue;
        }
        let mut l = [0i8; 32];
        let mut scale = search.run::<FAST>(&xval, w, &waux, max, &mut l);
        if scale < 0.0 {
            // ggml: "should never happen"; the scale is stored unsigned, so the signs flip.
            scale = -scale;
            for s in &mut block_signs {
                *s = !*s;
            }
        }
        for k in 0..8 {
            let index = search.grid.index_of(&l[4 * k..4 * k + 4]);
            out[qs + k] = index as u8;
            out[QH + ib] |= ((index >> 8) as u8) << k;
        }
        qs += 8;
        out[signs..signs + 4].copy_from_slice(&block_signs);
        signs += 4;
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    out[..2].copy_from_slice(&ggml::f16(d * 1.033).to_le_bytes());
    let id = 1.0 / d;
    for ib in (0..8).step_by(2) {
        let l1 = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        let l2 = nearest_int(0.5 * (id * scales[ib + 1] - 1.0)).clamp(0, 15) as u8;
        out[SCALES + ib / 2] = l1 | (l2 << 4);
    }
}
