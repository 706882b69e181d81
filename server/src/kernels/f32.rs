//! F32: the values as they are, little-endian (a copy; listed so that every type kiln writes
//! goes through the one format table).

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;

/// F32.
pub struct F32;

impl BlockFormat for F32 {
    const TYPE: GgmlType = GgmlType::F32;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        for (v, o) in x.iter().zip(out.chunks_exact_mut(4)) {
            o.copy_from_slice(&v.to_le_bytes());
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
