//! IQ1_M — 256 values in 56 bytes: 32 low bytes of 11-bit indices into the 2048-point ternary
//! grid, 16 bytes of the indices' high three bits with each group's shift sign, and 8 bytes of
//! 3-bit sub-block scales whose spare top nibbles hold the f16 super-block scale
//! (`quantize_row_iq1_m_impl`). Each group of eight has its own shift `±IQ1M_DELTA`.
//!
//! ggml quantizes IQ1_M with or without importance weights: without, each value weighs `x²`,
//! so the plain path is the same search ([`quantize_iq1_m`] with `NULL`).

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, nearest_int};
use super::iq1_s::{X_M, X_P, max_abs, sorted_indices, split_levels};
use super::iq2_grids::{Grid, GridKind, Lookup, max_f, pattern};
use super::lanes::{L, SuperBlockSearch};

/// IQ1_M.
pub struct Iq1M;

/// ggml's `GROUP_MAX_EPS_IQ1_M`.
const GROUP_MAX_EPS_IQ1_M: f32 = 1e-7;

/// The shift bits of `qh` for each of the four shift choices (`masks`).
const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];

/// The shifted values of group `k` (0 or 1) under shift choice `best_k`: 0 is (+, +), 1 (+, −),
/// 2 (−, +), 3 (−, −).
#[inline(always)]
fn shift_values(k: usize, best_k: usize) -> &'static [f32; 3] {
    let plus = if k == 0 { best_k < 2 } else { best_k.is_multiple_of(2) };
    if plus { &X_P } else { &X_M }
}

/// Each value's weight: `qw·sqrt(σ² + x²)` with weights, `x²` without.
#[inline(always)]
fn weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 16] {
    match qw {
        Some(qw) => std::array::from_fn(|i| ggml::importance(qw[i], sigma2, xb[i])),
        None => std::array::from_fn(|i| xb[i] * xb[i]),
    }
}

/// The exhaustive split search of one sub-block of 16 with a shift per half, on prefix sums
/// kept per half: `(i1, i2, best_k, scale)` of the best weighted fit, or `None`.
fn best_split(xb: &[f32], weight: &[f32; 16], idx: &[usize; 16]) -> Option<(usize, usize, usize, f32)> {
    let mut px = [[0f32; 17]; 2];
    let mut pw = [[0f32; 17]; 2];
    for (j, &i) in idx.iter().enumerate() {
        let h = usize::from(i >= 8);
        px[h][j + 1] = px[h][j] + weight[i] * xb[i];
        px[1 - h][j + 1] = px[1 - h][j];
        pw[h][j + 1] = pw[h][j] + weight[i];
        pw[1 - h][j + 1] = pw[1 - h][j];
    }
    let txs = [px[0][16], px[1][16]];
    let tws = [pw[0][16], pw[1][16]];
    let (p2, m2) = (X_P[2], X_M[2]);
    let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
    let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
    let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
    let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
    let mut best_score = -f32::MAX;
    let mut best = None;
    for i1 in 0..=16 {
        for i2 in i1..=16 {
            let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) = ([0f32; 2], [0f32; 2], [0f32; 2], [0f32; 2]);
            for h in 0..2 {
                let sx = px[h][i1] + px[h][i2];
                qx_p[h] = txs[h] * p2 - sx;
                qx_m[h] = txs[h] * m2 - sx;
                q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
            }
            let sumqx = [qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1], qx_m[0] + qx_m[1]];
            let sumq2 = [q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1], q2_m[0] + q2_m[1]];
            for k in 0..4 {
                if sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                    let scale = sumqx[k] / sumq2[k];
                    best_score = scale * sumqx[k];
                    best = Some((i1, i2, k, scale));
                }
            }
        }
    }
    best
}

/// [`best_split`] with eight `i2` at a time in SIMD lanes, exact as `iq1_s`'s
/// `best_split_fast` is: lanes compute the reference's candidates, and only a chunk holding one
/// that beats the current best is walked, in the reference's order.
#[inline(always)]
fn best_split_fast(xb: &[f32], weight: &[f32; 16], idx: &[usize; 16]) -> Option<(usize, usize, usize, f32)> {
    let mut px = [[0f32; 17 + L]; 2];
    let mut pw = [[0f32; 17 + L]; 2];
    for (j, &i) in idx.iter().enumerate() {
        let h = usize::from(i >= 8);
        px[h][j + 1] = px[h][j] + weight[i] * xb[i];
        px[1 - h][j + 1] = px[1 - h][j];
        pw[h][j + 1] = pw[h][j] + weight[i];
        pw[1 - h][j + 1] = pw[1 - h][j];
    }
    let txs = [px[0][16], px[1][16]];
    let tws = [pw[0][16], pw[1][16]];
    let (p2, m2) = (X_P[2], X_M[2]);
    let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
    let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
    let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
    let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
    let mut best_score = -f32::MAX;
    let mut best = None;
    for i1 in 0..=16 {
        for c in (i1..=16).step_by(L) {
            let n = (17 - c).min(L);
            let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) =
                ([[0f32; L]; 2], [[0f32; L]; 2], [[0f32; L]; 2], [[0f32; L]; 2]);
            for h in 0..2 {
                for k in 0..L {
                    let i2 = c + k;
                    let sx = px[h][i1] + px[h][i2];
                    qx_p[h][k] = txs[h] * p2 - sx;
                    qx_m[h][k] = txs[h] * m2 - sx;
                    q2_p[h][k] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                    q2_m[h][k] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                }
            }
            let mut sumqx = [[0f32; L]; 4];
            let mut sumq2 = [[0f32; L]; 4];
            for k in 0..L {
                sumqx[0][k] = qx_p[0][k] + qx_p[1][k];
                sumqx[1][k] = qx_p[0][k] + qx_m[1][k];
                sumqx[2][k] = qx_m[0][k] + qx_p[1][k];
                sumqx[3][k] = qx_m[0][k] + qx_m[1][k];
                sumq2[0][k] = q2_p[0][k] + q2_p[1][k];
                sumq2[1][k] = q2_p[0][k] + q2_m[1][k];
                sumq2[2][k] = q2_m[0][k] + q2_p[1][k];
                sumq2[3][k] = q2_m[0][k] + q2_m[1][k];
            }
            let mut hit = false;
            for s in 0..4 {
                for k in 0..L {
                    hit |= (k < n) & (sumq2[s][k] > 0.0) & (sumqx[s][k] * sumqx[s][k] > best_score * sumq2[s][k]);
                }
            }
            if !hit {
                continue;
            }
            for k in 0..n {
                for s in 0..4 {
                    if sumq2[s][k] > 0.0 && sumqx[s][k] * sumqx[s][k] > best_score * sumq2[s][k] {
                        let scale = sumqx[s][k] / sumq2[s][k];
                        best_score = scale * sumqx[s][k];
                        best = Some((i1, c + k, s, scale));
                    }
                }
            }
        }
    }
    best
}

