//! IQ2_S — 256 values in 82 bytes: f16 `d`, 32 low bytes of 10-bit indices into the
//! 1024-point grid, 32 sign bytes (one per group of eight, all eight signs), 8 bytes of the
//! indices' high bits, sixteen 4-bit sub-block scales (`quantize_row_iq2_s_impl`).
//!
//! ggml quantizes IQ2_S with or without importance weights: without, each value weighs
//! `σ²/4 + x²`, so the plain path is the same search ([`quantize_iq2_s`] with `NULL`).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, nearest_int};
use super::iq2_grids::{Grid, GridKind, final_index, max_f};
use super::iq2_xs::search16;
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};

/// IQ2_S.
pub struct Iq2S;

/// ggml's `GROUP_MAX_EPS_IQ2_S`.
const GROUP_MAX_EPS_IQ2_S: f32 = 1e-8;

/// `quantize_row_iq2_s_impl` for one super-block of 256, with its 256 weights or without.
fn super_block<const FAST: bool>(grid: &Grid, xbl: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    out.fill(0);
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let sigma2 = 2.0 * ggml::sum_sq(xbl) / 256.0;
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight: [f32; 16] = match qw {
            Some(qw) => std::array::from_fn(|i| ggml::importance(qw[16 * ib + i], sigma2, xb[i])),
            None => std::array::from_fn(|i| 0.25 * sigma2 + xb[i] * xb[i]),
        };
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        for (i, &v) in xb.iter().enumerate() {
            if v >= 0.0 {
                xval[i] = v;
            } else {
                xval[i] = -v;
                signs[i / 8] |= 1 << (i % 8);
            }
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = max_f(max, v);
        }
        if max < GROUP_MAX_EPS_IQ2_S {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 16];
        let mut scale = search16::<FAST>(grid, &xval, &weight, &waux, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s;
            }
        }
        for k in 0..2 {
            let index = final_index(grid, &l[8 * k..8 * k + 8]);
            let i8 = 2 * ib + k;
            out[2 + i8] = index as u8;
            out[66 + i8 / 4] |= ((index >> 8) << (2 * (i8 % 4))) as u8;
            out[2 + 32 + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = max_f(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    out[..2].copy_from_slice(&ggml::f16(d * 0.9875).to_le_bytes());
    let id = 1.0 / d;
    for ib in 0..16 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        out[74 + ib / 2] |= l << (4 * (ib % 2));
    }
}

/// `quantize_iq2_s` on one row: weighted, or plain when `w` is `None`.
fn quantize_iq2_s<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
    let grid = Grid::get(GridKind::Iq2S);
    for (b, (xb, ob)) in x.chunks_exact(256).zip(out.chunks_exact_mut(82)).enumerate() {
        super_block::<FAST>(grid, xb, w.map(|w| &w[256 * b..256 * b + 256]), ob);
    }
}

impl BlockFormat for Iq2S {
    const TYPE: GgmlType = GgmlType::IQ2_S;

    /// `quantize_row_iq2_s_ref`: `quantize_iq2_s` without weights.
    fn quantize_block(x: &[f32], out: &mut [u8]) {
        quantize_iq2_s::<false>(x, None, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        quantize_iq2_s::<false>(x, Some(w), out);
        true
    }

    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<Fast>(x, w, out);
        true
    }
}

/// The fast paths: the neighbour searches by table, compiled once plainly and once per SIMD
/// level.
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        quantize_iq2_s::<true>(x, None, out);
    }
}

impl SimdWeighted for Fast {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        quantize_iq2_s::<true>(x, Some(w), out);
    }
}
