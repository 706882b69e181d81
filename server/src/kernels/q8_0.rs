//! Q8_0 — 32 values in 34 bytes: f16 `d`, 32 × i8 (`quantize_row_q8_0_ref`).
//! The one format that rounds half away from zero (C `roundf`).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q8_0.
pub struct Q8_0;

impl BlockFormat for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLOCK_ELEMS: usize = 32;
    const BLOCK_BYTES: usize = 34;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let mut amax = 0.0f32;
        for &v in x {
            let a = v.abs();
            // ggml's MAX(amax, a)
            amax = if amax > a { amax } else { a };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        for (o, &v) in out[2..].iter_mut().zip(x) {
            *o = ggml::cvt((v * id).round()) as u8;
        }
    }
}
