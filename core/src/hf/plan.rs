//! The conversion: metadata in the reference's key order, and every output tensor with the
//! recipe that produces its bytes from the source shards.
//!
//! `general.name`: the reference derives it (and `general.basename`, `finetune`, `version`,
//! `organization`) from the model card, `_name_or_path` or the directory's name. kiln takes it
//! from the caller and writes only `general.name`: the server should pass the directory's name
//! title-cased as gguf-py does for simple names (`"Model"` for a directory named `model`, which
//! is what the fixtures expect), or the name of the model being created.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use serde_json::Value as Json;

use super::Kv;
use super::arch::{self, Arch, EXPERT_ORDER, Kind, Mapped, Mapping};
use super::config::{ConfigError, HfConfig};
use super::safetensors::{self, Dtype, Header, StTensor};
use super::vocab::Vocab;
use crate::ggml_type::GgmlType;
use crate::gguf::Value;

/// Why the tensors cannot be converted. Each message names the file and tensor at fault and
/// what was expected.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A hyper-parameter is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `model.safetensors.index.json` is malformed.
    #[error(transparent)]
    Index(#[from] safetensors::SafetensorsError),
    /// The directory has no weights.
    #[error("no model*.safetensors file and no model.safetensors.index.json: kiln converts safetensors weights only")]
    NoShards,
    /// The index names a shard the directory lacks.
    #[error("model.safetensors.index.json names {0:?}, which is not in the directory; upload it")]
    ShardMissing(String),
    /// `model.safetensors.index.json` disagrees with the shards' headers.
    #[error("model.safetensors.index.json: {0}; re-download the model's files")]
    IndexMismatch(String),
    /// Two shards hold a tensor of the same name.
    #[error("tensor {tensor:?} is in both {first} and {second}")]
    Duplicate {
        /// The tensor.
        tensor: String,
        /// One shard.
        first: String,
        /// The other.
        second: String,
    },
    /// A tensor's dtype is not F32, F16 or BF16.
    #[error("{file}: tensor {tensor:?} is {dtype}; kiln converts F32, F16 and BF16 weights only")]
    Dtype {
        /// Shard.
        file: String,
        /// Tensor.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// A tensor name the architecture table cannot map.
    #[error("{file}: tensor {tensor:?} is not part of a {class} model as kiln knows it (no GGUF name for it)")]
    Unmapped {
        /// Shard.
        file: String,
        /// Tensor.
        tensor: String,
        /// The HF class.
        class: String,
    },
    /// A tensor's shape disagrees with `config.json`.
    #[error("{file}: tensor {tensor:?} has shape {shape:?}, but config.json ({why}) needs {expected:?}")]
    Shape {
        /// Shard.
        file: String,
        /// Tensor.
        tensor: String,
        /// Its shape (PyTorch order).
        shape: Vec<u64>,
        /// The expected shape.
        expected: Vec<u64>,
        /// The config fields behind the expectation.
        why: String,
    },
    /// A tensor `config.json` needs is in no shard.
    #[error("tensor {tensor:?} is missing from the safetensors files ({why})")]
    Missing {
        /// The HF name expected.
        tensor: String,
        /// Why it is needed.
        why: String,
    },
    /// Something else the conversion cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// The output type of the converted tensors (norms, biases, 1-D tensors and the MoE router
/// stay F32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutType {
    /// The reference's `--outtype auto`: BF16 for a BF16 source, F16 otherwise, judged by the
    /// first F16/BF16 tensor of two or more dimensions.
    #[default]
    Auto,
    /// F16 (`general.file_type` 1).
    F16,
    /// BF16 (`general.file_type` 32).
    BF16,
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

impl SrcType {
    /// Bytes per element.
    #[must_use]
    pub const fn size(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }

    fn of(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(Self::F32),
            Dtype::F16 => Some(Self::F16),
            Dtype::BF16 => Some(Self::BF16),
            _ => None,
        }
    }
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

/// The shard files to read, in the reference's order: the files `model.safetensors.index.json`
/// names (sorted), else every `model*.safetensors` of the directory (sorted).
///
/// # Errors
/// [`PlanError::Index`] for a malformed index, [`PlanError::ShardMissing`] for a file it names
/// that `file_names` lacks, [`PlanError::NoShards`] when there are none.
pub fn shard_names(file_names: &[&str], index: Option<&[u8]>) -> Result<Vec<String>, PlanError> {
    let names: Vec<String> = if let Some(index) = index {
        let idx = safetensors::parse_index(index)?;
        let files = idx.files();
        if let Some(missing) = files.iter().find(|f| !file_names.contains(f)) {
            return Err(PlanError::ShardMissing((*missing).to_owned()));
        }
        files.into_iter().map(str::to_owned).collect()
    } else {
        let mut v: Vec<String> = file_names
            .iter()
            .filter(|n| n.starts_with("model") && n.ends_with(".safetensors"))
            .map(|n| (*n).to_owned())
            .collect();
        v.sort();
        v
    };
    if names.is_empty() {
        return Err(PlanError::NoShards);
    }
    Ok(names)
}

/// Checks `model.safetensors.index.json` against the shards' headers, as the reference does
/// before converting: every tensor it lists is in the shard it names, and every tensor of the
/// shards is listed.
///
/// # Errors
/// [`PlanError::Index`] for a malformed index, [`PlanError::IndexMismatch`] naming the first
/// tensor that disagrees.
pub fn check_index(index: &[u8], shards: &[(&str, &Header)]) -> Result<(), PlanError> {
    let idx = safetensors::parse_index(index)?;
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for (tensor, file) in &idx.weight_map {
        listed.insert(tensor, file);
        let Some((_, h)) = shards.iter().find(|(f, _)| f == file) else {
            return Err(PlanError::ShardMissing(file.clone()));
        };
        if h.get(tensor).is_none() {
            return Err(PlanError::IndexMismatch(format!(
                "tensor {tensor:?} is listed in {file}, which does not hold it"
            )));
        }
    }
    for (file, h) in shards {
        if let Some(t) = h.tensors.iter().find(|t| !listed.contains_key(t.name.as_str())) {
            return Err(PlanError::IndexMismatch(format!("tensor {:?} of {file} is not listed", t.name)));
        }
    }
    Ok(())
}

/// Metadata under construction: `set` replaces a key in place (gguf-py's writer keeps a key's
/// first position when it is written again) or appends it.
struct Kvs(Vec<Kv>);

impl Kvs {
    fn set(&mut self, key: String, v: Value) {
        if let Some(e) = self.0.iter_mut().find(|(k, _)| *k == key) {
            e.1 = v;
        } else {
            self.0.push((key, v));
        }
    }
}

fn u32v(key: &str, v: u64) -> Result<Value, PlanError> {
    u32::try_from(v).map(Value::U32).map_err(|_| {
        PlanError::Config(ConfigError::Field { field: key.to_owned(), what: format!("= {v} does not fit a u32") })
    })
}

fn uint(cfg: &HfConfig, keys: &[&str]) -> Result<Option<u64>, PlanError> {
    Ok(super::config::uint_of(keys[0], cfg.find(keys))?)
}

fn float(cfg: &HfConfig, keys: &[&str]) -> Result<Option<f64>, PlanError> {
    Ok(super::config::float_of(keys[0], cfg.find(keys))?)
}

#[expect(clippy::cast_possible_truncation, reason = "GGUF stores these as float32, as the reference does")]
fn f32v(v: f64) -> Value {
    Value::F32(v as f32)
}

/// The rope parameters the reference uses: `rope_parameters` / `rope_scaling` (or `{}`), with
/// the top-level `rope_theta` and friends mirrored in.
fn rope_params(cfg: &HfConfig) -> serde_json::Map<String, Json> {
    let mut rp = cfg
        .get("rope_parameters")
        .or_else(|| cfg.get("rope_scaling"))
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(Json::Object(full)) = rp.get("full_attention") {
        return full.clone();
    }
    if !rp.contains_key("sliding_attention") {
        let mirror = [
            (
                "rope_theta",
                &["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"][..],
            ),
            ("partial_rotary_factor", &["partial_rotary_factor", "rope_pct", "rope_percent"][..]),
            ("original_max_position_embeddings", &["original_max_position_embeddings"][..]),
        ];
        for (k, keys) in mirror {
            if !rp.contains_key(k)
                && let Some(v) = cfg.find(keys)
            {
                rp.insert(k.to_owned(), v.clone());
            }
        }
        if !rp.contains_key("rope_type")
            && let Some(t) = rp.get("type").cloned()
        {
            rp.insert("rope_type".to_owned(), t);
        }
    }
    rp
}

fn local_rope_theta(cfg: &HfConfig) -> Result<Option<f64>, PlanError> {
    let explicit = cfg
        .get("rope_parameters")
        .or_else(|| cfg.get("rope_scaling"))
        .and_then(|r| r.get("sliding_attention"))
        .and_then(|r| r.get("rope_theta"));
    if let Some(v) = explicit {
        return Ok(super::config::float_of("rope_parameters.sliding_attention.rope_theta", Some(v))?);
    }
    float(cfg, &["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"])
}

fn rp_f64(rp: &serde_json::Map<String, Json>, k: &str) -> Result<Option<f64>, PlanError> {
    Ok(super::config::float_of(&format!("rope_scaling.{k}"), rp.get(k).filter(|v| !v.is_null()))?)
}

/// The base class's `set_gguf_parameters` (llama, qwen2, qwen3, qwen3moe, gemma3).
fn base_params(cfg: &HfConfig, kv: &mut Kvs, a: &str, file_type: u32) -> Result<(), PlanError> {
    let k = |s: &str| format!("{a}.{s}");
    kv.set(k("block_count"), u32v("num_hidden_layers", cfg.block_count)?);
    let ctx_keys =
        ["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"];
    if let Some(n) = uint(cfg, &ctx_keys)? {
        kv.set(k("context_length"), u32v(ctx_keys[0], n)?);
    }
    if let Some(n) = uint(cfg, &["hidden_size", "n_embd", "dim"])? {
        kv.set(k("embedding_length"), u32v("hidden_size", n)?);
    }
    let ff_keys =
        ["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"];
    if let Some(n) = uint(cfg, &ff_keys)? {
        kv.set(k("feed_forward_length"), u32v("intermediate_size", n)?);
    }
    if let Some(n) = uint(cfg, &["num_attention_heads", "n_head", "n_heads"])? {
        kv.set(k("attention.head_count"), u32v("num_attention_heads", n)?);
    }
    if let Some(n) = uint(cfg, &["num_key_value_heads", "n_kv_heads"])? {
        kv.set(k("attention.head_count_kv"), u32v("num_key_value_heads", n)?);
    }
    if cfg.get("is_causal").and_then(Json::as_bool) == Some(false) {
        kv.set(k("attention.causal"), Value::Bool(false));
    }
    let rp = rope_params(cfg);
    if let Some(t) = rp.get("rope_type").and_then(Json::as_str) {
        let factor = rp_f64(&rp, "factor")?;
        match (t, factor) {
            ("linear", Some(f)) => {
                kv.set(k("rope.scaling.type"), Value::Str(b"linear".to_vec()));
                kv.set(k("rope.scaling.factor"), f32v(f));
            }
            ("yarn", Some(f)) => {
                kv.set(k("rope.scaling.type"), Value::Str(b"yarn".to_vec()));
                kv.set(k("rope.scaling.factor"), f32v(f));
                let orig = super::config::uint_of(
                    "rope_scaling.original_max_position_embeddings",
                    rp.get("original_max_position_embeddings"),
                )?
                .ok_or_else(|| {
                    PlanError::Config(ConfigError::Field {
                        field: "rope_scaling.original_max_position_embeddings".to_owned(),
                        what: "is missing; yarn rope scaling needs it".to_owned(),
                    })
                })?;
                kv.set(k("rope.scaling.original_context_length"), u32v("original_max_position_embeddings", orig)?);
                if let Some(v) = rp_f64(&rp, "extrapolation_factor")? {
                    kv.set(k("rope.scaling.yarn_ext_factor"), f32v(v));
                }
                let attn = match rp_f64(&rp, "attention_factor")? {
                    Some(v) => Some(v),
                    None => rp_f64(&rp, "attn_factor")?,
                };
                if let Some(v) = attn {
                    kv.set(k("rope.scaling.yarn_attn_factor"), f32v(v));
                }
                if let Some(v) = rp_f64(&rp, "beta_fast")? {
                    kv.set(k("rope.scaling.yarn_beta_fast"), f32v(v));
                }
                if let Some(v) = rp_f64(&rp, "beta_slow")? {
                    kv.set(k("rope.scaling.yarn_beta_slow"), f32v(v));
                }
            }
            ("su" | "longrope", _) => kv.set(k("rope.scaling.type"), Value::Str(b"longrope".to_vec())),
            _ => {}
        }
    }
    if let Some(theta) = rp_f64(&rp, "rope_theta")? {
        kv.set(k("rope.freq_base"), f32v(theta));
    }
    if let Some(theta) = local_rope_theta(cfg)? {
        kv.set(k("rope.freq_base_swa"), f32v(theta));
    }
    if let Some(e) = float(cfg, &["rms_norm_eps", "norm_eps"])? {
        kv.set(k("attention.layer_norm_rms_epsilon"), f32v(e));
    }
    if let Some(e) = float(cfg, &["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"])? {
        kv.set(k("attention.layer_norm_epsilon"), f32v(e));
    }
    if let Some(n) = uint(cfg, &["num_local_experts", "num_experts", "n_routed_experts"])? {
        kv.set(k("expert_count"), u32v("num_experts", n)?);
    }
    if let Some(n) = uint(cfg, &["num_experts_per_tok", "num_experts_per_token", "top_k_experts"])? {
        kv.set(k("expert_used_count"), u32v("num_experts_per_tok", n)?);
    }
    if let Some(hd) = cfg.uint("head_dim")? {
        kv.set(k("attention.key_length"), u32v("head_dim", hd)?);
        kv.set(k("attention.value_length"), u32v("head_dim", hd)?);
    }
    kv.set("general.file_type".to_owned(), Value::U32(file_type));
    Ok(())
}

/// The architecture's hyper-parameter keys, in the reference's order.
fn arch_params(cfg: &HfConfig, kv: &mut Kvs, file_type: u32) -> Result<(), PlanError> {
    let a = cfg.arch.gguf_name();
    let k = |s: &str| format!("{a}.{s}");
    match cfg.arch {
        Arch::Llama => {
            base_params(cfg, kv, a, file_type)?;
            kv.set(k("vocab_size"), u32v("vocab_size", cfg.vocab_size)?);
            let rope_dim = match cfg.uint("head_dim")? {
                Some(d) => d,
                None => cfg.n_embd / cfg.n_head,
            };
            kv.set(k("rope.dimension_count"), u32v("head_dim", rope_dim)?);
        }
        Arch::Qwen2 | Arch::Qwen3 => base_params(cfg, kv, a, file_type)?,
        Arch::Qwen3Moe => {
            base_params(cfg, kv, a, file_type)?;
            if let Some(n) = cfg.uint("moe_intermediate_size")? {
                kv.set(k("expert_feed_forward_length"), u32v("moe_intermediate_size", n)?);
            }
            if let Some(n) = cfg.uint("shared_expert_intermediate_size")? {
                kv.set(k("expert_shared_feed_forward_length"), u32v("shared_expert_intermediate_size", n)?);
            }
        }
        Arch::Gemma3 => {
            base_params(cfg, kv, a, file_type)?;
            let ctx = cfg.uint("max_position_embeddings")?.unwrap_or(131_072);
            kv.set(k("context_length"), u32v("max_position_embeddings", ctx)?);
            kv.set(k("attention.head_count"), u32v("num_attention_heads", cfg.n_head)?);
            let eps = cfg.float("rms_norm_eps")?.unwrap_or(1e-6);
            kv.set(k("attention.layer_norm_rms_epsilon"), f32v(eps));
            let hd = cfg.uint("head_dim")?.unwrap_or(256);
            kv.set(k("attention.key_length"), u32v("head_dim", hd)?);
            kv.set(k("attention.value_length"), u32v("head_dim", hd)?);
            let rp = rope_params(cfg);
            kv.set(k("rope.freq_base"), f32v(rp_f64(&rp, "rope_theta")?.unwrap_or(1_000_000.0)));
            if cfg.get("attn_logit_softcapping").is_some() {
                return Err(PlanError::Unsupported(
                    "config.json: attn_logit_softcapping is set, which Gemma 3 does not have; this is not a Gemma 3 model".to_owned(),
                ));
            }
            if let Some(c) = cfg.float("final_logit_softcapping")?
                && c != 0.0
            {
                kv.set(k("final_logit_softcapping"), f32v(c));
            }
            if cfg.get("sliding_window_pattern").and_then(Json::as_u64) != Some(1) {
                let sw = cfg.uint("sliding_window")?.ok_or_else(|| {
                    PlanError::Config(ConfigError::Field {
                        field: "sliding_window".to_owned(),
                        what: "is missing; set it".to_owned(),
                    })
                })?;
                kv.set(k("attention.sliding_window"), u32v("sliding_window", sw)?);
            }
            kv.set(k("attention.head_count_kv"), u32v("num_key_value_heads", cfg.n_head_kv)?);
        }
        Arch::Phi3 => phi3_params(cfg, kv, a, file_type)?,
    }
    Ok(())
}

fn phi3_params(cfg: &HfConfig, kv: &mut Kvs, a: &str, file_type: u32) -> Result<(), PlanError> {
    let k = |s: &str| format!("{a}.{s}");
    let missing =
        |f: &str| PlanError::Config(ConfigError::Field { field: f.to_owned(), what: "is missing; set it".to_owned() });
    let rp = rope_params(cfg);
    if rp.get("long_factor").is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(PlanError::Unsupported(
            "config.json: Phi-3 long-context rope scaling (rope_scaling.long_factor) is not supported by kiln yet"
                .to_owned(),
        ));
    }
    let ctx =
        uint(cfg, &["n_positions", "max_position_embeddings"])?.ok_or_else(|| missing("max_position_embeddings"))?;
    let orig = super::config::uint_of("original_max_position_embeddings", rp.get("original_max_position_embeddings"))?
        .ok_or_else(|| missing("original_max_position_embeddings"))?;
    let rot = rp_f64(&rp, "partial_rotary_factor")?.unwrap_or(1.0);
    #[expect(clippy::cast_precision_loss, reason = "as Python's int(rot_pct * n_embd)")]
    let prod = rot * cfg.n_embd as f64;
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "Python's int() truncates")]
    let rope_dims = (prod as u64) / cfg.n_head;
    kv.set(k("context_length"), u32v("max_position_embeddings", ctx)?);
    kv.set(k("rope.scaling.original_context_length"), u32v("original_max_position_embeddings", orig)?);
    kv.set(k("embedding_length"), u32v("hidden_size", cfg.n_embd)?);
    kv.set(k("feed_forward_length"), u32v("intermediate_size", cfg.n_ff)?);
    kv.set(k("block_count"), u32v("num_hidden_layers", cfg.block_count)?);
    kv.set(k("attention.head_count"), u32v("num_attention_heads", cfg.n_head)?);
    kv.set(k("attention.head_count_kv"), u32v("num_key_value_heads", cfg.n_head_kv)?);
    let eps = cfg.float("rms_norm_eps")?.ok_or_else(|| missing("rms_norm_eps"))?;
    kv.set(k("attention.layer_norm_rms_epsilon"), f32v(eps));
    kv.set(k("rope.dimension_count"), u32v("partial_rotary_factor", rope_dims)?);
    let theta = rp_f64(&rp, "rope_theta")?.ok_or_else(|| missing("rope_theta"))?;
    kv.set(k("rope.freq_base"), f32v(theta));
    kv.set("general.file_type".to_owned(), Value::U32(file_type));
    let sw = cfg.uint("sliding_window")?.unwrap_or(0);
    kv.set(k("attention.sliding_window"), u32v("sliding_window", sw)?);
    Ok(())
}

