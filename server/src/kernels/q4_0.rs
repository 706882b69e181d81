//! Q4_0 — 32 values in 18 bytes: f16 `d`, 16 bytes of nibbles (`quantize_row_q4_0_ref`).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q4_0.
pub struct Q4_0;

impl BlockFormat for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK_ELEMS: usize = 32;
    const BLOCK_BYTES: usize = 18;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (max, _) = ggml::argabsmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        for j in 0..16 {
            // (int8_t)(x*id + 8.5f), then MIN(15, ·) on int8.
            let q0 = (ggml::cvt(x[j] * id + 8.5) as i8).min(15);
            let q1 = (ggml::cvt(x[j + 16] * id + 8.5) as i8).min(15);
            out[2 + j] = (q0 as u8) | ((i32::from(q1) << 4) as u8);
        }
    }
}
