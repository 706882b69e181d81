//! Q4_0 — 32 values in 18 bytes: f16 `d`, 16 bytes of nibbles (`quantize_row_q4_0_ref`).

use kiln_core::ggml_type::GgmlType;

use super::lanes::absmax32;
use super::legacy::{self, LaneBlock};
use super::{BlockFormat, ggml};

/// Q4_0.
pub struct Q4_0;

/// The signed value of the first element of largest magnitude, given that magnitude: what
/// ggml's strict `>` scan returns (0.0 when the block is all zeros).
#[inline(always)]
pub(super) fn first_with_abs(x: &[f32; 32], amax: f32) -> f32 {
    if amax == 0.0 {
        return 0.0;
    }
    x.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0)
}

impl BlockFormat for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;

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

    /// Element-parallel within each block (see Q8_0); non-finite blocks and overflowing `1/d`
    /// take the reference path.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        legacy::quantize_blocks::<Self>(x, out);
    }

    /// `quantize_row_q4_0_impl`: per block, the weighted symmetric search with weights
    /// `qw·sqrt(σ² + x²)`, σ² the mean square of the whole row.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        let sigma2 = ggml::sum_sq(x) / x.len() as f32;
        let mut weight = [0f32; 32];
        let mut l = [0i8; 32];
        for ((xb, qw), ob) in x.chunks_exact(32).zip(w.chunks_exact(32)).zip(out.chunks_exact_mut(18)) {
            for j in 0..32 {
                weight[j] = ggml::importance(qw[j], sigma2, xb[j]);
            }
            let d = ggml::make_qx_quants_w(8, xb, &weight, &mut l);
            ob[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
            for j in 0..16 {
                ob[2 + j] = (l[j] as u8) | ((l[j + 16] as u8) << 4);
            }
        }
        true
    }
}

impl LaneBlock for Q4_0 {
    #[inline(always)]
    fn lane_block(xa: &[f32; 32], ob: &mut [u8]) -> bool {
        let (amax, finite) = absmax32(xa);
        let d = first_with_abs(xa, amax) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if !finite || !id.is_finite() {
            return false;
        }
        ob[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
        let mut q = [0u8; 32];
        for i in 0..32 {
            // x*id ∈ [-8, 8] here, so the truncating conversion is in range.
            let v = (xa[i] * id + 8.5) as i32;
            q[i] = if v > 15 { 15 } else { v as u8 };
        }
        for j in 0..16 {
            ob[2 + j] = q[j] | (q[j + 16] << 4);
        }
        true
    }
}
