//! The fast path shared by the 32-value formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): each block's
//! values go through the lanes as one `[f32; 32]`, and every block the lanes cannot do exactly
//! (non-finite values, an overflowing `1/d`, extremes whose scan order matters) takes the
//! format's reference `quantize_block` — no block is ever left unwritten.

use std::marker::PhantomData;

use super::BlockFormat;
use super::lanes::{SimdBody, dispatch};

/// A 32-value format's lane-parallel block.
pub(super) trait LaneBlock: BlockFormat {
    /// Quantizes one block into `out` (`BLOCK_BYTES` long) and returns `true`, or returns
    /// `false` without a promise about `out` when the reference must do this block.
    /// `#[inline(always)]` in implementations, so that [`dispatch`]'s AVX2 copy holds it.
    fn lane_block(x: &[f32; 32], out: &mut [u8]) -> bool;
}

/// Runs `F::lane_block` over whole blocks, compiled per CPU feature level by [`dispatch`].
pub(super) fn quantize_blocks<F: LaneBlock>(x: &[f32], out: &mut [u8]) {
    dispatch::<Body<F>>(x, out);
}

struct Body<F>(PhantomData<F>);

impl<F: LaneBlock> SimdBody for Body<F> {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(F::BLOCK_ELEMS).zip(out.chunks_exact_mut(F::BLOCK_BYTES)) {
            match <&[f32; 32]>::try_from(xb) {
                Ok(xa) if F::lane_block(xa, ob) => {}
                // The lanes declined, or (a format that is not 32 values) could not take it.
                _ => F::quantize_block(xb, ob),
            }
        }
    }
}
