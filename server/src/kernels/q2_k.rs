//! Q2_K — 256 values (16 sub-blocks of 16) in 84 bytes: 16 scale/min nibble pairs, 64 bytes of
//! 2-bit quants, f16 `d`, f16 `dmin` (`quantize_row_q2_K_ref`).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, Qkx2, make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::qkx2_lanes::make_qkx2_quants_x8;
use super::qx_lanes::load16;

/// Q2_K.
pub struct Q2K;

const PARAMS: Qkx2 = Qkx2 { nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };

/// Packs 256 2-bit values as Q2_K/Q3_K do: byte `32h + l` holds elements `128h + l + 32k` at bits `2k`.
pub(super) fn pack_2bit(l: &[u8; 256], qs: &mut [u8]) {
    for h in 0..2 {
        for i in 0..32 {
            let b = 128 * h + i;
            qs[32 * h + i] = l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6);
        }
    }
}

impl BlockFormat for Q2K {
    const TYPE: GgmlType = GgmlType::Q2_K;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut l = [0u8; 256];
        let mut laux = [0u8; 16];
        let mut weights = [0f32; 16];
        let mut scales = [0f32; 16];
        let mut mins = [0f32; 16];
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) = make_qkx2_quants(PARAMS, xs, &weights, &mut l[16 * j..16 * j + 16], &mut laux);
            scales[j] = s;
            mins[j] = m;
        }
        finish(x, &mut l, &scales, &mins, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    /// `quantize_row_q2_K_impl`, per super-block: weights `qw·sqrt(σ² + x²)` (σ² the
    /// super-block's mean square), the weighted asymmetric search per sub-block, then the
    /// 4-bit scales and mins from `make_qp_quants` weighted by each sub-block's total weight.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(84)) {
            weighted_block(xb, qw, ob);
        }
        true
    }

    /// The sixteen sub-block searches in SIMD lanes, eight at a time (see Q4_K's
    /// `quantize_k_scales_weighted_x8` for why the plain path's lanes serve).
    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<FastWeighted>(x, w, out);
        true
    }
}

/// The weighted fast path's body, compiled once plainly and once for AVX2.
struct FastWeighted;

impl SimdWeighted for FastWeighted {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(84)) {
            weighted_block_x8(xb, qw, ob);
        }
    }
}

/// [`weighted_block`] with the searches in lanes: the same bytes.
#[inline(always)]
fn weighted_block_x8(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = ggml::sum_sq(x) / 256.0;
    let mut weight = [0f32; 256];
    let mut sw = [0f32; 16];
    for (i, wi) in weight.iter_mut().enumerate() {
        *wi = ggml::importance(qw[i], sigma2, x[i]);
        sw[i / 16] += *wi;
    }
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
    for half in 0..2 {
        let xt = load16(&x[128 * half..]);
        let wt = load16(&weight[128 * half..]);
        let mut lt = [[0f32; 8]; 16];
        let (s, m) = make_qkx2_quants_x8(ggml::qkx3(3), &xt, &wt, &mut lt);
        for k in 0..8 {
            scales[8 * half + k] = s[k];
            mins[8 * half + k] = m[k];
            for i in 0..16 {
                l[128 * half + 16 * k + i] = lt[i][k] as u8;
            }
        }
    }
    finish_weighted(x, &mut l, &scales, &mins, &sw, out);
}

/// One super-block of [`Q2K::quantize_row_weighted_ref`].
fn weighted_block(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let mut laux = [0u8; 16];
    let mut weight = [0f32; 16];
    let (mut scales, mut mins, mut sw) = ([0f32; 16], [0f32; 16], [0f32; 16]);
    let sigma2 = ggml::sum_sq(x) / 256.0;
    for j in 0..16 {
        for i in 0..16 {
            weight[i] = ggml::importance(qw[16 * j + i], sigma2, x[16 * j + i]);
        }
        for &v in &weight {
            sw[j] += v;
        }
        let (s, m) =
            make_qkx3_quants(ggml::qkx3(3), &x[16 * j..16 * j + 16], &weight, &mut l[16 * j..][..16], &mut laux);
        scales[j] = s;
        mins[j] = m;
    }
    finish_weighted(x, &mut l, &scales, &mins, &sw, out);
}

/// The weighted super-block step: 4-bit scales and mins from `make_qp_quants`, then
/// requantization and packing.
#[inline(always)]
fn finish_weighted(x: &[f32], l: &mut [u8; 256], scales: &[f32; 16], mins: &[f32; 16], sw: &[f32; 16], out: &mut [u8]) {
    let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
    let dm = make_qp_quants(15, scales, &mut ls, sw);
    let mm = make_qp_quants(15, mins, &mut lm, sw);
    let mut sc = [0u8; 16];
    for j in 0..16 {
        // uint8_t = Ls | (Lm << 4): a wrapped (negative) quant keeps only its low byte.
        sc[j] = ls[j] | ((u32::from(lm[j]) << 4) as u8);
    }
    requantize_pack(x, l, &sc, ggml::f16(dm), ggml::f16(mm), out);
}

/// The super-block step: 4-bit scales and mins, `d`, `dmin`, requantization, packing.
#[inline(always)]
fn finish(x: &[f32], l: &mut [u8; 256], scales: &[f32; 16], mins: &[f32; 16], out: &mut [u8]) {
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..16 {
        let (s, m) = (scales[j], mins[j]);
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let sc = &mut [0u8; 16];
    let d = if max_scale > 0.0 {
        let iscale = 15.0 / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        ggml::f16(max_scale / 15.0)
    } else {
        ggml::f16(0.0)
    };
    let dmin = if max_min > 0.0 {
        let iscale = 15.0 / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        ggml::f16(max_min / 15.0)
    } else {
        ggml::f16(0.0)
    };
    requantize_pack(x, l, sc, d, dmin, out);
}

/// The end of both paths: requantization of every sub-block whose scale is not zero against
/// the stored (f16) `d` and `dmin`, then the byte layout.
#[inline(always)]
fn requantize_pack(x: &[f32], l: &mut [u8; 256], sc: &[u8; 16], d: u16, dmin: u16, out: &mut [u8]) {
    let (df, dminf) = (ggml::f16f(d), ggml::f16f(dmin));
    for j in 0..16 {
        let dj = df * f32::from(sc[j] & 0xF);
        if dj == 0.0 {
            continue;
        }
        let dm = dminf * f32::from(sc[j] >> 4);
        for i in 16 * j..16 * j + 16 {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, 3) as u8;
        }
    }
    out[..16].copy_from_slice(sc);
    pack_2bit(l, &mut out[16..80]);
    out[80..82].copy_from_slice(&d.to_le_bytes());
    out[82..84].copy_from_slice(&dmin.to_le_bytes());
}

/// The fast path's body, compiled once plainly and once for AVX2 by [`dispatch`].
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(84)) {
            let mut l = [0u8; 256];
            let mut scales = [0f32; 16];
            let mut mins = [0f32; 16];
            for half in 0..2 {
                let xt = load16(&xb[128 * half..]);
                let wt = xt.map(|row| row.map(f32::abs));
                let mut lt = [[0f32; 8]; 16];
                let (s, m) = make_qkx2_quants_x8(PARAMS, &xt, &wt, &mut lt);
                for k in 0..8 {
                    scales[8 * half + k] = s[k];
                    mins[8 * half + k] = m[k];
                    for i in 0..16 {
                        l[128 * half + 16 * k + i] = lt[i][k] as u8;
                    }
                }
            }
            finish(xb, &mut l, &scales, &mins, ob);
        }
    }
}
