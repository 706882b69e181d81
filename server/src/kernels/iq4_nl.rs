//! IQ4_NL — 32 values in 18 bytes: f16 `d`, 16 bytes of nibbles indexing the non-linear grid
//! [`KVALUES`] (`quantize_iq4_nl`, which `ggml_quantize_chunk` calls with or without weights:
//! `quantize_row_iq4_nl_impl` with `ntry = 7`, not `quantize_row_iq4_nl_ref`'s `ntry = -1`).
//!
//! The per-block search ([`block_scale`]) and the index lookup ([`best_index`]) are shared with
//! IQ4_XS, which runs the same impl over 32-value sub-blocks of a 256-value super-block.
//!
//! The fast path ([`block_scale_lanes`]) runs the search's 16 candidate scales in 16 lanes (each
//! lane's sums in the reference's order) and finds a level by counting the midpoints at or
//! below the value, which is exactly what the binary search returns ([`MIDS`]).

use kiln_core::ggml_type::GgmlType;

use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::{BlockFormat, ggml};

/// IQ4_NL.
pub struct Iq4Nl;

/// ggml's `kvalues_iq4nl`: the 16 levels a nibble stands for.
pub(super) const KVALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The `ntry` every file quantizer passes to `quantize_row_iq4_nl_impl`.
const NTRY: i32 = 7;

/// `best_index_int8(16, kvalues_iq4nl, x)`: the nearest level by binary search, ties (as the
/// float subtractions see them) to the upper one.
#[inline(always)]
pub(super) fn best_index(x: f32) -> u8 {
    let v = |i: usize| f32::from(KVALUES[i]);
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < v(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - v(mu - 1) < v(mu) - x { (mu - 1) as u8 } else { mu as u8 }
}

/// The weighted sums of one candidate inverse scale: `(Σ w·q·x, Σ w·q²)` with `q` the level
/// nearest `id·x`.
#[inline(always)]
fn sums(id: f32, xb: &[f32], weight: &[f32]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (&x, &w) in xb.iter().zip(weight) {
        let q = f32::from(KVALUES[usize::from(best_index(id * x))]);
        sumqx += w * q * x;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// One block's scale search of `quantize_row_iq4_nl_impl` (`ntry = 7`): from `-max/-127`, then
/// the 15 inverse scales `(itry − 127)/max`, keeping the best weighted fit. `0.0` when the block's
/// largest magnitude is below `GROUP_MAX_EPS`. The levels it finds are recomputed by the callers
/// from the final scale, so only the scale is returned.
pub(super) fn block_scale(xb: &[f32], weight: &[f32]) -> f32 {
    let (max, amax) = ggml::argabsmax(xb);
    if amax < ggml::GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = f32::from(KVALUES[0]);
    let d = -max / v0;
    let (sumqx, sumq2) = sums(1.0 / d, xb, weight);
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + i32::from(KVALUES[0])) as f32 / max;
        let (sumqx, sumq2) = sums(id, xb, weight);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// The midpoints between consecutive levels. `best_index(x)` is the number of them `≤ x`
/// (15 for NaN): the search's tie test `x − v[i] < v[i+1] − x` is monotone in `x`, and near a
/// midpoint both differences are exact (the levels are integers, the half-gaps at most 12 and
/// every midpoint's magnitude at least 4.5), so it flips exactly at `(v[i] + v[i+1]) / 2`.
pub(super) const MIDS: [f32; 15] = {
    let mut m = [0f32; 15];
    let mut i = 0;
    while i < 15 {
        m[i] = (KVALUES[i] as f32 + KVALUES[i + 1] as f32) / 2.0;
        i += 1;
    }
    m
};

/// The gaps between consecutive levels.
const GAPS: [f32; 15] = {
    let mut g = [0f32; 15];
    let mut i = 0;
    while i < 15 {
        g[i] = (KVALUES[i + 1] - KVALUES[i]) as f32;
        i += 1;
    }
    g
};

/// The level [`best_index`] picks for `x`, branch-free: the lowest level plus the gaps of the
/// midpoints `≤ x` (integer sums, exact), the highest for NaN.
#[inline(always)]
fn level_by_mids(x: f32) -> f32 {
    let mut q = f32::from(KVALUES[0]);
    for i in 0..15 {
        q += if x >= MIDS[i] { GAPS[i] } else { 0.0 };
    }
    if x.is_nan() { f32::from(KVALUES[15]) } else { q }
}

/// [`best_index`] branch-free: the midpoints `≤ x`, 15 for NaN.
#[inline(always)]
fn index_by_mids(x: f32) -> u8 {
    let mut n = 0u8;
    for m in MIDS {
        n += u8::from(x >= m);
    }
    if x.is_nan() { 15 } else { n }
}

/// [`block_scale`] with its 16 candidate inverse scales (the first from `-max/-127`, then
/// `itry = -7..=7`) in 16 lanes: every lane's sums in the reference's order, then the
/// reference's sequence of comparisons over the lanes' sums.
#[inline(always)]
pub(super) fn block_scale_lanes(xb: &[f32], weight: &[f32]) -> f32 {
    let (max, amax) = ggml::argabsmax(xb);
    if amax < ggml::GROUP_MAX_EPS {
        return 0.0;
    }
    let mut ids = [0f32; 16];
    ids[0] = 1.0 / (-max / f32::from(KVALUES[0]));
    for t in 1..16 {
        let itry = t as i32 - 1 - NTRY;
        ids[t] = (itry + i32::from(KVALUES[0])) as f32 / max;
    }
    let (mut sumqx, mut sumq2) = ([0f32; 16], [0f32; 16]);
    for (&x, &w) in xb.iter().zip(weight) {
        for t in 0..16 {
            let q = level_by_mids(ids[t] * x);
            let wq = w * q;
            sumqx[t] += wq * x;
            sumq2[t] += wq * q;
        }
    }
    let mut d = if sumq2[0] > 0.0 { sumqx[0] / sumq2[0] } else { 0.0 };
    let mut best = d * sumqx[0];
    for t in 1..16 {
        if sumq2[t] > 0.0 && sumqx[t] * sumqx[t] > best * sumq2[t] {
            d = sumqx[t] / sumq2[t];
            best = d * sumqx[t];
        }
    }
    d
}

/// The nibbles of 32 values at inverse scale `id`, by the reference's binary search or
/// branch-free.
#[inline(always)]
pub(super) fn levels32<const FAST: bool>(id: f32, xb: &[f32]) -> [u8; 32] {
    std::array::from_fn(|j| if FAST { index_by_mids(id * xb[j]) } else { best_index(id * xb[j]) })
}

/// The impl's weights: `qw·sqrt(σ² + x²)` with an importance vector, `x²` without one. `sigma2`
/// is `2/n · Σx²` over the impl's super-block (the block itself for IQ4_NL).
#[inline(always)]
pub(super) fn weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, weight: &mut [f32]) {
    match qw {
        Some(qw) => {
            for ((w, &q), &x) in weight.iter_mut().zip(qw).zip(xb) {
                *w = ggml::importance(q, sigma2, x);
            }
        }
        None => {
            for (w, &x) in weight.iter_mut().zip(xb) {
                *w = x * x;
            }
        }
    }
}

/// `sigma2` of the impl: `Σx²` in index order, times `2/n`.
#[inline(always)]
pub(super) fn sigma2(x: &[f32]) -> f32 {
    ggml::sum_sq(x) * (2.0 / x.len() as f32)
}

/// Nibbles of a 32-value group: value `j` low, value `j + 16` high.
#[inline(always)]
pub(super) fn pack32(l: &[u8], out: &mut [u8]) {
    for j in 0..16 {
        out[j] = l[j] | (l[j + 16] << 4);
    }
}

/// One IQ4_NL block, with importance weights `qw` or without; `FAST` picks the lane search.
#[inline(always)]
fn quantize<const FAST: bool>(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let mut weight = [0f32; 32];
    weights(x, qw, sigma2(x), &mut weight);
    let d = if FAST { block_scale_lanes(x, &weight) } else { block_scale(x, &weight) };
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    pack32(&levels32::<FAST>(id, x), &mut out[2..]);
}

/// The fast path's bodies, compiled once plainly and once per SIMD level.
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(18)) {
            quantize::<true>(xb, None, ob);
        }
    }
}

