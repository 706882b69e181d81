//! The quantize step: which type each tensor gets ([`plan`], from `kiln_core::tensor_policy`),
//! the new header (llama-quantize's key order, tensor order and alignment), and the streaming
//! [`pipeline`] that writes it. Memory stays bounded by a few row chunks, whatever the model size.

pub mod backend;
pub mod blob;
pub mod pipeline;
pub mod widen;

use kiln_core::file_type::{FileType, file_type_name};
use kiln_core::ggml_type::GgmlType;
use std::sync::Arc;

use kiln_core::gguf::{self, Header, TensorInfo, Value};
use kiln_core::imatrix::{Imatrix, ImatrixError};
use kiln_core::quant_controls::{self, Controls};
use kiln_core::tensor_policy::{self, ModelFacts, Policy, sort_key};

/// Why a model cannot be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The source file type is not F32/F16/BF16.
    #[error("quantization is only supported for F16, BF16 and F32 models, not {0}")]
    SourceType(String),
    /// A tensor kiln would have to re-quantize from an already quantized type.
    #[error("tensor \"{name}\" is stored as {ty}; kiln re-quantizes only F32, F16 and BF16 tensors")]
    TensorSource {
        /// Tensor name.
        name: String,
        /// Its type.
        ty: &'static str,
    },
    /// A header value the per-tensor rules need is missing or impossible.
    #[error("invalid model header: {0}")]
    Header(String),
    /// The importance matrix does not fit the model.
    #[error(transparent)]
    Imatrix(#[from] ImatrixError),
    /// The importance matrix names none of the model's quantized tensors.
    #[error(
        "the importance matrix has no entry for any tensor this quantization uses it for (its {entries} entries are for another model?): make it with llama-imatrix from this model"
    )]
    ImatrixUnused {
        /// Its entries.
        entries: usize,
    },
    /// `imatrix_include` / `imatrix_exclude` left none of the matrix's entries.
    #[error("imatrix_include/imatrix_exclude left no entry of the importance matrix to quantize with")]
    ImatrixFilteredEmpty,
    /// A type chosen without shape fallback (`token_embedding_type`, `output_tensor_type` on
    /// `output.weight`) that does not fit the tensor's rows; llama-quantize aborts on it.
    #[error("{0}")]
    RowsUnfit(String),
    /// kiln-core's per-tensor rules refuse the quantization: a tensor that needs an importance
    /// matrix and would go without one, or a type without a fallback that does not fit.
    #[error(transparent)]
    Policy(kiln_core::Error),
    /// A tensor would get a type this server has no kernel for (yet), or, with an importance
    /// matrix, no weighted kernel for.
    #[error(
        "kiln cannot quantize to {ty}{} yet: tensor {tensor} would be {ty}; choose another type",
        if *.weighted { " with an importance matrix" } else { "" }
    )]
    NoKernel {
        /// The first such tensor, in output order.
        tensor: String,
        /// Its type.
        ty: &'static str,
        /// Whether only the importance-weighted kernel is missing.
        weighted: bool,
    },
    /// A kernel refused its input.
    #[error(transparent)]
    Kernel(#[from] crate::kernels::KernelError),
    /// Reading the source or writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The client went away.
    #[error("cancelled")]
    Cancelled,
}

/// One output tensor.
#[derive(Debug, Clone)]
pub struct TensorPlan {
    /// The source tensor (offset relative to the source data section).
    pub src: TensorInfo,
    /// The output tensor (offset relative to the output data section).
    pub out: TensorInfo,
    /// Importance weights for its rows (`ne0` per expert slice, expert-major), when the
    /// importance matrix has them and the output type uses them.
    pub weights: Option<Arc<[f32]>>,
}

/// Everything the pipeline needs to write the new file.
#[derive(Debug, Clone)]
pub struct QuantPlan {
    /// The output's header, as a reader of the new file would parse it.
    pub output: Header,
    /// [`QuantPlan::output`] encoded, padded to the data section.
    pub encoded_header: Vec<u8>,
    /// Tensors in output order.
    pub tensors: Vec<TensorPlan>,
    /// Output alignment.
    pub alignment: u64,
    /// Absolute offset of the source data section.
    pub src_data_offset: u64,
    /// Tensors whose row length forced a fallback: (name, wanted, got), for the log.
    pub fallbacks: Vec<(String, GgmlType, GgmlType)>,
}

