//! IQ2_XXS — 256 values in 66 bytes: f16 `d`, then per 32-value sub-block two little-endian
//! `u32`s: four 8-bit indices into the 256-point grid (eight magnitudes each), and four 7-bit
//! sign masks (the eighth sign makes the parity even) with a 4-bit scale in the top bits
//! (`quantize_row_iq2_xxs_impl`).
//!
//! ggml quantizes IQ2_XXS only with importance weights, so there is no plain path
//! ([`BlockFormat::NEEDS_WEIGHTS`]).

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, GROUP_MAX_EPS, make_qp_quants, nearest_int};
use super::iq2_grids::{Grid, GridKind, K_MAX_Q, Lookup, even_signs, final_index, levels_at, max_f, pattern, sums};
use super::lanes::SuperBlockSearch;

/// IQ2_XXS.
pub struct Iq2Xxs;

/// One sub-block of 32: the scale search. Fills `l` with levels on the grid and returns the
/// scale, or `None` for a sub-block ggml leaves at zero.
fn sub_block<const FAST: bool>(
    grid: &Grid,
    xval: &[f32; 32],
    weight: &[f32; 32],
    waux: &[f32; 32],
    l: &mut [i8; 32],
) -> Option<f32> {
    let mut max = xval[0];
    for &v in &xval[1..] {
        max = max_f(max, v);
    }
    if max < GROUP_MAX_EPS {
        return None;
    }
    let mut lq = [0u8; 32];
    let mut scale = make_qp_quants(K_MAX_Q + 1, xval, &mut lq, weight);
    let eff_max = scale * K_MAX_Q as f32;
    if eff_max <= 0.0 {
        return None;
    }
    for (li, &q) in l.iter_mut().zip(&lq) {
        *li = q as i8;
    }
    let mut best = 0.0f32;
    let mut laux = [0i8; 32];
    for is in -6i32..=6 {
        let id = ((2 * K_MAX_Q - 1) as f32 + is as f32 * 0.1f32) / eff_max;
        let this_scale = 1.0 / id;
        for k in 0..4 {
            let g = 8 * k..8 * k + 8;
            levels_at(id, &xval[g.clone()], &mut laux[g.clone()]);
            if let Lookup::Neighbours(nb) = grid.lookup(pattern(&laux[g.clone()])) {
                grid.neighbour::<FAST>(nb, &xval[g.clone()], &waux[g.clone()], this_scale, &mut laux[g]);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
        }
    }
    if scale > 0.0 {
        let id = 1.0 / scale;
        for k in 0..4 {
            let g = 8 * k..8 * k + 8;
            let mut lk = [0i8; 8];
            levels_at(id, &xval[g.clone()], &mut lk);
            let index = match grid.lookup(pattern(&lk)) {
                Lookup::OnGrid(index) => index,
                Lookup::Neighbours(nb) => {
                    grid.neighbour::<FAST>(nb, &xval[g.clone()], &waux[g.clone()], scale, &mut lk)
                }
            };
            for (li, &v) in l[g].iter_mut().zip(grid.levels(index)) {
                *li = v as i8;
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    Some(scale)
}

/// `quantize_row_iq2_xxs_impl` for one super-block of 256 with its 256 weights.
fn super_block<const FAST: bool>(grid: &Grid, xbl: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut q2 = [0u32; 16];
    let mut scales = [0f32; 8];
    let mut max_scale = 0.0f32;
    let sigma2 = ggml::sum_sq(xbl) / 256.0;
    for ib in 0..8 {
        let (xb, qw) = (&xbl[32 * ib..32 * ib + 32], &qw[32 * ib..32 * ib + 32]);
        let weight: [f32; 32] = std::array::from_fn(|i| ggml::importance(qw[i], sigma2, xb[i]));
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        for k in 0..4 {
            signs[k] = even_signs(&xb[8 * k..], &weight[8 * k..], &mut xval[8 * k..8 * k + 8]);
        }
        let mut l = [0i8; 32];
        let Some(mut scale) = sub_block::<FAST>(grid, &xval, &weight, &waux, &mut l) else {
            scales[ib] = 0.0;
            continue;
        };
        if scale < 0.0 {
            // ggml: "should never happen"; the scale is stored unsigned, so the signs flip.
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..4 {
            let index = final_index(grid, &l[8 * k..8 * k + 8]);
            q2[2 * ib] |= (index as u32) << (8 * k);
            q2[2 * ib + 1] |= u32::from(signs[k]) << (7 * k);
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
    for ib in 0..8 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        q2[2 * ib + 1] |= (l as u32) << 28;
    }
    for (o, q) in out[2..].chunks_exact_mut(4).zip(&q2) {
        o.copy_from_slice(&q.to_le_bytes());
    }
}

impl SuperBlockSearch for Iq2Xxs {
    const SEARCHED: GgmlType = GgmlType::IQ2_XXS;
    const WEIGHTS_ONLY: bool = true;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        // `kernels::quantize` refuses this format without weights before it gets here.
        let Some(qw) = w else { unreachable!("IQ2_XXS has no plain path in ggml") };
        super_block::<FAST>(Grid::get(GridKind::Iq2Xxs), x, qw, out);
    }
}
