//! IQ1_S — 256 values in 50 bytes: f16 `d`, 32 low bytes of 11-bit indices into the
//! 2048-point ternary grid, then per 32-value sub-block a little-endian `u16`: four times the
//! indices' high three bits, a 3-bit scale and the sign of the shift `±IQ1S_DELTA`
//! (`quantize_row_iq1_s_impl`).
//!
//! ggml quantizes IQ1_S only with importance weights, so there is no plain path
//! ([`BlockFormat::NEEDS_WEIGHTS`]).

use kiln_core::ggml_type::GgmlType;

use super::ggml::{self, nearest_int};
use super::iq2_grids::{Grid, GridKind, Lookup, max_f, pattern};
use super::lanes::{L, SuperBlockSearch};

/// IQ1_S.
pub struct Iq1S;

/// ggml's `IQ1S_DELTA` (and `IQ1M_DELTA`, the same).
pub(super) const IQ1_DELTA: f32 = 0.125;
/// The three values `-1, 0, 1` shifted by `+IQ1S_DELTA` (`x_p`) and by `-IQ1S_DELTA` (`x_m`).
pub(super) const X_P: [f32; 3] = [-1.0 + IQ1_DELTA, IQ1_DELTA, 1.0 + IQ1_DELTA];
/// See [`X_P`].
pub(super) const X_M: [f32; 3] = [-1.0 - IQ1_DELTA, -IQ1_DELTA, 1.0 - IQ1_DELTA];

/// ggml's `GROUP_MAX_EPS_IQ1_S`.
const GROUP_MAX_EPS_IQ1_S: f32 = 1e-12;

/// The indices of `xb` in ascending order of value, equal values in index order: ggml's
/// `qsort` with `iq1_sort_helper` as glibc runs it on so few elements (a merge sort, stable).
#[inline(always)]
pub(super) fn sorted_indices<const N: usize>(xb: &[f32]) -> [usize; N] {
    let mut idx: [usize; N] = std::array::from_fn(|i| i);
    idx.sort_by(|&a, &b| xb[a].partial_cmp(&xb[b]).unwrap_or(std::cmp::Ordering::Equal));
    idx
}

/// `max |x|` as ggml takes it: `MAX(max, fabsf(x))` from the first value.
#[inline(always)]
pub(super) fn max_abs(xb: &[f32]) -> f32 {
    let mut max = xb[0].abs();
    for &v in &xb[1..] {
        max = max_f(max, v.abs());
    }
    max
}

/// Levels of the split: the first `i1` values in sorted order 0, up to `i2` 1, the rest 2.
#[inline(always)]
pub(super) fn split_levels(idx: &[usize], i1: usize, i2: usize, l: &mut [i8]) {
    for (j, &i) in idx.iter().enumerate() {
        l[i] = if j < i1 {
            0
        } else if j < i2 {
            1
        } else {
            2
        };
    }
}

/// The exhaustive split search of one sub-block of 32: `(i1, i2, shift, scale)` of the best
/// weighted fit, or `None` when no split has a positive `Σw·q²`.
fn best_split(xb: &[f32], weight: &[f32; 32], idx: &[usize; 32]) -> Option<(usize, usize, i32, f32)> {
    let mut sumx = [0f32; 33];
    let mut sumw = [0f32; 33];
    for (j, &i) in idx.iter().enumerate() {
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
    }
    let mut best_score = -f32::MAX;
    let mut best = None;
    for i1 in 0..=32 {
        for i2 in i1..=32 {
            for (shift, xs) in [(1, &X_P), (-1, &X_M)] {
                let sumqx =
                    (sumx[i1] - sumx[0]) * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (sumx[32] - sumx[i2]) * xs[2];
                let sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0]
                    + (sumw[i2] - sumw[i1]) * xs[1] * xs[1]
                    + (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                    let scale = sumqx / sumq2;
                    best_score = scale * sumqx;
                    best = Some((i1, i2, shift, scale));
                }
            }
        }
    }
    best
}

