//! Q3_K — 256 values (16 sub-blocks of 16) in 110 bytes: 32 bytes of high bits, 64 bytes of
//! 2-bit quants, 12 bytes of 6-bit scales, f16 `d` (`quantize_row_q3_K_ref`).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, make_q3_quants, make_qx_quants_w, nearest_int};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::q2_k::pack_2bit;
use super::qx_lanes::{load16, make_qx_quants_w_x8};

/// Q3_K.
pub struct Q3K;

impl BlockFormat for Q3K {
    const TYPE: GgmlType = GgmlType::Q3_K;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut l = [0i8; 256];
        let mut scales = [0f32; 16];
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        }
        finish(x, &mut l, &scales, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    /// `quantize_row_q3_K_impl`, per super-block: weights `qw·sqrt(σ² + x²)` (σ² twice the
    /// super-block's mean square), the weighted symmetric search per sub-block, then the 6-bit
    /// scales from the same search over the sub-block scales, weighted by their total weights.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(110)) {
            weighted_block(xb, qw, ob);
        }
        true
    }

    /// The sixteen sub-block searches in SIMD lanes, eight at a time.
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
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(110)) {
            weighted_block_x8(xb, qw, ob);
        }
    }
}

/// [`weighted_block`] with the sub-block searches in lanes: the same bytes.
#[inline(always)]
fn weighted_block_x8(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = 2.0 * ggml::sum_sq(x) / 256.0;
    let mut weight = [0f32; 256];
    let mut sw = [0f32; 16];
    for (i, wi) in weight.iter_mut().enumerate() {
        *wi = ggml::importance(qw[i], sigma2, x[i]);
        sw[i / 16] += *wi;
    }
    let mut l = [0i8; 256];
    let mut scales = [0f32; 16];
    for half in 0..2 {
        let xt = load16(&x[128 * half..]);
        let wt = load16(&weight[128 * half..]);
        let mut lt = [[0f32; 8]; 16];
        let s = make_qx_quants_w_x8(4, &xt, &wt, &mut lt);
        for k in 0..8 {
            scales[8 * half + k] = s[k];
            for i in 0..16 {
                l[128 * half + 16 * k + i] = lt[i][k] as i8;
            }
        }
    }
    finish_weighted(x, &mut l, &scales, &sw, out);
}

/// One super-block of [`Q3K::quantize_row_weighted`].
fn weighted_block(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut l = [0i8; 256];
    let mut weight = [0f32; 16];
    let (mut scales, mut sw) = ([0f32; 16], [0f32; 16]);
    let sigma2 = 2.0 * ggml::sum_sq(x) / 256.0;
    for j in 0..16 {
        for i in 0..16 {
            weight[i] = ggml::importance(qw[16 * j + i], sigma2, x[16 * j + i]);
        }
        let mut sumw = 0.0f32;
        for &v in &weight {
            sumw += v;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants_w(4, &x[16 * j..16 * j + 16], &weight, &mut l[16 * j..][..16]);
    }
    finish_weighted(x, &mut l, &scales, &sw, out);
}

/// The weighted super-block step: 6-bit scales from the weighted search over the sub-block
/// scales, then requantization and packing.
#[inline(always)]
fn finish_weighted(x: &[f32], l: &mut [i8; 256], scales: &[f32; 16], sw: &[f32; 16], out: &mut [u8]) {
    let mut ls = [0i8; 16];
    let d_block = make_qx_quants_w(32, scales, sw, &mut ls);
    let mut sc = [0u8; 12];
    for j in 0..16 {
        let v = ls[j] as u8;
        if j < 8 {
            sc[j] = v & 0xF;
        } else {
            sc[j - 8] |= (v & 0xF) << 4;
        }
        sc[j % 4 + 8] |= (v >> 4) << (2 * (j / 4));
    }
    requantize_pack(x, l, &sc, ggml::f16(d_block), out);
}

/// The super-block step: 6-bit scales, `d`, requantization, high-bit mask, packing.
#[inline(always)]
fn finish(x: &[f32], l: &mut [i8; 256], scales: &[f32; 16], out: &mut [u8]) {
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    for j in 0..16 {
        let a = scales[j].abs();
        if a > amax {
            amax = a;
            max_scale = scales[j];
        }
    }
    let mut sc = [0u8; 12];
    let d = if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            // int8_t l = nearest_int(...): the wrap comes before the clamp.
            let v = ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                sc[j] = v & 0xF;
            } else {
                sc[j - 8] |= (v & 0xF) << 4;
            }
            sc[j % 4 + 8] |= (v >> 4) << (2 * (j / 4));
        }
        ggml::f16(1.0 / iscale)
    } else {
        ggml::f16(0.0)
    };
    requantize_pack(x, l, &sc, d, out);
}

/// The end of both paths: requantization of every sub-block whose scale is not zero against
/// the stored (f16) `d`, then the high-bit mask and the byte layout.
#[inline(always)]
fn requantize_pack(x: &[f32], l: &mut [i8; 256], sc: &[u8; 12], d: u16, out: &mut [u8]) {
    let df = ggml::f16f(d);
    for j in 0..16 {
        let low = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
        let v = i32::from(low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        let dj = df * v as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / dj).clamp(-4, 3) + 4) as i8;
        }
    }
    let mut hmask = [0u8; 32];
    let mut lu = [0u8; 256];
    for (e, (&q, u)) in l.iter().zip(lu.iter_mut()).enumerate() {
        let mut q = q as u8;
        if q > 3 {
            hmask[e % 32] |= 1 << (e / 32);
            q -= 4;
        }
        *u = q;
    }
    out[..32].copy_from_slice(&hmask);
    pack_2bit(&lu, &mut out[32..96]);
    out[96..108].copy_from_slice(sc);
    out[108..110].copy_from_slice(&d.to_le_bytes());
}

/// The fast path: the reference itself, compiled for the widest SIMD the CPU has. (Running the
/// refinement loop in lanes measured slower: most sub-blocks converge after one sweep.)
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(110)) {
            Q3K::quantize_block(xb, ob);
        }
    }
}
