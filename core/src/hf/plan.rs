//! The conversion: metadata in the reference's key order, and every output tensor with the
//! recipe that produces its bytes from the source shards.

use alloc::string::String;
use alloc::vec::Vec;

use super::Kv;
use crate::ggml_type::GgmlType;

/// Why the tensors cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Placeholder until the planner lands.
    #[error("conversion: not supported yet")]
    Unsupported,
}

/// The element type of a safetensors source tensor kiln converts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrcType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

/// What happens to each element between source and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Nothing: widen or round to the output type only.
    None,
    /// Gemma's norm offset: add 1.0 in the source's promoted precision — f32 for F32 and BF16
    /// sources, f16 arithmetic (round to nearest even) for F16 sources — then convert.
    AddOne,
}

/// One run of an output tensor's data, in output order.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `elems` consecutive source elements at absolute byte `offset` of shard `shard` (an index
    /// into the shard list given to [`plan`]), converted element by element.
    Source {
        /// Shard index.
        shard: usize,
        /// Absolute byte offset in the shard file.
        offset: u64,
        /// Elements.
        elems: u64,
    },
    /// Bytes already in the output type (generated tensors such as `rope_freqs`).
    Inline(Vec<u8>),
}

/// One output tensor and how to make its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutTensor {
    /// GGUF name.
    pub name: String,
    /// Shape in GGML order (`ne[0]` first).
    pub dims: Vec<u64>,
    /// Output type: F32, F16 or BF16.
    pub ty: GgmlType,
    /// Source element type ([`Segment::Source`] runs).
    pub src: SrcType,
    /// Element operation.
    pub op: Op,
    /// The data, in order; the elements add up to the product of `dims`.
    pub segments: Vec<Segment>,
}

/// A planned conversion: the GGUF's metadata in file order and its tensors in file order.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// Metadata, in file order.
    pub kvs: Vec<Kv>,
    /// Tensors, in file order.
    pub tensors: Vec<OutTensor>,
}