impl QuantPlan {
    /// Bytes of the output file.
    #[must_use]
    pub fn output_size(&self) -> u64 {
        let data = self.tensors.iter().map(|t| t.out.size().div_ceil(self.alignment) * self.alignment).sum::<u64>();
        self.encoded_header.len() as u64 + data
    }
}

/// The source model's file type name, from `general.file_type` or, when absent, its tensors.
#[must_use]
pub fn source_type_name(h: &Header) -> &'static str {
    match h.file_type() {
        Some(ft) => file_type_name(ft),
        None => {
            let big = h.tensors.iter().filter(|t| t.dims.len() >= 2).map(|t| t.ty).next();
            match big {
                Some(GgmlType::F32) => "F32",
                Some(GgmlType::F16) => "F16",
                Some(GgmlType::BF16) => "BF16",
                _ => "unknown",
            }
        }
    }
}

fn facts(h: &Header) -> ModelFacts {
    let arch = h.architecture().unwrap_or("");
    let key = |k: &str| h.get_u64(&format!("{arch}.{k}")).unwrap_or(0);
    ModelFacts::new(
        arch,
        key("block_count"),
        key("expert_count"),
        key("attention.head_count"),
        key("attention.head_count_kv"),
        h.tensors.iter().map(|t| t.name.as_str()),
    )
}

/// An importance matrix to quantize with, and the name its `quantize.imatrix.file` key records.
#[derive(Debug, Clone, Copy)]
pub struct WithImatrix<'a> {
    /// The matrix.
    pub matrix: &'a Imatrix,
    /// What to record as its file name.
    pub file: &'a str,
}

/// How to quantize beyond the file type: an importance matrix and llama-quantize's per-tensor
/// controls. The default is neither.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions<'a> {
    /// The importance matrix, already filtered by `imatrix_include` / `imatrix_exclude`.
    pub imatrix: Option<WithImatrix<'a>>,
    /// The per-tensor controls.
    pub controls: Option<&'a Controls>,
}

/// Output types whose ggml quantizer uses importance weights (the others — Q8_0, TQ1_0, TQ2_0,
/// Q1_0, Q2_0, MXFP4 and the float types — ignore them).
#[must_use]
pub fn uses_weights(ty: GgmlType) -> bool {
    use GgmlType as G;
    matches!(
        ty,
        G::Q4_0
            | G::Q4_1
            | G::Q5_0
            | G::Q5_1
            | G::Q2_K
            | G::Q3_K
            | G::Q4_K
            | G::Q5_K
            | G::Q6_K
            | G::IQ1_S
            | G::IQ1_M
            | G::IQ2_XXS
            | G::IQ2_XS
            | G::IQ2_S
            | G::IQ3_XXS
            | G::IQ3_S
            | G::IQ4_NL
            | G::IQ4_XS
    )
}

/// Whether this server can write `ty` (with importance weights when `weighted`): its block
/// format has a row in [`crate::kernels::FORMATS`], and, weighted, a weighted path (probed on
/// one block, since a format without one declines any row).
fn has_kernel(ty: GgmlType, weighted: bool) -> bool {
    if crate::kernels::format(ty).is_none() {
        return false;
    }
    if !weighted {
        return true;
    }
    let n = ty.block_elems() as usize;
    let mut out = vec![0u8; ty.block_bytes() as usize];
    crate::kernels::quantize_weighted_with(ty, &vec![0.5; n], &vec![1.0; n], &mut out, crate::kernels::Path::Reference)
        .is_ok()
}

/// The first tensor of a plan whose type has no kernel here, each (type, weighted) probed once.
/// Reported after the whole plan, so that llama-quantize's own refusals come first.
#[derive(Default)]
struct KernelCheck {
    probed: Vec<(GgmlType, bool, bool)>,
    missing: Option<QuantError>,
}

