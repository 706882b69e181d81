//! IQ2_XS — 256 values in 74 bytes: f16 `d`, 32 little-endian `u16`s (per group of eight a
//! 9-bit index into the 512-point grid and a 7-bit sign mask, the eighth sign making the parity
//! even), then sixteen 4-bit sub-block scales (`quantize_row_iq2_xs_impl`).
//!
//! ggml quantizes IQ2_XS only with importance weights, so there is no plain path
//! ([`BlockFormat::NEEDS_WEIGHTS`]). The scale search over a sub-block of sixteen,
//! [`search16`], is IQ2_S's too.

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, GROUP_MAX_EPS, nearest_int};
use super::iq2_grids::{Grid, GridKind, K_MAX_Q, Lookup, even_signs, final_index, levels_at, max_f, pattern, sums};
use super::lanes::SuperBlockSearch;

/// IQ2_XS.
pub struct Iq2Xs;

/// The scale search of IQ2_XS and IQ2_S over one sub-block of sixteen (two groups of eight)
/// whose largest magnitude is `max`: nineteen trial scales around `max/5`, each group's levels
/// snapped to the grid (the nearest neighbour when off it), the best weighted fit kept, then
/// the groups that were off the grid requantized at that scale and the scale refitted. Fills
/// `l` with levels on the grid and returns the scale.
#[inline(always)]
pub(super) fn search16<const FAST: bool>(
    grid: &Grid,
    xval: &[f32; 16],
    weight: &[f32; 16],
    waux: &[f32; 16],
    max: f32,
    l: &mut [i8; 16],
) -> f32 {
    let mut best = 0.0f32;
    let mut scale = max / (2 * K_MAX_Q - 1) as f32;
    let mut on_grid = [true; 2];
    let mut laux = [0i8; 16];
    let mut on_grid_aux = [true; 2];
    for is in -9i32..=9 {
        let id = ((2 * K_MAX_Q - 1) as f32 + is as f32 * 0.1f32) / max;
        let this_scale = 1.0 / id;
        for k in 0..2 {
            let g = 8 * k..8 * k + 8;
            levels_at(id, &xval[g.clone()], &mut laux[g.clone()]);
            on_grid_aux[k] = true;
            if let Lookup::Neighbours(nb) = grid.lookup(pattern(&laux[g.clone()])) {
                on_grid_aux[k] = false;
                grid.neighbour::<FAST>(nb, &xval[g.clone()], &waux[g.clone()], this_scale, &mut laux[g]);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            on_grid = on_grid_aux;
        }
    }
    if on_grid.contains(&false) && scale > 0.0 {
        let id = 1.0 / scale;
        for k in 0..2 {
            if on_grid[k] {
                continue;
            }
            let g = 8 * k..8 * k + 8;
            levels_at(id, &xval[g.clone()], &mut l[g.clone()]);
            if let Lookup::Neighbours(nb) = grid.lookup(pattern(&l[g.clone()])) {
                grid.neighbour::<FAST>(nb, &xval[g.clone()], &waux[g.clone()], scale, &mut l[g]);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// `quantize_row_iq2_xs_impl` for one super-block of 256 with its 256 weights.
fn super_block<const FAST: bool>(grid: &Grid, xbl: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut q2 = [0u16; 32];
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let sigma2 = ggml::sum_sq(xbl) / 256.0;
    for ib in 0..16 {
        let (xb, qw) = (&xbl[16 * ib..16 * ib + 16], &qw[16 * ib..16 * ib + 16]);
        let weight: [f32; 16] = std::array::from_fn(|i| ggml::importance(qw[i], sigma2, xb[i]));
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        for k in 0..2 {
            signs[k] = even_signs(&xb[8 * k..], &weight[8 * k..], &mut xval[8 * k..8 * k + 8]);
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = max_f(max, v);
        }
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 16];
        let mut scale = search16::<FAST>(grid, &xval, &weight, &waux, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..2 {
            q2[2 * ib + k] = final_index(grid, &l[8 * k..8 * k + 8]) as u16 | (u16::from(signs[k]) << 9);
        }
        scales[ib] = scale;
        max_scale = max_f(max_scale, scale);
    }
    out.fill(0);
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    let id = 1.0 / d;
    for (o, q) in out[2..66].chunks_exact_mut(2).zip(&q2) {
        o.copy_from_slice(&q.to_le_bytes());
    }
    for ib in 0..16 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        out[66 + ib / 2] |= l << (4 * (ib % 2));
    }
}

impl SuperBlockSearch for Iq2Xs {
    const SEARCHED: GgmlType = GgmlType::IQ2_XS;
    const WEIGHTS_ONLY: bool = true;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        // `kernels::quantize` refuses this format without weights before it gets here.
        let Some(qw) = w else { unreachable!("IQ2_XS has no plain path in ggml") };
        super_block::<FAST>(Grid::get(GridKind::Iq2Xs), x, qw, out);
    }
}
