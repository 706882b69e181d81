//! Block formats: one type per ggml format implementing [`BlockFormat`], each reproducing
//! ggml's `quantize_row_*_ref` byte for byte (`shared/spec/quantization.md` §2), and with an
//! importance matrix its `quantize_row_*_impl` ([`quantize_weighted`]). [`FORMATS`] is
//! the one table of them: the CPU implementation and the GPU kernel of every type kiln writes;
//! [`SUPPORTED`], [`quantize_with`] and the GPU's list and shaders all come from it, so a new
//! format is one row there.

// Indexed loops mirror ggml's C so the transcription can be read against it line by line.
#![expect(clippy::needless_range_loop, reason = "indexed loops mirror ggml's C, line by line")]

pub mod bf16;
pub mod f16;
pub mod f32;
pub mod ggml;
pub mod iq1_m;
pub mod iq1_s;
mod iq2_grid_data;
pub mod iq2_grids;
pub mod iq2_s;
#[cfg(test)]
mod iq2_tests;
pub mod iq2_xs;
pub mod iq2_xxs;
pub mod iq3_grids;
pub mod iq3_s;
#[cfg(test)]
mod iq3_tests;
pub mod iq3_xxs;
pub mod iq4_nl;
pub mod iq4_xs;
pub mod lanes;
mod legacy;
pub mod mxfp4;
#[cfg(test)]
mod new_formats_tests;
pub mod nvfp4;
pub mod q1_0;
pub mod q2_0;
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
pub mod tq1_0;
pub mod tq2_0;
#[cfg(test)]
mod weighted_tests;

use kiln_core::ggml_type::GgmlType;

/// A ggml block format.
pub trait BlockFormat {
    /// The ggml type.
    const TYPE: GgmlType;
    /// Values per block (ggml's type-traits table, through [`GgmlType`]).
    const BLOCK_ELEMS: usize = Self::TYPE.block_elems() as usize;
    /// Bytes per block.
    const BLOCK_BYTES: usize = Self::TYPE.block_bytes() as usize;
    /// Whether ggml quantizes this type only with importance weights (it asserts on a NULL
    /// weights pointer: IQ2_XXS, IQ2_XS, IQ1_S). Such a format has no plain path: [`quantize`]
    /// answers [`KernelError::NeedsWeights`] and never calls its `quantize_block`.
    const NEEDS_WEIGHTS: bool = false;

    /// Quantizes one block: `x.len() == BLOCK_ELEMS`, `out.len() == BLOCK_BYTES`.
    fn quantize_block(x: &[f32], out: &mut [u8]);

    /// Quantizes whole blocks; formats override this with a faster path that gives the same bytes.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(Self::BLOCK_ELEMS).zip(out.chunks_exact_mut(Self::BLOCK_BYTES)) {
            Self::quantize_block(xb, ob);
        }
    }

    /// Quantizes one row with importance weights, as ggml's `quantize_row_*_impl` does when
    /// llama-quantize has an imatrix: `x.len() == w.len()`, a whole number of blocks, `out` the
    /// row's bytes. Per row, not per block, because some formats take statistics over the whole
    /// row. The scalar transcription, and the oracle of [`Self::quantize_row_weighted`]. Returns
    /// `false`, writing nothing, for a format without a weighted path (the default).
    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        let _ = (x, w, out);
        false
    }

    /// [`Self::quantize_row_weighted_ref`]'s bytes, by a faster path where a format has one.
    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        Self::quantize_row_weighted_ref(x, w, out)
    }
}

