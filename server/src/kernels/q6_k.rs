//! Q6_K — 256 values (16 sub-blocks of 16) in 210 bytes: 128 bytes of low nibbles, 64 bytes of
//! high 2-bit pairs, 16 × i8 scales, f16 `d` (`quantize_row_q6_K_ref`).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::{self, GROUP_MAX_EPS, make_qx_quants, make_qx_quants_w, nearest_int};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::qx_lanes::{load16, make_qx_quants_w_x8, make_qx_quants_x8};

/// Q6_K.
pub struct Q6K;

impl BlockFormat for Q6K {
    const TYPE: GgmlType = GgmlType::Q6_K;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut l = [0i8; 256];
        let mut scales = [0f32; 16];
        for j in 0..16 {
            scales[j] = make_qx_quants(32, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        }
        finish(x, &mut l, &scales, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    /// `quantize_row_q6_K_impl`: the symmetric search per sub-block weighted by the importance
    /// values themselves (ggml's σ² weighting is commented out there), then the reference's
    /// super-block step.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(210)) {
            let mut l = [0i8; 256];
            let mut scales = [0f32; 16];
            for j in 0..16 {
                let r = 16 * j..16 * j + 16;
                scales[j] = make_qx_quants_w(32, &xb[r.clone()], &qw[r.clone()], &mut l[r]);
            }
            finish(xb, &mut l, &scales, ob);
        }
        true
    }

    /// The sixteen searches in SIMD lanes, eight at a time.
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
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(210)) {
            let mut l = [0i8; 256];
            let mut scales = [0f32; 16];
            for half in 0..2 {
                let xt = load16(&xb[128 * half..]);
                let wt = load16(&qw[128 * half..]);
                let mut lt = [[0f32; 8]; 16];
                let s = make_qx_quants_w_x8(32, &xt, &wt, &mut lt);
                for k in 0..8 {
                    scales[8 * half + k] = s[k];
                    for i in 0..16 {
                        l[128 * half + 16 * k + i] = lt[i][k] as i8;
                    }
                }
            }
            finish(xb, &mut l, &scales, ob);
        }
    }
}

/// The super-block step: i8 scales, `d`, requantization, packing.
#[inline(always)]
fn finish(x: &[f32], l: &mut [i8; 256], scales: &[f32; 16], out: &mut [u8]) {
    let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
    for j in 0..16 {
        let a = scales[j].abs();
        if a > max_abs {
            max_abs = a;
            max_scale = scales[j];
        }
    }
    if max_abs < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = ggml::f16(1.0 / iscale);
    let mut sc = [0i8; 16];
    for j in 0..16 {
        sc[j] = nearest_int(iscale * scales[j]).min(127) as i8;
    }
    let df = ggml::f16f(d);
    for j in 0..16 {
        let dj = df * f32::from(sc[j]);
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as i8;
        }
    }
    for h in 0..2 {
        for i in 0..32 {
            let b = 128 * h + i;
            let q = [l[b] as u8, l[b + 32] as u8, l[b + 64] as u8, l[b + 96] as u8];
            out[64 * h + i] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
            out[64 * h + 32 + i] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
            out[128 + 32 * h + i] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
        }
    }
    for (o, s) in out[192..208].iter_mut().zip(sc) {
        *o = s as u8;
    }
    out[208..210].copy_from_slice(&d.to_le_bytes());
}

/// The fast path's body, compiled once plainly and once for AVX2 by [`dispatch`].
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(210)) {
            let mut l = [0i8; 256];
            let mut scales = [0f32; 16];
            for half in 0..2 {
                let xt = load16(&xb[128 * half..]);
                let mut lt = [[0f32; 8]; 16];
                let s = make_qx_quants_x8(32, &xt, &mut lt);
                for k in 0..8 {
                    scales[8 * half + k] = s[k];
                    for i in 0..16 {
                        l[128 * half + 16 * k + i] = lt[i][k] as i8;
                    }
                }
            }
            finish(xb, &mut l, &scales, ob);
        }
    }
}
