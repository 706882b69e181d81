//! MXFP4 — 32 values in 17 bytes: an E8M0 exponent byte `e`, 16 bytes of E2M1 nibbles (value
//! `j` low, `j + 16` high) from [`KVALUES_FP4`] (`quantize_row_mxfp4_ref`; `quantize_mxfp4`
//! ignores the weights).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// MXFP4.
pub struct Mxfp4;

/// ggml's `kvalues_fp4`: the E2M1 values, doubled (shared with NVFP4).
pub(super) const KVALUES_FP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// `best_index_mxfp4(x, e)`: the first code whose `value·e` is nearest `x`.
#[inline(always)]
pub(super) fn best_index_fp4(x: f32, e: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = (f32::from(KVALUES_FP4[0]) * e - x).abs();
    for i in 1..16 {
        let err = (f32::from(KVALUES_FP4[i]) * e - x).abs();
        if err < best_err {
            best = i as u8;
            best_err = err;
        }
    }
    best
}

/// `ggml_e8m0_to_fp32_half`: `2^(x − 128)`, the two smallest as subnormals.
#[inline(always)]
fn e8m0_half(x: u8) -> f32 {
    f32::from_bits(if x < 2 { 0x0020_0000 << x } else { u32::from(x - 1) << 23 })
}

impl BlockFormat for Mxfp4 {
    const TYPE: GgmlType = GgmlType::MXFP4;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (_, amax) = ggml::argabsmax(x);
        // (uint8_t)(floorf(log2f(amax)) - 2 + 127): the float sum converted through x86's int.
        // `f32::log2` is the C library's `log2f`, as in ggml.
        let e = if amax > 0.0 { ggml::cvt(amax.log2().floor() - 2.0 + 127.0) as u8 } else { 0 };
        let d = e8m0_half(e);
        out[0] = e;
        for j in 0..16 {
            out[1 + j] = best_index_fp4(x[j], d) | (best_index_fp4(x[j + 16], d) << 4);
        }
    }

    /// `quantize_mxfp4` ignores `quant_weights`: the plain bytes.
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
