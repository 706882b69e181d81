//! Q4_K — 256 values (8 sub-blocks of 32) in 144 bytes: f16 `d`, f16 `dmin`, 12 bytes of 6-bit
//! scales and mins, 128 bytes of nibbles (`quantize_row_q4_K_ref`).
//!
//! The scalar path is the reference transcription; `quantize_blocks` runs the eight sub-block
//! searches of each super-block in SIMD lanes and must give the same bytes (tested on every
//! vector row and on random data).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, Qkx2, get_scale_min_k4, make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int};
use super::lanes::{L, SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::qkx2_lanes::make_qkx2_quants_x8;

/// Q4_K.
pub struct Q4K;

const PARAMS: Qkx2 = Qkx2 { nmax: 15, rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false };

/// The shared first half of Q4_K and Q5_K, scalar: per-sub-block searches, then
/// [`finish_k_scales`]. Returns `(d, dmin, scales)` and fills `l`.
pub(super) fn quantize_k_scales(p: Qkx2, x: &[f32], l: &mut [u8; 256]) -> (u16, u16, [u8; 12]) {
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(p, xs, &weights, &mut l[32 * j..32 * j + 32], &mut laux);
        scales[j] = s;
        mins[j] = m;
    }
    finish_k_scales(p, x, l, &scales, &mins)
}

/// [`quantize_k_scales`] with the eight sub-block searches in SIMD lanes: the same bytes.
#[inline(always)]
pub(super) fn quantize_k_scales_x8(p: Qkx2, x: &[f32], l: &mut [u8; 256]) -> (u16, u16, [u8; 12]) {
    let mut xt = [[0f32; L]; 32];
    for (k, sub) in x.chunks_exact(32).enumerate() {
        for (i, &v) in sub.iter().enumerate() {
            xt[i][k] = v;
        }
    }
    let mut sum_x2 = [0f32; L];
    for row in &xt {
        for k in 0..L {
            sum_x2[k] += row[k] * row[k];
        }
    }
    let av_x = sum_x2.map(|s| (s / 32.0).sqrt());
    let mut wt = [[0f32; L]; 32];
    for i in 0..32 {
        for k in 0..L {
            wt[i][k] = av_x[k] + xt[i][k].abs();
        }
    }
    let mut lt = [[0f32; L]; 32];
    let (scales, mins) = make_qkx2_quants_x8(p, &xt, &wt, &mut lt);
    for i in 0..32 {
        for k in 0..L {
            l[32 * k + i] = lt[i][k] as u8;
        }
    }
    finish_k_scales(p, x, l, &scales, &mins)
}

/// The super-block step: 6-bit scales and mins, `d`, `dmin`, and the requantization of every
/// sub-block whose quantized scale is not zero.
#[inline(always)]
fn finish_k_scales(p: Qkx2, x: &[f32], l: &mut [u8; 256], scales: &[f32; 8], mins: &[f32; 8]) -> (u16, u16, [u8; 12]) {
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut sc = [0u8; 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    let d = ggml::f16(max_scale / 63.0);
    let dmin = ggml::f16(max_min / 63.0);
    requantize(p.nmax, x, l, d, dmin, &sc);
    (d, dmin, sc)
}

/// The end of both paths: requantization of every sub-block whose quantized scale is not zero
/// against the stored (f16) `d` and `dmin`.
#[inline(always)]
fn requantize(nmax: i32, x: &[f32], l: &mut [u8; 256], d: u16, dmin: u16, sc: &[u8; 12]) {
    let (df, dminf) = (ggml::f16f(d), ggml::f16f(dmin));
    for j in 0..8 {
        let (s, m) = get_scale_min_k4(j, sc);
        let dj = df * f32::from(s);
        if dj == 0.0 {
            continue;
        }
        let dm = dminf * f32::from(m);
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, nmax) as u8;
        }
    }
}

/// The shared first half of `quantize_row_q4_K_impl` and `quantize_row_q5_K_impl` for one
/// super-block: weights `qw·sqrt(σ² + x²)` (σ² twice the super-block's mean square), the
/// weighted asymmetric search per sub-block, then the 6-bit scales and mins from
/// `make_qp_quants` weighted by each sub-block's total weight, and requantization. Q5_K clamps
/// the quantized scales to 63 (`clamp_scales`); Q4_K stores them as they come, as ggml does.
pub(super) fn quantize_k_scales_weighted(
    nmax: i32,
    clamp_scales: bool,
    x: &[f32],
    qw: &[f32],
    l: &mut [u8; 256],
) -> (u16, u16, [u8; 12]) {
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let (mut scales, mut mins, mut sw) = ([0f32; 8], [0f32; 8], [0f32; 8]);
    let sigma2 = 2.0 * ggml::sum_sq(x) / 256.0;
    for j in 0..8 {
        for i in 0..32 {
            weights[i] = ggml::importance(qw[32 * j + i], sigma2, x[32 * j + i]);
        }
        let mut sumw = 0.0f32;
        for &v in &weights {
            sumw += v;
        }
        sw[j] = sumw;
        let (s, m) =
            make_qkx3_quants(ggml::qkx3(nmax), &x[32 * j..32 * j + 32], &weights, &mut l[32 * j..][..32], &mut laux);
        scales[j] = s;
        mins[j] = m;
    }
    finish_k_scales_weighted(nmax, clamp_scales, x, l, &scales, &mins, &sw)
}

