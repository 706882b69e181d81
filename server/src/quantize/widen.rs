//! Source rows → f32: F32 as is, F16 and BF16 widened exactly (`half` uses F16C when the CPU
//! has it; the conversion is exact either way).

use half::slice::HalfFloatSliceExt;
use kiln_core::ggml_type::GgmlType;

/// Widens little-endian `raw` values of type `ty` into `out`.
pub fn widen(ty: GgmlType, raw: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F16 => match bytemuck::try_cast_slice::<u8, half::f16>(raw) {
            Ok(h) if cfg!(target_endian = "little") => h.convert_to_f32_slice(out),
            _ => {
                for (o, c) in out.iter_mut().zip(raw.chunks_exact(2)) {
                    *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
        },
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact(2)) {
                *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
}
