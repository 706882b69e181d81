//! IQ4_XS — 256 values (8 sub-blocks of 32) in 136 bytes: f16 `d`, the 6-bit sub-block scales
//! split into `scales_h` (u16, 2 high bits each) and `scales_l` (4 bytes, 4 low bits each), 128
//! bytes of nibbles indexing IQ4_NL's grid (`quantize_iq4_xs`: `quantize_row_iq4_nl_impl` over
//! a super-block with `ntry = 7`, with or without weights).

use kiln_core::ggml_type::GgmlType;

use super::iq4_nl::{block_scale, block_scale_lanes, levels32, pack32, sigma2, weights};
use super::lanes::{SimdBody, SimdWeighted, dispatch, dispatch_weighted};
use super::{BlockFormat, ggml};

/// IQ4_XS.
pub struct Iq4Xs;

/// One IQ4_XS super-block, with importance weights `qw` or without; `FAST` picks IQ4_NL's lane
/// search.
#[inline(always)]
fn quantize<const FAST: bool>(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let s2 = sigma2(x);
    let mut weight = [0f32; 32];
    let mut scales = [0f32; 8];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for (ib, xb) in x.chunks_exact(32).enumerate() {
        weights(xb, qw.map(|q| &q[32 * ib..][..32]), s2, &mut weight);
        let d = if FAST { block_scale_lanes(xb, &weight) } else { block_scale(xb, &weight) };
        scales[ib] = d;
        if d.abs() > amax_scale {
            amax_scale = d.abs();
            max_scale = d;
        }
    }
    let d = -max_scale / 32.0;
    out[..2].copy_from_slice(&ggml::f16(d).to_le_bytes());
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (mut scales_h, mut scales_l) = (0u16, [0u8; 4]);
    for (ib, xb) in x.chunks_exact(32).enumerate() {
        let l = ggml::nearest_int(id * scales[ib]).clamp(-32, 31);
        let dl = d * l as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        pack32(&levels32::<FAST>(idl, xb), &mut out[8 + 16 * ib..][..16]);
        let l = (l + 32) as u8;
        scales_l[ib / 2] |= (l & 0xF) << (4 * (ib % 2));
        scales_h |= u16::from(l >> 4) << (2 * ib);
    }
    out[2..4].copy_from_slice(&scales_h.to_le_bytes());
    out[4..8].copy_from_slice(&scales_l);
}

impl BlockFormat for Iq4Xs {
    const TYPE: GgmlType = GgmlType::IQ4_XS;

    /// `quantize_iq4_xs` with `quant_weights` NULL: weights `x²`.
    fn quantize_block(x: &[f32], out: &mut [u8]) {
        quantize::<false>(x, None, out);
    }

    /// IQ4_NL's lane search per sub-block.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Fast>(x, out);
    }

    /// `quantize_iq4_xs` with weights: `qw·sqrt(σ² + x²)` with σ² from the super-block.
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(136)) {
            quantize::<false>(xb, Some(qw), ob);
        }
        true
    }

    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<Fast>(x, w, out);
        true
    }
}

/// The fast path's bodies, compiled once plainly and once per SIMD level.
struct Fast;

impl SimdBody for Fast {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(136)) {
            quantize::<true>(xb, None, ob);
        }
    }
}

impl SimdWeighted for Fast {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        for ((xb, qw), ob) in x.chunks_exact(256).zip(w.chunks_exact(256)).zip(out.chunks_exact_mut(136)) {
            quantize::<true>(xb, Some(qw), ob);
        }
    }
}