/// [`best_split`] with eight `i2` at a time in SIMD lanes: each lane computes its candidates
/// by the reference's operations; a chunk where no candidate beats the current best (as the
/// reference tests it) cannot change it, and a chunk where one does is walked in the
/// reference's order. So the same split, shift and scale.
#[inline(always)]
fn best_split_fast(xb: &[f32], weight: &[f32; 32], idx: &[usize; 32]) -> Option<(usize, usize, i32, f32)> {
    // Padded past 32 so that every chunk loads whole lanes; padding lanes are never taken.
    let mut sumx = [0f32; 33 + L];
    let mut sumw = [0f32; 33 + L];
    for (j, &i) in idx.iter().enumerate() {
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
    }
    let (tx, tw) = (sumx[32], sumw[32]);
    let mut best_score = -f32::MAX;
    let mut best = None;
    for i1 in 0..=32 {
        let (ax, aw) = (sumx[i1] - sumx[0], sumw[i1] - sumw[0]);
        for c in (i1..=32).step_by(L) {
            let n = (33 - c).min(L);
            let mut qx = [[0f32; L]; 2];
            let mut q2 = [[0f32; L]; 2];
            for (s, xs) in [&X_P, &X_M].into_iter().enumerate() {
                for k in 0..L {
                    let i2 = c + k;
                    qx[s][k] = ax * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (tx - sumx[i2]) * xs[2];
                    q2[s][k] =
                        aw * xs[0] * xs[0] + (sumw[i2] - sumw[i1]) * xs[1] * xs[1] + (tw - sumw[i2]) * xs[2] * xs[2];
                }
            }
            let mut hit = false;
            for s in 0..2 {
                for k in 0..L {
                    hit |= (k < n) & (q2[s][k] > 0.0) & (qx[s][k] * qx[s][k] > best_score * q2[s][k]);
                }
            }
            if !hit {
                continue;
            }
            for k in 0..n {
                for (s, shift) in [(0, 1), (1, -1)] {
                    if q2[s][k] > 0.0 && qx[s][k] * qx[s][k] > best_score * q2[s][k] {
                        let scale = qx[s][k] / q2[s][k];
                        best_score = scale * qx[s][k];
                        best = Some((i1, c + k, shift, scale));
                    }
                }
            }
        }
    }
    best
}

/// `quantize_row_iq1_s_impl` for one super-block of 256 with its 256 weights.
fn super_block<const FAST: bool>(grid: &Grid, xbl: &[f32], qw: &[f32], out: &mut [u8]) {
    out.fill(0);
    let mut scales = [0f32; 8];
    let mut shifts = [1i32; 8];
    let mut qh = [0u16; 8];
    let mut max_scale = 0.0f32;
    let sigma2 = 2.0 * ggml::sum_sq(xbl) / 256.0;
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let weight: [f32; 32] = std::array::from_fn(|i| ggml::importance(qw[32 * ib + i], sigma2, xb[i]));
        if max_abs(xb) < GROUP_MAX_EPS_IQ1_S {
            continue;
        }
        let idx = sorted_indices::<32>(xb);
        let split = if FAST { best_split_fast(xb, &weight, &idx) } else { best_split(xb, &weight, &idx) };
        let Some((i1, i2, mut shift, mut scale)) = split else {
            continue;
        };
        let mut l = [0i8; 32];
        split_levels(&idx, i1, i2, &mut l);
        if scale < 0.0 {
            for v in &mut l {
                *v = 2 - *v;
            }
            scale = -scale;
            shift = -shift;
        }
        let xx = if shift == 1 { &X_P } else { &X_M };
        let mut index = [0usize; 4];
        let mut all_on_grid = true;
        for k in 0..4 {
            let g = 8 * k..8 * k + 8;
            index[k] = match grid.lookup(pattern(&l[g.clone()])) {
                Lookup::OnGrid(i) => i,
                Lookup::Neighbours(nb) => {
                    all_on_grid = false;
                    grid.neighbour_iq1::<FAST>(nb, &xb[g.clone()], &weight[g.clone()], scale, xx, &mut l[g])
                }
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for k in 0..4 {
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
        let mut h = 0u16;
        for k in 0..4 {
            out[2 + 4 * ib + k] = index[k] as u8;
            h |= ((index[k] >> 8) << (3 * k)) as u16;
        }
        qh[ib] = h;
        scales[ib] = scale;
        shifts[ib] = shift;
        max_scale = max_f(max_scale, scale);
    }
    if max_scale != 0.0 {
        let d = max_scale / 15.0;
        out[..2].copy_from_slice(&ggml::f16(d * 1.125).to_le_bytes());
        let id = 1.0 / d;
        for ib in 0..8 {
            let mut l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
            if shifts[ib] == -1 {
                l |= 8;
            }
            qh[ib] |= (l as u16) << 12;
        }
    }
    for (o, h) in out[34..].chunks_exact_mut(2).zip(&qh) {
        o.copy_from_slice(&h.to_le_bytes());
    }
}

impl SuperBlockSearch for Iq1S {
    const SEARCHED: GgmlType = GgmlType::IQ1_S;
    const WEIGHTS_ONLY: bool = true;

    #[inline(always)]
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
        // `kernels::quantize` refuses this format without weights before it gets here.
        let Some(qw) = w else { unreachable!("IQ1_S has no plain path in ggml") };
        super_block::<FAST>(Grid::get(GridKind::Iq1S), x, qw, out);
    }
}