impl KernelCheck {
    fn check(&mut self, tensor: &str, ty: GgmlType, weighted: bool) {
        let ok = if let Some(p) = self.probed.iter().find(|p| p.0 == ty && p.1 == weighted) {
            p.2
        } else {
            let ok = has_kernel(ty, weighted);
            self.probed.push((ty, weighted, ok));
            ok
        };
        if !ok && self.missing.is_none() {
            self.missing = Some(QuantError::NoKernel { tensor: tensor.to_owned(), ty: ty.name(), weighted });
        }
    }
}

/// The file type [`FileType::COPY`] writes: the source's, as llama.cpp's loader reads it
/// (`general.file_type`, else guessed from the most common tensor type, flagged as guessed).
fn copy_file_type(h: &Header) -> u32 {
    const GUESSED: u32 = 1024;
    if let Some(ft) = h.file_type() {
        return ft;
    }
    let mut names: Vec<&TensorInfo> = h.tensors.iter().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut counts, mut best, mut best_n) = (std::collections::HashMap::new(), GgmlType::F32, 0u32);
    for t in names {
        let n = counts.entry(t.ty).or_insert(0u32);
        *n += 1;
        if best_n < *n {
            (best, best_n) = (t.ty, *n);
        }
    }
    let ft = match best {
        GgmlType::F16 => FileType::F16,
        GgmlType::BF16 => FileType::BF16,
        _ => FileType::F32,
    };
    ft.id() | GUESSED
}

/// Decides every tensor's type and lays out the output file.
///
/// # Errors
/// [`QuantError::SourceType`] for sources that are not F32/F16/BF16, and
/// [`QuantError::TensorSource`] when a tensor would need re-quantizing.
pub fn plan(h: &Header, target: FileType) -> Result<QuantPlan, QuantError> {
    plan_with(h, target, PlanOptions::default())
}