/// [`quantize_k_scales_weighted`] with the eight sub-block searches in SIMD lanes: the same
/// bytes. `make_qkx3_quants` given weights is `make_qkx2_quants` step for step (its `max <= min`
/// is `max == min` for any input, and its `nstep < 1` exit is not taken with 36 steps), so the
/// lanes of the plain path serve with qkx3's parameters.
#[inline(always)]
pub(super) fn quantize_k_scales_weighted_x8(
    nmax: i32,
    clamp_scales: bool,
    x: &[f32],
    qw: &[f32],
    l: &mut [u8; 256],
) -> (u16, u16, [u8; 12]) {
    let sigma2 = 2.0 * ggml::sum_sq(x) / 256.0;
    let mut xt = [[0f32; L]; 32];
    let mut wt = [[0f32; L]; 32];
    let mut sw = [0f32; 8];
    for k in 0..L {
        for i in 0..32 {
            let v = x[32 * k + i];
            xt[i][k] = v;
            wt[i][k] = ggml::importance(qw[32 * k + i], sigma2, v);
            sw[k] += wt[i][k];
        }
    }
    let mut lt = [[0f32; L]; 32];
    let (scales, mins) = make_qkx2_quants_x8(ggml::qkx3(nmax), &xt, &wt, &mut lt);
    for i in 0..32 {
        for k in 0..L {
            l[32 * k + i] = lt[i][k] as u8;
        }
    }
    finish_k_scales_weighted(nmax, clamp_scales, x, l, &scales, &mins, &sw)
}

/// The weighted super-block step: 6-bit scales and mins from `make_qp_quants`, `d`, `dmin`,
/// requantization.
#[inline(always)]
fn finish_k_scales_weighted(
    nmax: i32,
    clamp_scales: bool,
    x: &[f32],
    l: &mut [u8; 256],
    scales: &[f32; 8],
    mins: &[f32; 8],
    sw: &[f32; 8],
) -> (u16, u16, [u8; 12]) {
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    let d_block = make_qp_quants(63, scales, &mut ls, sw);
    let m_block = make_qp_quants(63, mins, &mut lm, sw);
    let mut sc = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = if clamp_scales { (ls[j].min(63), lm[j].min(63)) } else { (ls[j], lm[j]) };
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    let (d, dmin) = (ggml::f16(d_block), ggml::f16(m_block));
    requantize(nmax, x, l, d, dmin, &sc);
    (d, dmin, sc)
}

/// What tells Q4_K and Q5_K apart; the searches, the scale packing and the fast paths are
/// shared ([`AffineBlocks`]).
pub(super) trait AffineK {
    /// Bytes per super-block.
    const BYTES: usize;
    /// The plain search's parameters (`make_qkx2_quants`).
    const PARAMS: Qkx2;
    /// The weighted search's largest level, and whether it clamps the sub-block scales to 63
    /// (`quantize_row_q{4,5}_K_impl`).
    const WEIGHTED: (i32, bool);
    /// Writes a super-block: `d`, `dmin`, the packed scales, then the levels.
    fn pack(l: &[u8; 256], d: u16, dmin: u16, sc: &[u8; 12], out: &mut [u8]);
}

impl AffineK for Q4K {
    const BYTES: usize = 144;
    const PARAMS: Qkx2 = PARAMS;
    const WEIGHTED: (i32, bool) = (15, false);

    fn pack(l: &[u8; 256], d: u16, dmin: u16, sc: &[u8; 12], out: &mut [u8]) {
        out[..2].copy_from_slice(&d.to_le_bytes());
        out[2..4].copy_from_slice(&dmin.to_le_bytes());
        out[4..16].copy_from_slice(sc);
        for g in 0..4 {
            for i in 0..32 {
                out[16 + 32 * g + i] = l[64 * g + i] | (l[64 * g + 32 + i] << 4);
            }
        }
    }
}

/// One super-block by the plain reference search.
pub(super) fn affine_block<K: AffineK>(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let (d, dmin, sc) = quantize_k_scales(K::PARAMS, x, &mut l);
    K::pack(&l, d, dmin, &sc, out);
}

/// A row with importance weights by the reference search: see [`quantize_k_scales_weighted`].
pub(super) fn affine_weighted_ref<K: AffineK>(x: &[f32], w: &[f32], out: &mut [u8]) {
    let (nmax, clamp) = K::WEIGHTED;
    for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(K::BYTES)) {
        let mut l = [0u8; 256];
        let (d, dmin, sc) = quantize_k_scales_weighted(nmax, clamp, xb, qw, &mut l);
        K::pack(&l, d, dmin, &sc, ob);
    }
}

/// The fast paths' bodies (the searches over eight sub-blocks in lanes), compiled once plainly
/// and once for AVX2 by [`dispatch`] and [`dispatch_weighted`].
pub(super) struct AffineBlocks<K>(core::marker::PhantomData<K>);

impl<K: AffineK> SimdBody for AffineBlocks<K> {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(K::BYTES)) {
            let mut l = [0u8; 256];
            let (d, dmin, sc) = quantize_k_scales_x8(K::PARAMS, xb, &mut l);
            K::pack(&l, d, dmin, &sc, ob);
        }
    }
}

impl<K: AffineK> SimdWeighted for AffineBlocks<K> {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        let (nmax, clamp) = K::WEIGHTED;
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(K::BYTES)) {
            let mut l = [0u8; 256];
            let (d, dmin, sc) = quantize_k_scales_weighted_x8(nmax, clamp, xb, qw, &mut l);
            K::pack(&l, d, dmin, &sc, ob);
        }
    }
}

impl BlockFormat for Q4K {
    const TYPE: GgmlType = GgmlType::Q4_K;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        affine_block::<Self>(x, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<AffineBlocks<Self>>(x, out);
    }

    /// `quantize_row_q4_K_impl`: see [`quantize_k_scales_weighted`].
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        affine_weighted_ref::<Self>(x, w, out);
        true
    }

    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<AffineBlocks<Self>>(x, w, out);
        true
    }
}
