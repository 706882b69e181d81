//! BF16: the top 16 bits of each f32, rounded to nearest even (`ggml_fp32_to_bf16_row_ref`).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// BF16.
pub struct Bf16;

impl BlockFormat for Bf16 {
    const TYPE: GgmlType = GgmlType::BF16;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        out.copy_from_slice(&ggml::bf16(x[0]).to_le_bytes());
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        for (v, o) in x.iter().zip(out.chunks_exact_mut(2)) {
            o.copy_from_slice(&ggml::bf16(*v).to_le_bytes());
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