/// Llama 3's `rope_freqs`: the per-dimension-pair frequency factors, computed in f32 as the
/// reference does (torch float32 arithmetic).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "float32 arithmetic, as the reference"
)]
fn llama3_rope_freqs(cfg: &HfConfig, rp: &serde_json::Map<String, Json>) -> Result<Vec<u8>, PlanError> {
    let base = rp_f64(rp, "rope_theta")?.unwrap_or(10000.0) as f32;
    let dim = match cfg.uint("head_dim")? {
        Some(d) => d,
        None => cfg.n_embd / cfg.n_head,
    };
    let factor = rp_f64(rp, "factor")?.unwrap_or(8.0) as f32;
    let low = rp_f64(rp, "low_freq_factor")?.unwrap_or(1.0);
    let high = rp_f64(rp, "high_freq_factor")?.unwrap_or(4.0);
    let old = rp_f64(rp, "original_max_position_embeddings")?.unwrap_or(8192.0);
    let low_wavelen = old / low;
    let high_wavelen = old / high;
    let mut out = Vec::with_capacity(dim as usize * 2);
    let mut i = 0u64;
    while i < dim {
        let e = i as f32 / dim as f32;
        let freq = 1.0f32 / libm::powf(base, e);
        let wavelen = core::f32::consts::PI * 2.0 / freq;
        let r = if f64::from(wavelen) < high_wavelen {
            1.0f32
        } else if f64::from(wavelen) > low_wavelen {
            factor
        } else {
            let smooth = (old as f32 / wavelen - low as f32) / (high as f32 - low as f32);
            1.0f32 / ((1.0f32 - smooth) / factor + smooth)
        };
        out.extend_from_slice(&r.to_le_bytes());
        i += 2;
    }
    Ok(out)
}

