//! F16: IEEE binary16 per value (`ggml_fp32_to_fp16_row`), round to nearest even.

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// F16.
pub struct F16;

impl BlockFormat for F16 {
    const TYPE: GgmlType = GgmlType::F16;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        out.copy_from_slice(&ggml::f16(x[0]).to_le_bytes());
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        for (v, o) in x.iter().zip(out.chunks_exact_mut(2)) {
            o.copy_from_slice(&ggml::f16(*v).to_le_bytes());
        }
    }

    /// `ggml_quantize_chunk` converts float types without looking at `quant_weights`.
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
