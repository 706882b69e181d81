//! Q5_1 — 32 values in 24 bytes: f16 `d`, f16 `m`, u32 of fifth bits, 16 bytes of nibbles
//! (`quantize_row_q5_1_ref`; no clamp, as in the reference).

use kiln_core::ggml_type::GgmlType;

use super::lanes::{SimdWeighted, dispatch_weighted};
use super::legacy::{self, LaneBlock};
use super::q4_1::{min_max, min_max_fast, weighted_blocks};
use super::{BlockFormat, ggml};

/// Q5_1.
pub struct Q5_1;

fn pack(q: &[u8; 32], d: f32, min: f32, out: &mut [u8]) {
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    out[2..4].copy_from_slice(&ggml::f16(min).to_le_bytes());
    let mut qh = 0u32;
    for j in 0..16 {
        out[8 + j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
        qh |= u32::from((q[j] & 0x10) >> 4) << j;
        qh |= u32::from((q[j + 16] & 0x10) >> 4) << (j + 16);
    }
    out[4..8].copy_from_slice(&qh.to_le_bytes());
}

impl BlockFormat for Q5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0u8; 32];
        for (qi, &v) in q.iter_mut().zip(x) {
            *qi = ggml::cvt((v - min) * id + 0.5) as u8;
        }
        pack(&q, d, min, out);
    }

    /// Element-parallel within each block; order-sensitive blocks take the reference path.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// `quantize_row_q5_1_impl`: Q4_1's weighted search with 32 levels.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        weighted_blocks(31, x, w, false, |b, l, d, min| pack(l, d, -min, &mut out[24 * b..][..24]));
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
        weighted_blocks(31, x, w, true, |b, l, d, min| pack(l, d, -min, &mut out[24 * b..][..24]));
    }
}

impl LaneBlock for Q5_1 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let Some((min, max)) = min_max_fast(xa) else { return false };
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !id.is_finite() || !(max - min).is_finite() {
            return false;
        }
        let mut q = [0u8; 32];
        for i in 0..32 {
            q[i] = ((xa[i] - min) * id + 0.5) as i32 as u8;
        }
        pack(&q, d, min, ob);
        true
    }
}