/// gguf-py's `model_weight_count_rounded_notation(n, min_digits=2)`.
#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "as Python's float arithmetic"
)]
fn rounded_notation(n: u64) -> String {
    let f = n as f64;
    let (x, suffix) = if f > 1e12 {
        (f * 1e-12, "T")
    } else if f > 1e9 {
        (f * 1e-9, "B")
    } else if f > 1e6 {
        (f * 1e-6, "M")
    } else {
        (f * 1e-3, "K")
    };
    // Python's round(): half to even.
    let fl = x as u64;
    let frac = x - fl as f64;
    let r = if frac > 0.5 || (frac == 0.5 && fl % 2 == 1) { fl + 1 } else { fl };
    let digits = if r == 0 { 0 } else { format!("{r}").len() };
    let fix = 2usize.saturating_sub(digits);
    format!("{x:.fix$}{suffix}")
}

/// One source tensor, located.
struct Src<'a> {
    /// The name as the reference maps it (`language_model.` removed).
    hf: String,
    shard: usize,
    file: &'a str,
    t: &'a StTensor,
    ty: SrcType,
    m: Mapped,
}

fn shape_err(s: &Src<'_>, expected: Vec<u64>, why: &str) -> PlanError {
    PlanError::Shape {
        file: s.file.to_owned(),
        tensor: s.t.name.clone(),
        shape: s.t.shape.clone(),
        expected,
        why: why.to_owned(),
    }
}

