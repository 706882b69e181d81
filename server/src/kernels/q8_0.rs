//! Q8_0 — 32 values in 34 bytes: f16 `d`, 32 × i8 (`quantize_row_q8_0_ref`).
//! The one format that rounds half away from zero (C `roundf`).

use kiln_core::ggml_type::GgmlType;

use super::lanes::absmax32;
use super::legacy::{self, LaneBlock};
use super::{BlockFormat, ggml};

/// Q8_0.
pub struct Q8_0;

impl BlockFormat for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut amax = 0.0f32;
        for &v in x {
            let a = v.abs();
            // ggml's MAX(amax, a)
            amax = if amax > a { amax } else { a };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        for (o, &v) in out[2..].iter_mut().zip(x) {
            *o = ggml::cvt((v * id).round()) as u8;
        }
    }

    /// Element-parallel within each block: the max is order-independent and every other step is
    /// per value. Blocks with non-finite values or an overflowing `1/d` take the reference path.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// ggml's `quantize_q8_0` ignores `quant_weights`: the plain bytes.
    fn quantize_row_weighted_ref(x: &[f32], _w: &[f32], out: &mut [u8]) -> bool {
        for (xb, ob) in x.chunks_exact(Self::BLOCK_ELEMS).zip(out.chunks_exact_mut(Self::BLOCK_BYTES)) {
            Self::quantize_block(xb, ob);
        }
        true
    }

    fn quantize_row_weighted(x: &[f32], _w: &[f32], out: &mut [u8]) -> bool {
        Self::quantize_blocks(x, out);
        true
    }
}

impl LaneBlock for Q8_0 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let (amax, finite) = absmax32(xa);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !finite || !id.is_finite() {
            return false;
        }
        let mut q = [0u8; 32];
        for i in 0..32 {
            let v = xa[i] * id;
            // roundf: half away from zero; |v| <= 127 so the truncation is exact.
            let t = v.trunc();
            let r = if (v - t).abs() >= 0.5 { t + 1.0f32.copysign(v) } else { t };
            q[i] = r as i32 as u8;
        }
        ob[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        ob[2..].copy_from_slice(&q);
        true
    }
}
