//! Q5_0 — 32 values in 22 bytes: f16 `d`, u32 of fifth bits, 16 bytes of nibbles
//! (`quantize_row_q5_0_ref`).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q5_0.
pub struct Q5_0;

impl BlockFormat for Q5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK_ELEMS: usize = 32;
    const BLOCK_BYTES: usize = 22;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (max, _) = ggml::argabsmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        let mut qh = 0u32;
        for j in 0..16 {
            let q0 = i32::from((ggml::cvt(x[j] * id + 16.5) as i8).min(31));
            let q1 = i32::from((ggml::cvt(x[j + 16] * id + 16.5) as i8).min(31));
            out[6 + j] = ((q0 & 0x0F) | ((q1 & 0x0F) << 4)) as u8;
            qh |= (((q0 as u32) & 0x10) >> 4) << j;
            qh |= (((q1 as u32) & 0x10) >> 4) << (j + 16);
        }
        out[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}