/// Checks a tensor's shape against the configuration.
fn check_shape(cfg: &HfConfig, s: &Src<'_>) -> Result<(), PlanError> {
    let (e, h, kv, hd, ff, v) = (cfg.n_embd, cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.n_ff, cfg.vocab_size);
    let moe_ff = cfg.uint("moe_intermediate_size")?.unwrap_or(0);
    let n_exp = cfg.find(&["num_local_experts", "num_experts"]).and_then(Json::as_u64).unwrap_or(0);
    let (want, why): (Vec<u64>, &str) = match s.m.kind {
        Kind::TokenEmbd | Kind::Output => (vec![v, e], "vocab_size, hidden_size"),
        Kind::Norm => (vec![e], "hidden_size"),
        Kind::Q => (vec![h * hd, e], "num_attention_heads·head_dim, hidden_size"),
        Kind::K | Kind::V => (vec![kv * hd, e], "num_key_value_heads·head_dim, hidden_size"),
        Kind::O => (vec![e, h * hd], "hidden_size, num_attention_heads·head_dim"),
        Kind::HeadNorm => (vec![hd], "head_dim"),
        Kind::Qkv => {
            (vec![(h + 2 * kv) * hd, e], "(num_attention_heads + 2·num_key_value_heads)·head_dim, hidden_size")
        }
        Kind::GateUp => (vec![ff, e], "intermediate_size, hidden_size"),
        Kind::Down => (vec![e, ff], "hidden_size, intermediate_size"),
        Kind::FusedGateUp => (vec![2 * ff, e], "2·intermediate_size, hidden_size"),
        Kind::GateInp => (vec![n_exp, e], "num_experts, hidden_size"),
        Kind::Expert(2, _) => (vec![e, moe_ff], "hidden_size, moe_intermediate_size"),
        Kind::Expert(..) => (vec![moe_ff, e], "moe_intermediate_size, hidden_size"),
    };
    let want = if s.m.bias { vec![want[0]] } else { want };
    if s.t.shape != want {
        return Err(shape_err(s, want, why));
    }
    if let Some(b) = s.m.bid
        && b >= cfg.block_count
    {
        return Err(PlanError::Unsupported(format!(
            "{}: tensor {:?} is for layer {b}, but config.json num_hidden_layers is {}",
            s.file, s.t.name, cfg.block_count
        )));
    }
    if let Kind::Expert(_, x) = s.m.kind
        && x >= n_exp
    {
        return Err(PlanError::Unsupported(format!(
            "{}: tensor {:?} is expert {x}, but config.json num_experts is {n_exp}",
            s.file, s.t.name
        )));
    }
    Ok(())
}

