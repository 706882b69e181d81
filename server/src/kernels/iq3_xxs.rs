//! IQ3_XXS — 256 values (8 groups of 32) in 98 bytes: f16 `d`, 64 bytes of grid indices (one per
//! 4 values, 256-point grid), then per group a `u32` of four 7-bit sign codes and a 4-bit scale
//! (`quantize_row_iq3_xxs_impl` with `grid_size` 256).
//!
//! Without weights (`quantize_row_iq3_xxs_ref`, and what llama-quantize does without an imatrix)
//! ggml weights each value by its own square; with them, by `qw·sqrt(σ² + x²)`.

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, nearest_int};
use super::iq3_grids::{Search, grid_256};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};

/// IQ3_XXS.
pub struct Iq3Xxs;

/// ggml's `GROUP_MAX_EPS_IQ3_XXS`: groups whose largest value is below it are zero.
const GROUP_MAX_EPS: f32 = 1e-8;

impl BlockFormat for Iq3Xxs {
    const TYPE: GgmlType = GgmlType::IQ3_XXS;

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
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(98)) {
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
    for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(98)) {
        let sigma2 = 2.0 * ggml::sum_sq(xb) / 256.0;
        let mut weight = [[0f32; 32]; 8];
        for i in 0..256 {
            weight[i / 32][i % 32] = ggml::importance(qw[i], sigma2, xb[i]);
        }
        block::<FAST>(xb, &weight, ob);
    }
}

/// The signs of 8 values as a 7-bit code: the values' magnitudes into `xval`, and, when an odd
/// number are negative, the one of least `weight·x²` flipped (its `xval` negative) so that the
/// count is even and the eighth sign follows from the other seven.
#[inline(always)]
fn signs(xb: &[f32], weight: &[f32], xval: &mut [f32]) -> u8 {
    let (mut s, mut nflip) = (0u8, 0);
    for i in 0..8 {
        if xb[i] >= 0.0 {
            xval[i] = xb[i];
        } else {
            xval[i] = -xb[i];
            nflip += 1;
            s |= 1 << i;
        }
    }
    if nflip % 2 == 1 {
        let mut imin = 0;
        let mut min = weight[0] * xb[0] * xb[0];
        for i in 1..8 {
            let ax = weight[i] * xb[i] * xb[i];
            if ax < min {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= 1 << imin;
    }
    s & 127
}

/// One super-block with the values' weights (per group of 32).
#[inline(always)]
fn block<const FAST: bool>(x: &[f32], weight: &[[f32; 32]; 8], out: &mut [u8]) {
    let search = Search { grid: grid_256(), steps: 15, xxs: true };
    let mut q3 = [0u8; 96];
    let mut scales = [0f32; 8];
    let mut max_scale = 0.0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let w = &weight[ib];
        let waux: [f32; 32] = w.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut block_signs = [0u8; 4];
        for k in 0..4 {
            block_signs[k] = signs(&xb[8 * k..8 * k + 8], &w[8 * k..8 * k + 8], &mut xval[8 * k..8 * k + 8]);
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        if max < GROUP_MAX_EPS {
            continue;
        }
        let mut l = [0i8; 32];
        let mut scale = search.run::<FAST>(&xval, w, &waux, max, &mut l);
        if scale < 0.0 {
            // ggml: "should never happen"; the scale is stored unsigned, so the signs flip.
            scale = -scale;
            for s in &mut block_signs {
                *s = !*s & 127;
            }
        }
        for k in 0..8 {
            q3[8 * ib + k] = search.grid.index_of(&l[4 * k..4 * k + 4]) as u8;
        }
        let packed = u32::from(block_signs[0])
            | (u32::from(block_signs[1]) << 7)
            | (u32::from(block_signs[2]) << 14)
            | (u32::from(block_signs[3]) << 21);
        q3[64 + 4 * ib..68 + 4 * ib].copy_from_slice(&packed.to_le_bytes());
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        out.fill(0);
        return;
    }
    let d = max_scale / 31.0;
    out[..2].copy_from_slice(&ggml::f16(d * 1.0125).to_le_bytes());
    let id = 1.0 / d;
    for ib in 0..8 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        q3[67 + 4 * ib] |= l << 4;
    }
    out[2..].copy_from_slice(&q3);
}
