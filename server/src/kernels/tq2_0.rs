//! TQ2_0 — 256 ternary values in 66 bytes: 64 bytes of four 2-bit trits each, then f16 `d`
//! (`quantize_row_tq2_0_ref`; `quantize_tq2_0` ignores the weights).

use kiln_core::ggml_type::GgmlType;

use super::tq1_0::{ternary_scale, trit};
use super::{BlockFormat, ggml};

/// TQ2_0.
pub struct Tq2_0;

impl BlockFormat for Tq2_0 {
    const TYPE: GgmlType = GgmlType::TQ2_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (d, id) = ternary_scale(x);
        // Byte 32h + m holds x[128h + m + 32n] in bits 2n..2n+2, n = 0..4.
        for h in 0..2 {
            for m in 0..32 {
                let mut q = 0i32;
                for n in 0..4 {
                    q += (trit(x[128 * h + m + 32 * n], id) & 3) << (2 * n);
                }
                out[32 * h + m] = q as u8;
            }
        }
        out[64..66].copy_from_slice(&ggml::f16(d).to_le_bytes());
    }

    /// `quantize_tq2_0` ignores `quant_weights`: the plain bytes.
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
