//! NVFP4 — 64 values in 36 bytes: four UE4M3 scale bytes (one per 16-value sub-block), 32
//! bytes of E2M1 nibbles, per sub-block value `j` low and `j + 8` high
//! (`quantize_row_nvfp4_ref`; `quantize_nvfp4` ignores the weights).

use kiln_core::ggml_type::GgmlType;

use super::mxfp4::best_index_fp4;
use super::{BlockFormat, ggml};

/// NVFP4.
pub struct Nvfp4;

/// `ggml_fp32_to_ue4m3`: unsigned E4M3 (bias 7), mantissa rounded half up, saturating at 448
/// (`0x7E`); zero for anything not positive.
fn to_ue4m3(x: f32) -> u8 {
    // !(x > 0.0f): NaN included.
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let x = if x > 448.0 { 448.0 } else { x };
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i32 - 127 + 7;
    if exp <= 0 {
        // Subnormal: man · 2^-9, man = (int)(x·512 + 0.5).
        let man = ((x * 512.0 + 0.5) as i32).min(7);
        return if man < 1 { 0 } else { man as u8 };
    }
    if exp >= 15 {
        return 0x7E;
    }
    let (mut exp, mut man) = (exp, ((bits >> 20) & 7) as i32 + ((bits >> 19) & 1) as i32);
    if man > 7 {
        man = 0;
        exp += 1;
        if exp >= 15 {
            return 0x7E;
        }
    }
    ((exp << 3) | man) as u8
}

/// `ggml_ue4m3_to_fp32`: the scale, halved to match the doubled E2M1 table.
fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let (exp, man) = (i32::from((x >> 3) & 0xF), f32::from(x & 7));
    // ldexpf(v, e) with e in -9..=8: an exact multiplication by 2^e.
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let raw = if exp == 0 { man * pow2(-9) } else { (1.0 + man / 8.0) * pow2(exp - 7) };
    raw * 0.5
}

impl BlockFormat for Nvfp4 {
    const TYPE: GgmlType = GgmlType::NVFP4;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        for (s, xb) in x.chunks_exact(16).enumerate() {
            let (_, amax) = ggml::argabsmax(xb);
            let ue = to_ue4m3(amax / 6.0);
            out[s] = ue;
            let d = ue4m3_half(ue);
            for j in 0..8 {
                out[4 + 8 * s + j] = best_index_fp4(xb[j], d) | (best_index_fp4(xb[j + 8], d) << 4);
            }
        }
    }

    /// `quantize_nvfp4` ignores `quant_weights`: the plain bytes.
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
