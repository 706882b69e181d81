//! Q5_K — 256 values (8 sub-blocks of 32) in 176 bytes: f16 `d`, f16 `dmin`, 12 bytes of 6-bit
//! scales and mins, 32 bytes of fifth bits, 128 bytes of nibbles (`quantize_row_q5_K_ref`).
//! Shares Q4_K's search (scalar reference and SIMD-lane twin) with its own parameters.

use kiln_core::ggml_type::GgmlType;

use super::BlockFormat;
use super::ggml::Qkx2;
use super::lanes::{dispatch, dispatch_weighted};
use super::q4_k::{AffineBlocks, AffineK, affine_block, affine_weighted_ref};

/// Q5_K.
pub struct Q5K;

const PARAMS: Qkx2 = Qkx2 { nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: false };

impl AffineK for Q5K {
    const BYTES: usize = 176;
    const PARAMS: Qkx2 = PARAMS;
    /// Q4_K's weighted path with 32 levels and scales clamped to 63 (`quantize_row_q5_K_impl`).
    const WEIGHTED: (i32, bool) = (31, true);

    fn pack(l: &[u8; 256], d: u16, dmin: u16, sc: &[u8; 12], out: &mut [u8]) {
        out[..2].copy_from_slice(&d.to_le_bytes());
        out[2..4].copy_from_slice(&dmin.to_le_bytes());
        out[4..16].copy_from_slice(sc);
        let mut qh = [0u8; 32];
        for g in 0..4 {
            for i in 0..32 {
                let (mut a, mut b) = (l[64 * g + i], l[64 * g + 32 + i]);
                if a > 15 {
                    a -= 16;
                    qh[i] |= 1 << (2 * g);
                }
                if b > 15 {
                    b -= 16;
                    qh[i] |= 2 << (2 * g);
                }
                out[48 + 32 * g + i] = a | (b << 4);
            }
        }
        out[16..48].copy_from_slice(&qh);
    }
}

impl BlockFormat for Q5K {
    const TYPE: GgmlType = GgmlType::Q5_K;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        affine_block::<Self>(x, out);
    }

    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<AffineBlocks<Self>>(x, out);
    }

    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        affine_weighted_ref::<Self>(x, w, out);
        true
    }

    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<AffineBlocks<Self>>(x, w, out);
        true
    }
}