/// `quantize_row_iq1_m_impl` for one super-block of 256, with its 256 weights or without.
fn super_block<const FAST: bool>(grid: &Grid, xbl: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    out.fill(0);
    let mut scales = [0f32; 16];
    let mut shifts = [0usize; 16];
    let mut max_scale = 0.0f32;
    let sigma2 = 2.0 * ggml::sum_sq(xbl) / 256.0;
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight = weights(xb, qw.map(|w| &w[16 * ib..16 * ib + 16]), sigma2);
        if max_abs(xb) < GROUP_MAX_EPS_IQ1_M {
            continue;
        }
        let idx = sorted_indices::<16>(xb);
        let split = if FAST { best_split_fast(xb, &weight, &idx) } else { best_split(xb, &weight, &idx) };
        let Some((i1, i2, mut best_k, mut scale)) = split else {
            continue;
        };
        let mut l = [0i8; 16];
        split_levels(&idx, i1, i2, &mut l);
        if scale < 0.0 {
            for v in &mut l {
                *v = 2 - *v;
            }
            scale = -scale;
            best_k = 3 - best_k;
        }
        let mut index = [0usize; 2];
        let mut all_on_grid = true;
        for k in 0..2 {
            let g = 8 * k..8 * k + 8;
            index[k] = match grid.lookup(pattern(&l[g.clone()])) {
                Lookup::OnGrid(i) => i,
                Lookup::Neighbours(nb) => {
                    all_on_grid = false;
                    let xx = shift_values(k, best_k);
                    grid.neighbour_iq1::<FAST>(nb, &xb[g.clone()], &weight[g.clone()], scale, xx, &mut l[g])
                }
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for k in 0..2 {
                let xx = shift_values(k, best_k);
                for (j, &lv) in grid.levels(index[k]).iter().enumerate() {
                    let w = weight[8 * k + j];
                    let q = xx[usize::from(lv)];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        out[2 * ib] = index[0] as u8;
        out[2 * ib + 1] = index[1] as u8;
        out[32 + ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
        scales[ib] = scale;
        shifts[ib] = best_k;
        max_scale = max_f(max_scale, scale);
    }
    if max_scale != 0.0 {
        finish_scales(grid, xbl, qw, sigma2, max_scale, &scales, &shifts, out);
    }
}

/// The super-block step: 3-bit sub-block scales against `max_scale/15`, the shift bits, then
/// the super-block scale refitted to the whole block's quants, stored as f16 in the scales'
/// top nibbles.
#[expect(clippy::too_many_arguments, reason = "the super-block's state, as ggml's loop has it")]
fn finish_scales(
    grid: &Grid,
    xbl: &[f32],
    qw: Option<&[f32]>,
    sigma2: f32,
    max_scale: f32,
    scales: &[f32; 16],
    shifts: &[usize; 16],
    out: &mut [u8],
) {
    let mut sc = [0u16; 4];
    let mut d = max_scale / 15.0;
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
        sc[ib / 4] |= (l as u16) << (3 * (ib % 4));
        out[32 + ib] |= MASKS[shifts[ib]];
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight = weights(xb, qw.map(|w| &w[16 * ib..16 * ib + 16]), sigma2);
        let qh = usize::from(out[32 + ib]);
        for k in 0..2 {
            let xx = shift_values(k, shifts[ib]);
            let index = usize::from(out[2 * ib + k]) + ((qh << (8 - 4 * k)) & 0x700);
            for (j, &lv) in grid.levels(index).iter().enumerate() {
                let w = weight[8 * k + j];
                let q = xx[usize::from(lv)] * (2 * l + 1) as f32;
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
    }
    if sumq2 > 0.0 {
        d = sumqx / sumq2;
    }
    let s = ggml::f16(d * 1.1125);
    sc[0] |= (s & 0x000F) << 12;
    sc[1] |= (s & 0x00F0) << 8;
    sc[2] |= (s & 0x0F00) << 4;
    sc[3] |= s & 0xF000;
    for (o, v) in out[48..].chunks_exact_mut(2).zip(&sc) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// `quantize_iq1_m` (ggml has no `_ref` of its own for IQ1_M: without weights it is `quantize_iq1_m` with none).
impl SuperBlockSearch for Iq1M {
    const SEARCHED: GgmlType = GgmlType::IQ1_M;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        super_block::<FAST>(Grid::get(GridKind::Iq1S), x, w, out);
    }
}
