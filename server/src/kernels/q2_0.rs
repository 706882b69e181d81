//! Q2_0 — 64 values in 18 bytes: f16 `d` (the largest magnitude), 16 bytes of 2-bit codes
//! `round(x/d) + 1` clamped to 0..=3, i.e. levels −d, 0, d, 2d, four to a byte, low bits first
//! (`quantize_row_q2_0_ref`; `quantize_q2_0` ignores the weights).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q2_0.
pub struct Q2_0;

impl BlockFormat for Q2_0 {
    const TYPE: GgmlType = GgmlType::Q2_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (_, d) = ggml::argabsmax(x);
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        for (byte, xs) in out[2..].iter_mut().zip(x.chunks_exact(4)) {
            let mut b = 0u8;
            for (k, &v) in xs.iter().enumerate() {
                // (int)roundf(w*id) + 1: half away from zero, x86's conversion.
                let q = ggml::cvt((v * id).round()).wrapping_add(1).clamp(0, 3);
                b |= (q as u8) << (2 * k);
            }
            *byte = b;
        }
    }

    /// `quantize_q2_0` ignores `quant_weights`: the plain bytes.
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