impl SimdWeighted for Fast {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        for ((xb, qw), ob) in x.chunks_exact(32).zip(w.chunks_exact(32)).zip(out.chunks_exact_mut(18)) {
            quantize::<true>(xb, Some(qw), ob);
        }
    }
}

impl BlockFormat for Iq4Nl {
    const TYPE: GgmlType = GgmlType::IQ4_NL;

    /// `quantize_iq4_nl` with `quant_weights` NULL: weights `x²`.
    fn quantize_block(x: &[f32], out: &mut [u8]) {
        quantize::<false>(x, None, out);
    }

    /// The 16 candidate scales of each block in lanes.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    /// `quantize_iq4_nl` with weights: per block, `qw·sqrt(σ² + x²)` with σ² from the block.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        for ((xb, qw), ob) in x.chunks_exact(32).zip(w.chunks_exact(32)).zip(out.chunks_exact_mut(18)) {
            quantize::<false>(xb, Some(qw), ob);
        }
        true
    }

    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<Fast>(x, w, out);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_is_the_nearest_level() {
        assert_eq!(best_index(-1000.0), 0);
        assert_eq!(best_index(1000.0), 15);
        assert_eq!(best_index(0.0), 8);
        assert_eq!(best_index(-4.6), 7);
        // Ties (-4.5 between -10 and 1, 7 between 1 and 13) go up.
        assert_eq!(best_index(-4.5), 8);
        assert_eq!(best_index(7.0), 9);
        assert_eq!(best_index(f32::NAN), 15);
        for (i, &v) in KVALUES.iter().enumerate() {
            assert_eq!(usize::from(best_index(f32::from(v))), i);
        }
    }

    /// The midpoint count is the binary search: every f32 from -256 to 256 at and around each
    /// midpoint and level, a sweep of 2^24 values between, infinities and NaN.
    #[test]
    fn midpoints_give_the_binary_search() {
        let check = |x: f32| {
            let i = best_index(x);
            assert_eq!(index_by_mids(x), i, "{x:e}");
            assert_eq!(level_by_mids(x), f32::from(KVALUES[usize::from(i)]), "{x:e}");
        };
        for p in MIDS.iter().chain(&KVALUES.map(f32::from)).copied() {
            for s in [p, -p] {
                let b = s.to_bits();
                for k in 0..4096 {
                    check(f32::from_bits(b + k));
                    check(f32::from_bits(b.wrapping_sub(k)));
                }
            }
        }
        for k in 0..(1u32 << 24) {
            check(-256.0 + 512.0 * (k as f32 / (1u32 << 24) as f32));
        }
        for x in [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-45, 3e38, -3e38] {
            check(x);
        }
    }
}
