//! IQ3_XXS — 256 values (8 groups of 32) in 98 bytes: f16 `d`, 64 bytes of grid indices (one per
//! 4 values, 256-point grid), then per group a `u32` of four 7-bit sign codes and a 4-bit scale
//! (`quantize_row_iq3_xxs_impl` with `grid_size` 256).
//!
//! Without weights (`quantize_row_iq3_xxs_ref`, and what llama-quantize does without an imatrix)
//! ggml weights each value by its own square; with them, by `qw·sqrt(σ² + x²)`.

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, nearest_int};
use super::iq2_grids::even_signs;
use super::iq3_grids::{Search, grid_256, weights};
use super::lanes::SuperBlockSearch;

/// IQ3_XXS.
pub struct Iq3Xxs;

/// ggml's `GROUP_MAX_EPS_IQ3_XXS`: groups whose largest value is below it are zero.
const GROUP_MAX_EPS: f32 = 1e-8;

impl SuperBlockSearch for Iq3Xxs {
    const SEARCHED: GgmlType = GgmlType::IQ3_XXS;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        block::<FAST>(x, &weights(x, w), out);
    }
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
            block_signs[k] = even_signs(&xb[8 * k..8 * k + 8], &w[8 * k..8 * k + 8], &mut xval[8 * k..8 * k + 8]);
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
