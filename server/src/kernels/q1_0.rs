//! Q1_0 — 128 values in 18 bytes: f16 `d` (the mean magnitude), 16 bytes of sign bits, bit set
//! for `x ≥ 0` (`quantize_row_q1_0_ref`; `quantize_q1_0` ignores the weights).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q1_0.
pub struct Q1_0;

impl BlockFormat for Q1_0 {
    const TYPE: GgmlType = GgmlType::Q1_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut sum_abs = 0.0f32;
        for &v in x {
            sum_abs += v.abs();
        }
        out[..2].copy_from_slice(&ggml::f16(sum_abs / 128.0).to_le_bytes());
        for (byte, xs) in out[2..].iter_mut().zip(x.chunks_exact(8)) {
            // -0.0 counts as non-negative, NaN does not.
            *byte = xs.iter().enumerate().fold(0u8, |b, (k, &v)| b | (u8::from(v >= 0.0) << k));
        }
    }

    /// `quantize_q1_0` ignores `quant_weights`: the plain bytes.
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