/// [`plan`], with options: an importance matrix (its weights for each tensor by llama-quantize's
/// lookup by name and length, its effect on type choices, its `quantize.imatrix.*` keys) and the
/// per-tensor controls.
///
/// # Errors
/// As [`plan`]; [`QuantError::Imatrix`] for an entry whose length does not fit its tensor,
/// [`QuantError::ImatrixUnused`] when it fits none, [`QuantError::ImatrixFilteredEmpty`] when
/// the filters left no entry, [`QuantError::RowsUnfit`] for a type given without fallback that
/// does not fit its tensor, [`QuantError::Policy`] for a tensor that needs an importance matrix
/// (entry) it does not have or a type without a fallback that does not fit, and
/// [`QuantError::NoKernel`] for a type this server cannot write yet — all before anything is
/// written.
pub fn plan_with(h: &Header, target: FileType, options: PlanOptions<'_>) -> Result<QuantPlan, QuantError> {
    let imatrix = options.imatrix;
    if imatrix.is_some_and(|m| m.matrix.entries.is_empty()) {
        return Err(QuantError::ImatrixFilteredEmpty);
    }
    let src_name = source_type_name(h);
    if !matches!(src_name, "F32" | "F16" | "BF16") {
        return Err(QuantError::SourceType(src_name.into()));
    }
    let arch = h.architecture().unwrap_or("");
    let key = |k: &str| h.get_u64(&format!("{arch}.{k}"));
    tensor_policy::check_header_facts(
        arch,
        key("block_count"),
        key("attention.head_count"),
        key("attention.head_count_kv"),
        h.tensors.iter().map(|t| t.name.as_str()),
    )
    .map_err(QuantError::Header)?;
    let mut order: Vec<&TensorInfo> = h.tensors.iter().collect();
    order.sort_by(|a, b| sort_key(&a.name).cmp(&sort_key(&b.name)));
    let mut policy = Policy::new(target, facts(h));
    if imatrix.is_some() {
        policy = policy.with_imatrix();
    }
    if let Some(c) = options.controls {
        policy = policy.with_controls(c.clone());
    }
    let mut weighted = 0usize;
    let alignment = gguf::DEFAULT_ALIGNMENT;
    let mut tensors = Vec::with_capacity(order.len());
    let mut fallbacks = Vec::new();
    let mut offset = 0u64;
    let mut kernels = KernelCheck::default();
    for t in order {
        let choice = policy.next(&t.name, &t.dims).map_err(QuantError::Policy)?;
        let ty = choice.map_or(t.ty, |c| c.ty);
        if let Some(c) = choice {
            quant_controls::check_fits(&t.name, c.ty, t.dims.first().copied().unwrap_or(1))
                .map_err(QuantError::RowsUnfit)?;
        }
        if ty != t.ty && !matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            return Err(QuantError::TensorSource { name: t.name.clone(), ty: t.ty.name() });
        }
        if let Some(c) = choice.filter(|c| c.ty != c.wanted) {
            fallbacks.push((t.name.clone(), c.wanted, c.ty));
        }
        let out = TensorInfo { name: t.name.clone(), dims: t.dims.clone(), ty, offset };
        offset += out.size().div_ceil(alignment) * alignment;
        let weights = match imatrix {
            Some(m) if ty != t.ty && uses_weights(ty) => {
                let cols = t.dims.first().copied().unwrap_or(0);
                let experts = t.dims.get(2).copied().unwrap_or(1);
                m.matrix.weights_for(&t.name, cols, experts)?.map(Arc::from)
            }
            _ => None,
        };
        if ty != t.ty {
            tensor_policy::check_imatrix(&t.name, ty, target, imatrix.is_some(), weights.is_some())
                .map_err(QuantError::Policy)?;
            kernels.check(&t.name, ty, weights.is_some());
        }
        weighted += usize::from(weights.is_some());
        tensors.push(TensorPlan { src: t.clone(), out, weights });
    }
    // llama-quantize's own refusals (above, for every tensor) come first; a missing kernel after.
    if let Some(e) = kernels.missing {
        return Err(e);
    }
    // llama-quantize: keys in source order, split.* dropped, then quantization_version and
    // file_type set (removed and appended, in that order).
    let mut kvs: Vec<(String, Value)> = h
        .kvs
        .iter()
        .filter(|(k, _)| !k.starts_with("split.") && k != "general.quantization_version" && k != "general.file_type")
        .map(
            |(k, v)| {
                if k == "general.alignment" {
                    (k.clone(), Value::U32(alignment as u32))
                } else {
                    (k.clone(), v.clone())
                }
            },
        )
        .collect();
    kvs.push(("general.quantization_version".into(), Value::U32(2)));
    let file_type = if target == FileType::COPY { copy_file_type(h) } else { target.id() };
    kvs.push(("general.file_type".into(), Value::U32(file_type)));
    if let Some(m) = imatrix {
        let used = tensors.iter().any(|t| t.out.ty != t.src.ty && uses_weights(t.out.ty));
        if used && weighted == 0 {
            return Err(QuantError::ImatrixUnused { entries: m.matrix.entries.len() });
        }
        kvs.extend(m.matrix.metadata(m.file));
    }
    let outs: Vec<TensorInfo> = tensors.iter().map(|t| t.out.clone()).collect();
    let encoded_header = gguf::encode_header(&kvs, &outs, alignment);
    let output = Header { version: 3, kvs, tensors: outs, alignment, data_offset: encoded_header.len() as u64 };
    Ok(QuantPlan { output, encoded_header, tensors, alignment, src_data_offset: h.data_offset, fallbacks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::CreateError;
    use crate::http::error::ApiError;
    use kiln_core::file_type::TARGETS;
    use kiln_core::imatrix::Imatrix;

    /// A two-layer llama-like F16 model whose rows are `width` wide (ffn_down `2 * width`).
    fn model(width: u64) -> Header {
        let kv = |k: &str, v: u32| (format!("llama.{k}"), Value::U32(v));
        let kvs = vec![
            ("general.architecture".to_owned(), Value::Str(b"llama".to_vec())),
            kv("block_count", 2),
            kv("attention.head_count", 8),
            kv("attention.head_count_kv", 8),
            ("general.file_type".to_owned(), Value::U32(1)),
        ];
        let mut tensors = Vec::new();
        let mut add = |name: String, dims: Vec<u64>, ty: GgmlType| {
            let offset = tensors.iter().map(|t: &TensorInfo| t.offset + t.size().div_ceil(32) * 32).max().unwrap_or(0);
            tensors.push(TensorInfo { name, dims, ty, offset });
        };
        add("token_embd.weight".into(), vec![width, 64], GgmlType::F16);
        add("output_norm.weight".into(), vec![width], GgmlType::F32);
        for l in 0..2 {
            for (n, d) in [
                ("attn_q", [width, width]),
                ("attn_k", [width, width]),
                ("attn_v", [width, width]),
                ("attn_output", [width, width]),
                ("ffn_gate", [width, 2 * width]),
                ("ffn_up", [width, 2 * width]),
                ("ffn_down", [2 * width, width]),
            ] {
                add(format!("blk.{l}.{n}.weight"), d.to_vec(), GgmlType::F16);
            }
            add(format!("blk.{l}.attn_norm.weight"), vec![width], GgmlType::F32);
        }
        Header { version: 3, kvs, tensors, alignment: 32, data_offset: 4096 }
    }

    fn status(e: QuantError) -> u16 {
        ApiError::from(CreateError::from(e)).status.as_u16()
    }

    /// Every target on a model whose rows fit every block: planned (every type written has a
    /// kernel), refused for want of an importance matrix (exactly the types llama-quantize
    /// refuses there), or refused naming a type this server has no kernel for — all as 400s.
    #[test]
    fn every_target_is_planned_or_refused_before_writing() {
        let h = model(512);
        for t in TARGETS {
            match plan(&h, t) {
                Ok(p) => {
                    for tp in p.tensors.iter().filter(|tp| tp.out.ty != tp.src.ty) {
                        assert!(crate::kernels::format(tp.out.ty).is_some(), "{}: {:?}", t.name(), tp.out.ty);
                    }
                    assert!(!t.wants_imatrix(), "{} needs an importance matrix here", t.name());
                }
                Err(QuantError::Policy(e @ kiln_core::Error::ImatrixRequired { .. })) => {
                    assert!(t.wants_imatrix(), "{}: {e}", t.name());
                    assert_eq!(status(QuantError::Policy(e)), 400);
                }
                Err(QuantError::NoKernel { tensor, ty, weighted }) => {
                    assert!(!weighted);
                    let g = GgmlType::from_name(ty).unwrap();
                    assert!(crate::kernels::format(g).is_none(), "{}: {tensor} {ty}", t.name());
                    assert_eq!(status(QuantError::NoKernel { tensor, ty, weighted }), 400);
                }
                Err(e) => panic!("{}: {e}", t.name()),
            }
        }
    }

    #[test]
    fn copy_keeps_every_tensor_and_the_source_file_type() {
        let h = model(512);
        let p = plan(&h, FileType::COPY).unwrap();
        assert!(p.tensors.iter().all(|t| t.out.ty == t.src.ty));
        assert_eq!(p.output.file_type(), Some(1));
        let mut guessed = h.clone();
        guessed.kvs.retain(|(k, _)| k != "general.file_type");
        assert_eq!(plan(&guessed, FileType::COPY).unwrap().output.file_type(), Some(1 | 1024));
    }

    #[test]
    fn an_imatrix_without_the_entries_a_low_bit_type_needs_is_refused_up_front() {
        let h = model(512);
        let mut other = Imatrix::default();
        other.entries.insert("blk.0.some_other.weight".into(), vec![1.0; 512]);
        let options = PlanOptions { imatrix: Some(WithImatrix { matrix: &other, file: "x" }), controls: None };
        let e = plan_with(&h, FileType::IQ2_XXS, options).unwrap_err();
        assert!(
            matches!(&e, QuantError::Policy(kiln_core::Error::ImatrixEntryMissing { tensor, ty: "IQ2_XXS" }) if tensor == "blk.0.attn_k.weight"),
            "{e}"
        );
        assert_eq!(status(e), 400);
    }

    #[test]
    fn q1_0_on_rows_it_cannot_hold_is_refused() {
        let e = plan(&model(576), FileType::Q1_0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "blk.0.attn_k.weight: Q1_0 needs rows that are a multiple of 128 and has no fallback type; the tensor's rows are 576 wide"
        );
        assert_eq!(status(e), 400);
    }
}