/// Why a row could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// kiln has no quantizer for this type.
    #[error("kiln cannot quantize to {0}")]
    Unsupported(&'static str),
    /// ggml quantizes this type only with importance weights (an imatrix).
    #[error("{0} can only be quantized with an importance matrix")]
    NeedsWeights(&'static str),
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
    if F::NEEDS_WEIGHTS {
        return Err(KernelError::NeedsWeights(F::TYPE.name()));
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

/// How a format runs on the GPU; `gpu/shader.rs` builds the pipeline from it. The WGSL files
/// sit beside their CPU twins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuKernel {
    /// Two values per invocation, packed into one output word: a whole shader with its entry
    /// point (`f16.wgsl`, `bf16.wgsl`).
    Values(&'static str),
    /// A `quantize_block(block, &words, byte_offset)` run by `pairs.wgsl` on two blocks per
    /// invocation, so that a pair is a whole number of words (WGSL has no byte stores).
    Pairs(&'static str),
    /// A K-quant: the workgroup shape of `kquants.wgsl` (one invocation per sub-block) with the
    /// format's sub-blocks per super-block, `SUBS` in its WGSL (`gpu/shader.rs` tests they agree).
    Supers {
        /// The format's WGSL.
        source: &'static str,
        /// Sub-blocks per super-block.
        subs: u32,
    },
}

/// A format's CPU entry: `x` into `out` by the chosen path.
type Run = fn(&[f32], &mut [u8], Path) -> Result<(), KernelError>;

/// A format's weighted row by the chosen path: [`BlockFormat::quantize_row_weighted`] or its
/// reference.
type WeightedRow = fn(&[f32], &[f32], &mut [u8], Path) -> bool;

fn weighted_row<F: BlockFormat>(x: &[f32], w: &[f32], out: &mut [u8], path: Path) -> bool {
    match path {
        Path::Fast => F::quantize_row_weighted(x, w, out),
        Path::Reference => F::quantize_row_weighted_ref(x, w, out),
    }
}

/// One row of [`FORMATS`].
#[derive(Clone, Copy)]
pub struct Format {
    /// The ggml type.
    pub ty: GgmlType,
    /// The CPU implementation, fast or reference.
    run: Run,
    /// The CPU implementation of one row with importance weights.
    weighted: WeightedRow,
    /// The GPU kernel, where there is one.
    pub gpu: Option<GpuKernel>,
    /// Whether that kernel also runs the importance-weighted path (`exact.wgsl`'s `weighted()`).
    pub gpu_weighted: bool,
    /// Whether the type can only be quantized with importance weights
    /// ([`BlockFormat::NEEDS_WEIGHTS`]).
    pub needs_weights: bool,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Format").field("ty", &self.ty).field("gpu", &self.gpu.is_some()).finish_non_exhaustive()
    }
}

const fn row<F: BlockFormat>(gpu: Option<GpuKernel>) -> Format {
    Format {
        ty: F::TYPE,
        run: run::<F>,
        weighted: weighted_row::<F>,
        gpu,
        gpu_weighted: false,
        needs_weights: F::NEEDS_WEIGHTS,
    }
}

impl Format {
    /// The row with its GPU kernel marked as running the weighted path too.
    const fn gpu_weights(mut self) -> Self {
        self.gpu_weighted = true;
        self
    }
}

const fn pairs(source: &'static str) -> Option<GpuKernel> {
    Some(GpuKernel::Pairs(source))
}

const fn supers(source: &'static str, subs: u32) -> Option<GpuKernel> {
    Some(GpuKernel::Supers { source, subs })
}

/// Every type kiln writes: the one place that lists them.
pub const FORMATS: [Format; 28] = [
    // A copy; nothing for a device to do.
    row::<f32::F32>(None),
    row::<f16::F16>(Some(GpuKernel::Values(include_str!("f16.wgsl")))),
    row::<bf16::Bf16>(Some(GpuKernel::Values(include_str!("bf16.wgsl")))),
    row::<q8_0::Q8_0>(pairs(include_str!("q8_0.wgsl"))),
    row::<q4_0::Q4_0>(pairs(concat!(
        include_str!("searches.wgsl"),
        include_str!("legacy.wgsl"),
        include_str!("q4_0.wgsl")
    )))
    .gpu_weights(),
    row::<q4_1::Q4_1>(pairs(concat!(
        include_str!("searches.wgsl"),
        include_str!("legacy.wgsl"),
        include_str!("q4_1.wgsl")
    )))
    .gpu_weights(),
    row::<q5_0::Q5_0>(pairs(concat!(
        include_str!("searches.wgsl"),
        include_str!("legacy.wgsl"),
        include_str!("q5_0.wgsl")
    )))
    .gpu_weights(),
    row::<q5_1::Q5_1>(pairs(concat!(
        include_str!("searches.wgsl"),
        include_str!("legacy.wgsl"),
        include_str!("q5_1.wgsl")
    )))
    .gpu_weights(),
    row::<q2_k::Q2K>(supers(include_str!("q2_k.wgsl"), 16)).gpu_weights(),
    row::<q3_k::Q3K>(supers(include_str!("q3_k.wgsl"), 16)).gpu_weights(),
    row::<q4_k::Q4K>(supers(include_str!("q4_k.wgsl"), 8)).gpu_weights(),
    row::<q5_k::Q5K>(supers(include_str!("q5_k.wgsl"), 8)).gpu_weights(),
    row::<q6_k::Q6K>(supers(include_str!("q6_k.wgsl"), 16)).gpu_weights(),
    row::<iq4_nl::Iq4Nl>(pairs(concat!(include_str!("iq4_search.wgsl"), include_str!("iq4_nl.wgsl")))).gpu_weights(),
    row::<iq4_xs::Iq4Xs>(pairs(concat!(include_str!("iq4_search.wgsl"), include_str!("iq4_xs.wgsl")))).gpu_weights(),
    // CPU only: the grid searches, the other non-linear formats and the ternary ones.
    row::<iq3_xxs::Iq3Xxs>(None),
    row::<iq3_s::Iq3S>(None),
    row::<tq1_0::Tq1_0>(None),
    row::<tq2_0::Tq2_0>(None),
    row::<q1_0::Q1_0>(None),
    row::<q2_0::Q2_0>(None),
    row::<mxfp4::Mxfp4>(None),
    row::<nvfp4::Nvfp4>(None),
    row::<iq2_xxs::Iq2Xxs>(None),
    row::<iq2_xs::Iq2Xs>(None),
    row::<iq2_s::Iq2S>(None),
    row::<iq1_s::Iq1S>(None),
    row::<iq1_m::Iq1M>(None),
];

/// Whether `ty`'s weighted path takes σ² over the whole row ([`ggml::mean_sq`]; the legacy
/// formats' `quantize_row_q{4,5}_{0,1}_impl`): a block of it cannot be quantized apart from its
/// row, and the GPU kernels read each row's σ² from the host.
#[must_use]
pub fn row_wide_weights(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1)
}

/// The row of `ty`, if kiln writes it.
#[must_use]
pub fn format(ty: GgmlType) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.ty == ty)
}