/// The HF names every layer needs.
fn required_layer(arch: Arch, moe_layer: bool) -> Vec<&'static str> {
    let mut r = vec!["input_layernorm", "post_attention_layernorm", "self_attn.o_proj"];
    if arch == Arch::Phi3 {
        r.extend(["self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj"]);
        return r;
    }
    r.extend(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]);
    if matches!(arch, Arch::Qwen3 | Arch::Qwen3Moe | Arch::Gemma3) {
        r.extend(["self_attn.q_norm", "self_attn.k_norm"]);
    }
    if arch == Arch::Gemma3 {
        r.extend(["pre_feedforward_layernorm", "post_feedforward_layernorm"]);
    }
    if moe_layer {
        r.push("mlp.gate");
    } else {
        r.extend(["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]);
    }
    r
}

/// Whether Qwen3-MoE layer `bid` is sparse (transformers' rule).
fn is_moe_layer(cfg: &HfConfig, bid: u64) -> bool {
    if !cfg.arch.is_moe() {
        return false;
    }
    let only = cfg.get("mlp_only_layers").and_then(Json::as_array);
    if only.is_some_and(|l| l.iter().any(|x| x.as_u64() == Some(bid))) {
        return false;
    }
    let step = cfg.get("decoder_sparse_step").and_then(Json::as_u64).unwrap_or(1);
    let n_exp = cfg.find(&["num_local_experts", "num_experts"]).and_then(Json::as_u64).unwrap_or(0);
    n_exp > 0 && step > 0 && (bid + 1).is_multiple_of(step)
}

fn out_type(name: &str, ndims: usize, ft: GgmlType) -> GgmlType {
    if ndims <= 1 || name.ends_with("_norm.weight") || !name.ends_with(".weight") || name.contains(".ffn_gate_inp.") {
        GgmlType::F32
    } else {
        ft
    }
}

fn reversed(shape: &[u64]) -> Vec<u64> {
    shape.iter().rev().copied().collect()
}

/// Plans the conversion of a directory: `cfg` from [`super::config::parse`], `shards` as
/// [`shard_names`] orders them with their parsed headers, `vocab` from the tokenizer files, the
/// output type and `general.name` (see the module documentation for what to pass).
///
/// `vocab.sampling` goes after `general.type` and `vocab.tokenizer` after
/// `general.quantization_version`, as the reference writes them. Gemma 3 cuts its embedding to
/// `vocab.n_tokens` rows when that is smaller than the embedding (0: no cut, for callers without
/// a vocabulary).
///
/// # Errors
/// [`PlanError`]: a tensor of another dtype than F32/F16/BF16, a name the architecture table
/// cannot map, a shape that disagrees with `config.json`, a needed tensor missing, a tensor in
/// two shards, or unusable hyper-parameters.
pub fn plan(
    cfg: &HfConfig,
    shards: &[(&str, &Header)],
    vocab: &Vocab,
    out: OutType,
    general_name: &str,
) -> Result<Conversion, PlanError> {
    let arch = cfg.arch;
    // Every tensor, in the reference's visiting order.
    let mut srcs: Vec<Src<'_>> = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (shard, (file, h)) in shards.iter().enumerate() {
        for t in &h.tensors {
            if let Some(first) = seen.insert(&t.name, file) {
                return Err(PlanError::Duplicate {
                    tensor: t.name.clone(),
                    first: first.to_owned(),
                    second: (*file).to_owned(),
                });
            }
            // The reference drops `language_model.` (text weights saved from a multimodal model).
            let hf = t.name.replace("language_model.", "");
            let m = match arch::map_name(arch, &hf) {
                Mapping::Tensor(m) => m,
                Mapping::Drop => continue,
                Mapping::Unknown => {
                    return Err(PlanError::Unmapped {
                        file: (*file).to_owned(),
                        tensor: t.name.clone(),
                        class: cfg.class.clone(),
                    });
                }
            };
            let ty = SrcType::of(t.dtype).ok_or_else(|| PlanError::Dtype {
                file: (*file).to_owned(),
                tensor: t.name.clone(),
                dtype: t.dtype,
            })?;
            let s = Src { hf, shard, file, t, ty, m };
            check_shape(cfg, &s)?;
            srcs.push(s);
        }
    }
    check_required(cfg, &srcs)?;

    let ftype = match out {
        OutType::F16 => GgmlType::F16,
        OutType::BF16 => GgmlType::BF16,
        OutType::Auto => srcs
            .iter()
            .filter(|s| s.t.shape.len() >= 2)
            .find_map(|s| match s.ty {
                SrcType::BF16 => Some(GgmlType::BF16),
                SrcType::F16 => Some(GgmlType::F16),
                SrcType::F32 => None,
            })
            .unwrap_or(GgmlType::F16),
    };
    let file_type = if ftype == GgmlType::BF16 { 32 } else { 1 };

    let tensors = plan_tensors(cfg, &srcs, vocab, ftype)?;

    let mut kv = Kvs(Vec::new());
    kv.set("general.architecture".to_owned(), Value::Str(arch.gguf_name().as_bytes().to_vec()));
    kv.set("general.type".to_owned(), Value::Str(b"model".to_vec()));
    for (k, v) in &vocab.sampling {
        kv.set(k.clone(), v.clone());
    }
    kv.set("general.name".to_owned(), Value::Str(general_name.as_bytes().to_vec()));
    kv.set("general.size_label".to_owned(), Value::Str(size_label(&tensors).into_bytes()));
    arch_params(cfg, &mut kv, file_type)?;
    kv.set("general.quantization_version".to_owned(), Value::U32(2));
    for (k, v) in &vocab.tokenizer {
        kv.set(k.clone(), v.clone());
    }
    Ok(Conversion { kvs: kv.0, tensors })
}

