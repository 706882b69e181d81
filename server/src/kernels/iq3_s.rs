//! IQ3_S — 256 values (8 groups of 32) in 110 bytes: f16 `d`, 64 low bytes of grid indices (one
//! per 4 values, 512-point grid), 8 bytes of their ninth bits, 32 bytes of signs (one bit per
//! value), 4 bytes of 4-bit group scales (`quantize_row_iq3_s_impl`, block size 32).
//!
//! Without weights (`quantize_row_iq3_s_ref`, and llama-quantize without an imatrix) ggml weights
//! each value by its own square; with them, by `qw·sqrt(σ² + x²)`.

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, nearest_int};
use super::iq3_grids::{Search, grid_512, weights};
use super::lanes::SuperBlockSearch;

/// IQ3_S.
pub struct Iq3S;

/// Byte offsets in the block: `d`, `qs`, `qh`, `signs`, `scales`.
const QS: usize = 2;
const QH: usize = 66;
const SIGNS: usize = 74;
const SCALES: usize = 106;

impl SuperBlockSearch for Iq3S {
    const SEARCHED: GgmlType = GgmlType::IQ3_S;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        block::<FAST>(x, &weights(x, w), out);
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