/// Types [`quantize`] can produce: [`FORMATS`]' types.
pub const SUPPORTED: [GgmlType; FORMATS.len()] = {
    let mut out = [GgmlType::F32; FORMATS.len()];
    let mut i = 0;
    while i < FORMATS.len() {
        out[i] = FORMATS[i].ty;
        i += 1;
    }
    out
};

/// Quantizes `x` (whole blocks) to `ty` into `out`.
///
/// # Errors
/// [`KernelError`] for unsupported types, types that need importance weights, or lengths that
/// are not whole blocks.
pub fn quantize(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), KernelError> {
    quantize_with(ty, x, out, Path::Fast)
}

/// [`quantize`] through a chosen implementation.
///
/// # Errors
/// As [`quantize`].
pub fn quantize_with(ty: GgmlType, x: &[f32], out: &mut [u8], path: Path) -> Result<(), KernelError> {
    let f = format(ty).ok_or(KernelError::Unsupported(ty.name()))?;
    (f.run)(x, out, path)
}

/// Quantizes `x` to `ty` into `out` with importance weights `w`, as llama-quantize does with an
/// imatrix: `x` is rows of `w.len()` values (a whole number of blocks), and every row is
/// quantized with the same `w` — a tensor's one importance vector (ggml's `quant_weights`).
/// Runs on the calling thread, as [`quantize_with`] does; callers split rows over their pool.
///
/// Formats whose ggml quantizer ignores the weights (F32, F16, BF16, Q8_0) give [`quantize`]'s
/// bytes.
///
/// # Errors
/// [`KernelError::Unsupported`] for a type without a weighted path, [`KernelError::Shape`] when
/// `w` is not whole blocks, `x` not whole rows, or `out` not their size.
pub fn quantize_weighted(ty: GgmlType, x: &[f32], w: &[f32], out: &mut [u8]) -> Result<(), KernelError> {
    quantize_weighted_with(ty, x, w, out, Path::Fast)
}

/// [`quantize_weighted`] through a chosen implementation.
///
/// # Errors
/// As [`quantize_weighted`].
pub fn quantize_weighted_with(
    ty: GgmlType,
    x: &[f32],
    w: &[f32],
    out: &mut [u8],
    path: Path,
) -> Result<(), KernelError> {
    let f = format(ty).ok_or(KernelError::Unsupported(ty.name()))?;
    let (block, block_bytes) = (ty.block_elems() as usize, ty.block_bytes() as usize);
    let row_bytes = w.len() / block * block_bytes;
    let shape = KernelError::Shape { ty: ty.name(), elems: x.len(), bytes: out.len(), block };
    if w.is_empty() || !w.len().is_multiple_of(block) || !x.len().is_multiple_of(w.len()) {
        return Err(shape);
    }
    if out.len() != x.len() / w.len() * row_bytes {
        return Err(shape);
    }
    for (xr, or) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(row_bytes)) {
        if !(f.weighted)(xr, w, or, path) {
            return Err(KernelError::Unsupported(ty.name()));
        }
    }
    Ok(())
}