/// `general.size_label` from the written tensors (gguf-py's `size_label`).
fn size_label(tensors: &[OutTensor]) -> String {
    let (mut total, mut shared, mut expert, mut expert_sum, mut n_expert_tensors) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for t in tensors {
        let size: u64 = t.dims.iter().product();
        if t.name.contains("_exps.") && t.dims.len() >= 3 {
            let count = if t.name.contains(".bias") { t.dims[1] } else { t.dims[2] };
            expert += size.checked_div(count).unwrap_or(0);
            expert_sum += count;
            n_expert_tensors += 1;
        } else {
            shared += size;
        }
        total += size;
    }
    if n_expert_tensors > 0 && expert_sum / n_expert_tensors > 0 {
        format!("{}x{}", expert_sum / n_expert_tensors, rounded_notation(shared + expert))
    } else {
        rounded_notation(total)
    }
}

/// Checks that every tensor `config.json` implies is present.
fn check_required(cfg: &HfConfig, srcs: &[Src<'_>]) -> Result<(), PlanError> {
    let have = |n: &str| srcs.iter().any(|s| s.hf == n);
    let miss = |n: String, why: &str| Err(PlanError::Missing { tensor: n, why: why.to_owned() });
    if !have("model.embed_tokens.weight") {
        return miss("model.embed_tokens.weight".to_owned(), "every model has a token embedding");
    }
    if !have("model.norm.weight") {
        return miss("model.norm.weight".to_owned(), "every model has a final norm");
    }
    let tied = cfg.get("tie_word_embeddings").and_then(Json::as_bool).unwrap_or(true);
    if cfg.arch != Arch::Gemma3 && !tied && !have("lm_head.weight") {
        return miss("lm_head.weight".to_owned(), "config.json tie_word_embeddings is false");
    }
    for bid in 0..cfg.block_count {
        let moe = is_moe_layer(cfg, bid);
        for sub in required_layer(cfg.arch, moe) {
            let n = format!("model.layers.{bid}.{sub}.weight");
            if !have(&n) {
                return miss(n, &format!("config.json num_hidden_layers is {}", cfg.block_count));
            }
        }
    }
    Ok(())
}

/// The output tensors, in the reference's order.
fn plan_tensors(cfg: &HfConfig, srcs: &[Src<'_>], vocab: &Vocab, ftype: GgmlType) -> Result<Vec<OutTensor>, PlanError> {
    let mut out = Vec::new();
    let rp = rope_params(cfg);
    if cfg.arch == Arch::Llama
        && rp.get("rope_type").and_then(Json::as_str).is_some_and(|t| t.eq_ignore_ascii_case("llama3"))
    {
        let bytes = llama3_rope_freqs(cfg, &rp)?;
        out.push(OutTensor {
            name: "rope_freqs.weight".to_owned(),
            dims: vec![bytes.len() as u64 / 4],
            ty: GgmlType::F32,
            src: SrcType::F32,
            op: Op::None,
            segments: vec![Segment::Inline(bytes)],
        });
    }
    let n_exp = cfg.find(&["num_local_experts", "num_experts"]).and_then(Json::as_u64).unwrap_or(0);
    // Per layer, the expert tensors seen so far: (which, expert) → source index.
    let mut experts: BTreeMap<u64, BTreeMap<(u8, u64), usize>> = BTreeMap::new();
    for (i, s) in srcs.iter().enumerate() {
        if let Kind::Expert(which, e) = s.m.kind {
            let bid = s.m.bid.unwrap_or(0);
            let layer = experts.entry(bid).or_default();
            layer.insert((which, e), i);
            if layer.len() as u64 >= n_exp * 3 {
                let layer = experts.remove(&bid).unwrap_or_default();
                for (w, stack) in EXPERT_ORDER {
                    out.push(stack_experts(srcs, &layer, bid, w, stack, n_exp, ftype)?);
                }
            }
            continue;
        }
        out.push(plain(cfg, s, vocab, ftype)?);
    }
    if let Some((bid, layer)) = experts.into_iter().next() {
        let have: Vec<&str> = layer.values().map(|&i| srcs[i].t.name.as_str()).collect();
        return Err(PlanError::Missing {
            tensor: format!("model.layers.{bid}.mlp.experts.*"),
            why: format!(
                "config.json num_experts is {n_exp}, so 3·{n_exp} expert tensors per layer, but only {have:?} are present"
            ),
        });
    }
    Ok(out)
}

fn stack_experts(
    srcs: &[Src<'_>],
    layer: &BTreeMap<(u8, u64), usize>,
    bid: u64,
    which: u8,
    stack: &str,
    n_exp: u64,
    ftype: GgmlType,
) -> Result<OutTensor, PlanError> {
    let mut segments = Vec::with_capacity(n_exp as usize);
    let mut first: Option<&Src<'_>> = None;
    let w = ["gate_proj", "up_proj", "down_proj"][usize::from(which)];
    for e in 0..n_exp {
        let s = layer.get(&(which, e)).map(|&i| &srcs[i]).ok_or_else(|| PlanError::Missing {
            tensor: format!("model.layers.{bid}.mlp.experts.{e}.{w}.weight"),
            why: format!("config.json num_experts is {n_exp}"),
        })?;
        if let Some(f) = first
            && f.ty != s.ty
        {
            return Err(PlanError::Unsupported(format!(
                "{}: expert tensors {:?} ({:?}) and {:?} ({:?}) have different dtypes; kiln stacks experts of one dtype",
                s.file, f.t.name, f.ty, s.t.name, s.ty
            )));
        }
        first.get_or_insert(s);
        segments.push(Segment::Source { shard: s.shard, offset: s.t.start, elems: s.t.elements() });
    }
    let f = first.ok_or_else(|| PlanError::Unsupported("config.json num_experts is 0".to_owned()))?;
    let mut dims = reversed(&f.t.shape);
    dims.push(n_exp);
    let name = format!("blk.{bid}.{stack}.weight");
    Ok(OutTensor { ty: out_type(&name, dims.len(), ftype), name, dims, src: f.ty, op: Op::None, segments })
}

/// A tensor that maps one to one (with Q/K permutation, Gemma's `+1` and embedding cut).
fn plain(cfg: &HfConfig, s: &Src<'_>, vocab: &Vocab, ftype: GgmlType) -> Result<OutTensor, PlanError> {
    let t = s.t;
    let mut dims = reversed(&t.shape);
    let op = if cfg.arch.norm_plus_one() && s.hf.ends_with("norm.weight") { Op::AddOne } else { Op::None };
    let esize = s.ty.size();
    let segments = if cfg.arch.permutes_qk() && matches!(s.m.kind, Kind::Q | Kind::K) {
        let n = if s.m.kind == Kind::Q { cfg.n_head } else { cfg.n_head_kv };
        let rows = t.shape[0];
        let cols: u64 = t.shape[1..].iter().product();
        if !rows.is_multiple_of(2 * n) {
            return Err(shape_err(s, t.shape.clone(), "rows must be a multiple of 2·heads for the RoPE permutation"));
        }
        let per_head = rows / n;
        let half = per_head / 2;
        let mut seg = Vec::with_capacity(rows as usize);
        for h in 0..n {
            for i in 0..half {
                for j in 0..2 {
                    let src_row = h * per_head + j * half + i;
                    seg.push(Segment::Source { shard: s.shard, offset: t.start + src_row * cols * esize, elems: cols });
                }
            }
        }
        seg
    } else if cfg.arch == Arch::Gemma3
        && s.m.kind == Kind::TokenEmbd
        && vocab.n_tokens > 0
        && vocab.n_tokens < t.shape[0]
    {
        let cols: u64 = t.shape[1..].iter().product();
        dims[1] = vocab.n_tokens;
        vec![Segment::Source { shard: s.shard, offset: t.start, elems: vocab.n_tokens * cols }]
    } else {
        vec![Segment::Source { shard: s.shard, offset: t.start, elems: t.elements() }]
    };
    let name = s.m.name.clone();
    Ok(OutTensor { ty: out_type(&name, dims.len(), ftype), name, dims, src: s.ty, op, segments })
}

#[cfg(test)]
mod tests {
    use super::rounded_notation;

    #[test]
    fn size_label_notation_is_gguf_pys() {
        // Python's model_weight_count_rounded_notation(n, min_digits=2) for each n.
        let cases = [
            (0, "0.00K"),
            (499, "0.50K"),
            (500, "0.50K"),
            (760, "0.8K"),
            (1500, "1.5K"),
            (999_999, "1000K"),
            (1_000_001, "1.0M"),
            (4_200_000, "4.2M"),
            (9_950_000, "10M"),
            (7_241_732_096, "7.2B"),
            (70_553_706_496, "71B"),
            (1_500_000_000_000, "1.5T"),
        ];
        for (n, want) in cases {
            assert_eq!(rounded_notation(n), want, "{n}");
        }
    }
}
