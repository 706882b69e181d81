//! IQ2_S — 256 values in 82 bytes: f16 `d`, 32 low bytes of 10-bit indices into the
//! 1024-point grid, 32 sign bytes (one per group of eight, all eight signs), 8 bytes of the
//! indices' high bits, sixteen 4-bit sub-block scales (`quantize_row_iq2_s_impl`).
//!
//! ggml quantizes IQ2_S with or without importance weights: without, each value weighs
//! `σ²/4 + x²`, so the plain path is the same search ([`quantize_iq2_s`] with `NULL`).

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, nearest_int};
use super::iq2_grids::{Grid, GridKind, final_index, max_f};
use super::iq2_xs::search16;
use super::lanes::SuperBlockSearch;

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

/// `quantize_iq2_s` (`quantize_row_iq2_s_ref` without weights).
impl SuperBlockSearch for Iq2S {
    const SEARCHED: GgmlType = GgmlType::IQ2_S;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        super_block::<FAST>(Grid::get(GridKind::Iq2S), x, w, out);
    }
}
