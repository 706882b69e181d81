//! The wgpu quantizer: WGSL kernels (`kernels/<format>.wgsl`, beside their CPU twins) run on a
//! Vulkan/Metal/DX12 adapter and give the CPU's bytes. Exactness comes from the kernels
//! (integer f16/bf16, exact division, no contraction: `kernels/exact.wgsl`); blocks they cannot
//! do exactly (non-finite, subnormal, tiny) come back in a list of flagged blocks, which the
//! quantizer redoes on the CPU (`quantize/backend.rs`). A start-up self-test compares the two on a
//! corpus that covers every such case; a device that differs is not used.
//!
//! [`device`] opens the adapter and compiles the pipelines, [`shader`] puts each format's
//! shader together, [`dispatch`] runs chunks through them. Nothing here panics on the device's
//! or the input's account: every failure is a [`GpuError`], and the caller redoes the chunk on
//! the CPU.

pub mod device;
pub mod dispatch;
pub mod selftest;
pub mod shader;

use std::collections::HashMap;

use kiln_core::ggml_type::GgmlType;

pub use dispatch::{Output, Pending};

use crate::kernels::FORMATS;

/// How many rows of [`FORMATS`] have a GPU kernel.
const GPU_FORMATS: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < FORMATS.len() {
        if FORMATS[i].gpu.is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The formats with a GPU kernel: the rows of [`FORMATS`] that name one.
pub const SUPPORTED: [GgmlType; GPU_FORMATS] = {
    let mut out = [GgmlType::F32; GPU_FORMATS];
    let (mut i, mut n) = (0, 0);
    while i < FORMATS.len() {
        if FORMATS[i].gpu.is_some() {
            out[n] = FORMATS[i].ty;
            n += 1;
        }
        i += 1;
    }
    out
};

/// How many rows of [`FORMATS`] run their weighted path on the GPU.
const GPU_WEIGHTED: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < FORMATS.len() {
        if FORMATS[i].gpu.is_some() && FORMATS[i].gpu_weighted {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The formats whose GPU kernel also quantizes with importance weights (an imatrix); the other
/// formats' weighted chunks run on the CPU.
pub const SUPPORTED_WEIGHTED: [GgmlType; GPU_WEIGHTED] = {
    let mut out = [GgmlType::F32; GPU_WEIGHTED];
    let (mut i, mut n) = (0, 0);
    while i < FORMATS.len() {
        if FORMATS[i].gpu.is_some() && FORMATS[i].gpu_weighted {
            out[n] = FORMATS[i].ty;
            n += 1;
        }
        i += 1;
    }
    out
};

/// Why the GPU path is not available or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No adapter.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// Only a software adapter, which `--device auto` does not take (the CPU path is faster).
    #[error("only a software GPU adapter ({0}), slower than the CPU path; --device gpu would use it")]
    Software(String),
    /// The device could not be opened.
    #[error("GPU device: {0}")]
    Device(String),
    /// A kernel failed to compile or validate.
    #[error("GPU kernel for {ty}: {reason}")]
    Kernel {
        /// Format.
        ty: &'static str,
        /// Validation message.
        reason: String,
    },
    /// No kernel for this target type (the caller checks [`Gpu::supports`]).
    #[error("no GPU kernel for {0}")]
    Unsupported(&'static str),
    /// A source type the kernels do not read (F32, F16 and BF16 only).
    #[error("GPU kernels read F32, F16 or BF16, not {0}")]
    Source(&'static str),
    /// Importance weights for a kernel without a weighted path, weights that are not whole
    /// blocks, or input that is not whole rows of them.
    #[error("{ty}: no GPU kernel for {len} importance weights here")]
    Weights {
        /// Target type.
        ty: &'static str,
        /// Weights given.
        len: usize,
    },
    /// Input that is not whole source values and whole target blocks.
    #[error("{ty}: {bytes} bytes of {src} are not whole {block}-value blocks")]
    Shape {
        /// Target type.
        ty: &'static str,
        /// Source type.
        src: &'static str,
        /// Input bytes.
        bytes: usize,
        /// Values per target block.
        block: usize,
    },
    /// A piece that does not fit one dispatch (a sizing bug; the chunk goes to the CPU).
    #[error("GPU dispatch of {groups} workgroups exceeds one dispatch row")]
    Dispatch {
        /// Workgroups asked for.
        groups: usize,
    },
    /// Reading results back failed, or they were not what was asked for.
    #[error("GPU readback: {0}")]
    Readback(String),
}

/// A format's compiled pipeline and the shape its shader runs in.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    shader: shader::Shader,
}

/// An opened adapter with one compiled pipeline per supported format.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: HashMap<GgmlType, Kernel>,
    layout: wgpu::BindGroupLayout,
    max_binding: u64,
    max_units: usize,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info.name).field("backend", &self.info.backend).finish()
    }
}

impl Gpu {
    /// `"llvmpipe (LLVM 15.0.6, 256 bits)"`, …
    #[must_use]
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// The driver and its version.
    #[must_use]
    pub fn driver(&self) -> String {
        format!("{} {}", self.info.driver, self.info.driver_info).trim().to_owned()
    }

    /// Whether a kernel exists for `ty`.
    #[must_use]
    pub fn supports(&self, ty: GgmlType) -> bool {
        self.kernels.contains_key(&ty)
    }

    /// Whether the kernel for `ty` also runs its importance-weighted path.
    #[must_use]
    pub fn supports_weighted(&self, ty: GgmlType) -> bool {
        self.supports(ty) && SUPPORTED_WEIGHTED.contains(&ty)
    }

    /// Caps the units of one dispatch, so that tests can make small inputs take several pieces.
    pub fn limit_piece(&mut self, units: usize) {
        self.max_units = units.max(1);
    }
}
