//! Block formats: one type per ggml format implementing [`BlockFormat`], each reproducing
//! ggml's `quantize_row_*_ref` byte for byte (`shared/spec/quantization.md` §2). [`quantize`]
//! maps a runtime [`GgmlType`] to its implementation — the one place that lists them all.

// Indexed loops mirror ggml's C so the transcription can be read against it line by line.
#![allow(clippy::needless_range_loop)]

pub mod bf16;
pub mod f16;
pub mod ggml;
pub mod lanes;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod qkx2_lanes;
pub mod qx_lanes;

use kiln_core::ggml_type::GgmlType;

/// A ggml block format.
pub trait BlockFormat {
    /// The ggml type.
    const TYPE: GgmlType;
    /// Values per block.
    const BLOCK_ELEMS: usize;
    /// Bytes per block.
    const BLOCK_BYTES: usize;

    /// Quantizes one block: `x.len() == BLOCK_ELEMS`, `out.len() == BLOCK_BYTES`.
    fn quantize_block(x: &[f32], out: &mut [u8]);

    /// Quantizes whole blocks; formats override this with a faster path that gives the same bytes.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(Self::BLOCK_ELEMS).zip(out.chunks_exact_mut(Self::BLOCK_BYTES)) {
            Self::quantize_block(xb, ob);
        }
    }
}

/// Why a row could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// kiln has no quantizer for this type.
    #[error("kiln cannot quantize to {0}")]
    Unsupported(&'static str),
    /// Lengths that are not whole blocks.
    #[error("{ty}: {elems} values into {bytes} bytes is not a whole number of {block}-value blocks")]
    Shape {
        /// Target type.
        ty: &'static str,
        /// Input values.
        elems: usize,
        /// Output bytes.
        bytes: usize,
        /// Block size.
        block: usize,
    },
}

/// Which implementation runs: the fast one, or the one-block-at-a-time reference transcription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `quantize_blocks` (SIMD lanes where a format has them).
    Fast,
    /// `quantize_block` per block: the oracle the fast paths are tested against.
    Reference,
}

fn run<F: BlockFormat>(x: &[f32], out: &mut [u8], path: Path) -> Result<(), KernelError> {
    let blocks = x.len() / F::BLOCK_ELEMS;
    if !x.len().is_multiple_of(F::BLOCK_ELEMS) || out.len() != blocks * F::BLOCK_BYTES {
        return Err(KernelError::Shape { ty: F::TYPE.name(), elems: x.len(), bytes: out.len(), block: F::BLOCK_ELEMS });
    }
    match path {
        Path::Fast => F::quantize_blocks(x, out),
        Path::Reference => {
            for (xb, ob) in x.chunks_exact(F::BLOCK_ELEMS).zip(out.chunks_exact_mut(F::BLOCK_BYTES)) {
                F::quantize_block(xb, ob);
            }
        }
    }
    Ok(())
}

/// Quantizes `x` (whole blocks) to `ty` into `out`.
///
/// # Errors
/// [`KernelError`] for unsupported types or lengths that are not whole blocks.
pub fn quantize(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), KernelError> {
    quantize_with(ty, x, out, Path::Fast)
}

/// [`quantize`] through a chosen implementation.
///
/// # Errors
/// As [`quantize`].
pub fn quantize_with(ty: GgmlType, x: &[f32], out: &mut [u8], path: Path) -> Result<(), KernelError> {
    match ty {
        GgmlType::F32 => {
            if out.len() != x.len() * 4 {
                return Err(KernelError::Shape { ty: "F32", elems: x.len(), bytes: out.len(), block: 1 });
            }
            for (v, o) in x.iter().zip(out.chunks_exact_mut(4)) {
                o.copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        }
        GgmlType::F16 => run::<f16::F16>(x, out, path),
        GgmlType::BF16 => run::<bf16::Bf16>(x, out, path),
        GgmlType::Q8_0 => run::<q8_0::Q8_0>(x, out, path),
        GgmlType::Q4_0 => run::<q4_0::Q4_0>(x, out, path),
        GgmlType::Q4_1 => run::<q4_1::Q4_1>(x, out, path),
        GgmlType::Q5_0 => run::<q5_0::Q5_0>(x, out, path),
        GgmlType::Q5_1 => run::<q5_1::Q5_1>(x, out, path),
        GgmlType::Q2_K => run::<q2_k::Q2K>(x, out, path),
        GgmlType::Q3_K => run::<q3_k::Q3K>(x, out, path),
        GgmlType::Q4_K => run::<q4_k::Q4K>(x, out, path),
        GgmlType::Q5_K => run::<q5_k::Q5K>(x, out, path),
        GgmlType::Q6_K => run::<q6_k::Q6K>(x, out, path),
        other => Err(KernelError::Unsupported(other.name())),
    }
}

/// Types [`quantize`] can produce.
pub const SUPPORTED: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];
