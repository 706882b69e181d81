//! Q5_0 — 32 values in 22 bytes: f16 `d`, u32 of fifth bits, 16 bytes of nibbles
//! (`quantize_row_q5_0_ref`).

use kiln_core::ggml_type::GgmlType;

use super::lanes::{SimdWeighted, absmax32, dispatch_weighted};
use super::legacy::{self, LaneBlock};
use super::q4_0::{first_with_abs, weighted_blocks};
use super::{BlockFormat, ggml};

/// Q5_0.
pub struct Q5_0;

fn pack(q: &[u8; 32], d: f32, out: &mut [u8]) {
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    let mut qh = 0u32;
    for j in 0..16 {
        out[6 + j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
        qh |= u32::from((q[j] & 0x10) >> 4) << j;
        qh |= u32::from((q[j + 16] & 0x10) >> 4) << (j + 16);
    }
    out[2..6].copy_from_slice(&qh.to_le_bytes());
}

impl BlockFormat for Q5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (max, _) = ggml::argabsmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0u8; 32];
        for (qi, &v) in q.iter_mut().zip(x) {
            // (int8_t)(x*id + 16.5f), MIN(31, ·); only the low five bits are stored.
            *qi = (ggml::cvt(v * id + 16.5) as i8).min(31) as u8;
        }
        pack(&q, d, out);
    }

    /// Element-parallel within each block (see Q8_0).
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// `quantize_row_q5_0_impl`: Q4_0's weighted search with 16 levels each side.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        weighted_blocks(16, x, w, false, |b, l, d| pack(l, d, &mut out[22 * b..][..22]));
        true
    }

    /// Eight blocks at a time in SIMD lanes.
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
        weighted_blocks(16, x, w, true, |b, l, d| pack(l, d, &mut out[22 * b..][..22]));
    }
}

impl LaneBlock for Q5_0 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let (amax, finite) = absmax32(xa);
        let d = first_with_abs(xa, amax) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !finite || !id.is_finite() {
            return false;
        }
        let mut q = [0u8; 32];
        for i in 0..32 {
            let v = (xa[i] * id + 16.5) as i32;
            q[i] = if v > 31 { 31 } else { v as u8 };
        }
        pack(&q, d, ob);
        true
    }
}
