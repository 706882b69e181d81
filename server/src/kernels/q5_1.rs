//! Q5_1 — 32 values in 24 bytes: f16 `d`, f16 `m`, u32 of fifth bits, 16 bytes of nibbles
//! (`quantize_row_q5_1_ref`; no clamp, as in the reference).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml, q4_1::min_max};

/// Q5_1.
pub struct Q5_1;

impl BlockFormat for Q5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLOCK_ELEMS: usize = 32;
    const BLOCK_BYTES: usize = 24;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        out[2..4].copy_from_slice(&ggml::f16(min).to_le_bytes());
        let mut qh = 0u32;
        for j in 0..16 {
            let q0 = u32::from(ggml::cvt((x[j] - min) * id + 0.5) as u8);
            let q1 = u32::from(ggml::cvt((x[j + 16] - min) * id + 0.5) as u8);
            out[8 + j] = ((q0 & 0x0F) | ((q1 & 0x0F) << 4)) as u8;
            qh |= ((q0 & 0x10) >> 4) << j;
            qh |= ((q1 & 0x10) >> 4) << (j + 16);
        }
        out[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}
