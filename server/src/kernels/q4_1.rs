//! Q4_1 — 32 values in 20 bytes: f16 `d`, f16 `m`, 16 bytes of nibbles (`quantize_row_q4_1_ref`).

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// Q4_1.
pub struct Q4_1;

/// Min and max by explicit comparisons, as ggml scans them.
pub(super) fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

impl BlockFormat for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK_ELEMS: usize = 32;
    const BLOCK_BYTES: usize = 20;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        out[2..4].copy_from_slice(&ggml::f16(min).to_le_bytes());
        for j in 0..16 {
            let q0 = (ggml::cvt((x[j] - min) * id + 0.5) as i8).min(15);
            let q1 = (ggml::cvt((x[j + 16] - min) * id + 0.5) as i8).min(15);
            out[4 + j] = (q0 as u8) | ((i32::from(q1) << 4) as u8);
        }
    }
}
