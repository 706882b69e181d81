//! Which ggml type each tensor gets when a model is quantized to a file type: llama.cpp's
//! `llama_tensor_get_type` with and without an importance matrix (`shared/spec/quantization.md`
//! §4, llama.cpp as vendored by llama-cpp-python 0.3.36, `src/llama-quant.cpp`), its shape
//! fallback (`tensor_type_fallback`) and which tensors need an importance matrix
//! (`tensor_requires_imatrix`), as pure functions.
//!
//! Tensors are visited in llama-quantize's order ([`sort_key`]); the counters that make
//! `attn_v`/`ffn_*` types depend on the layer are kept in [`Policy`].

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Error;
use crate::file_type::FileType;
use crate::ggml_type::GgmlType;
use crate::quant_controls::Controls;

/// Model facts the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFacts {
    /// `general.architecture`.
    pub arch: String,
    /// `<arch>.block_count`.
    pub n_layer: u64,
    /// `<arch>.expert_count` (0 if absent).
    pub n_expert: u64,
    /// `head_count / head_count_kv` (1 when either is missing or 0).
    pub n_gqa: u64,
    /// Whether a tensor named exactly `output.weight` exists (else embeddings are tied).
    pub has_output: bool,
    /// Number of tensors whose name contains `attn_v.weight`, `attn_qkv.weight` or `attn_kv_b.weight`.
    pub n_attention_wv: u64,
    /// Whether llama.cpp's loader calls the model a 70B (`LLM_TYPE_70B`), which gives `attn_v`
    /// more bits.
    pub is_70b: bool,
}

impl ModelFacts {
    /// Derives the counts from tensor names and the header values.
    #[must_use]
    pub fn new<'a>(
        arch: &str,
        n_layer: u64,
        n_expert: u64,
        n_head: u64,
        n_head_kv: u64,
        names: impl Iterator<Item = &'a str> + Clone,
    ) -> Self {
        let n_gqa = if n_head > 0 && n_head_kv > 0 { n_head / n_head_kv } else { 1 };
        // The architectures whose `load_arch_hparams` assigns LLM_TYPE_70B (src/models/*.cpp).
        let is_70b = match arch {
            "llama" => n_expert != 8 && n_layer == 80 && n_gqa != 1,
            "deci" | "olmo" | "qwen2" => n_layer == 80,
            "jais2" => n_layer == 68,
            _ => false,
        };
        Self {
            arch: arch.into(),
            n_layer,
            n_expert,
            n_gqa,
            has_output: names.clone().any(|n| n == "output.weight"),
            n_attention_wv: names.filter(|n| category(n).is_attn_v()).count() as u64,
            is_70b,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// llama-quantize's broad tensor categories (`tensor_get_category`): the first test that
/// matches, in this order, decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `output.weight`.
    Output,
    /// `token_embd.weight`, `per_layer_token_embd.weight`.
    TokenEmbd,
    /// Contains `attn_qkv.weight`.
    AttnQkv,
    /// Contains `attn_kv_b.weight`.
    AttnKvB,
    /// Contains `attn_v.weight`.
    AttnV,
    /// Contains `attn_k.weight`.
    AttnK,
    /// Contains `attn_q.weight`.
    AttnQ,
    /// Contains `attn_output.weight`.
    AttnOutput,
    /// Contains `ffn_up`.
    FfnUp,
    /// Contains `ffn_gate`.
    FfnGate,
    /// Contains `ffn_down`.
    FfnDown,
    /// Anything else.
    Other,
}

impl Category {
    /// The `attn_v`-like tensors (`category_is_attn_v`), which the rules give more bits.
    #[must_use]
    pub fn is_attn_v(self) -> bool {
        matches!(self, Self::AttnV | Self::AttnQkv | Self::AttnKvB)
    }
}

/// The category of a tensor name.
#[must_use]
pub fn category(name: &str) -> Category {
    const CONTAINS: [(&str, Category); 9] = [
        ("attn_qkv.weight", Category::AttnQkv),
        ("attn_kv_b.weight", Category::AttnKvB),
        ("attn_v.weight", Category::AttnV),
        ("attn_k.weight", Category::AttnK),
        ("attn_q.weight", Category::AttnQ),
        ("attn_output.weight", Category::AttnOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ];
    if name == "output.weight" {
        return Category::Output;
    }
    if is_token_embd(name) {
        return Category::TokenEmbd;
    }
    CONTAINS.iter().find(|(p, _)| name.contains(p)).map_or(Category::Other, |(_, c)| *c)
}

fn is_token_embd(name: &str) -> bool {
    name == "token_embd.weight" || name == "per_layer_token_embd.weight"
}

/// Refuses header values the per-tensor rules would divide by or index with: a layer tensor
/// (`blk.N.…`) with `block_count` missing, 0 or not above `N`, and a head count of 0.
/// llama-quantize aborts (or divides by zero) on these; kiln says which value is wrong.
///
/// # Errors
/// A message naming the key and the tensor.
pub fn check_header_facts<'a>(
    arch: &str,
    block_count: Option<u64>,
    head_count: Option<u64>,
    head_count_kv: Option<u64>,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    use alloc::format;
    for (key, v) in [("attention.head_count", head_count), ("attention.head_count_kv", head_count_kv)] {
        if v == Some(0) {
            return Err(format!("{arch}.{key} is 0"));
        }
    }
    if let (Some(h), Some(kv)) = (head_count, head_count_kv)
        && h % kv != 0
    {
        return Err(format!("{arch}.attention.head_count {h} is not a multiple of head_count_kv {kv}"));
    }
    let deepest = names.filter_map(|n| layer_of(n).map(|l| (l, n))).max_by_key(|(l, _)| *l);
    if let Some((layer, name)) = deepest {
        match block_count {
            None => return Err(format!("{arch}.block_count is missing but tensor \"{name}\" is in layer {layer}")),
            Some(n) if layer >= n => {
                return Err(format!("{arch}.block_count is {n} but tensor \"{name}\" is in layer {layer}"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// llama-quantize's tensor order: non-layer tensors first (as layer −1), then by layer number,
/// then by name, byte-wise.
#[must_use]
pub fn sort_key(name: &str) -> (i64, &str) {
    (layer_of(name).map_or(-1, |l| l as i64), name)
}

/// The `N` of a `blk.N.` prefix.
#[must_use]
pub fn layer_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("blk.")?;
    let (n, _) = rest.split_once('.')?;
    n.parse().ok()
}

/// Whether llama.cpp ever quantizes this tensor (§4.1, `tensor_allows_quantization`). `n_dims`
/// is the number of dimensions.
#[must_use]
pub fn is_quantizable(name: &str, n_dims: usize, arch: &str) -> bool {
    const NEVER: &[&str] = &[
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    const NEVER_GLM5_NEXT: &[&str] = &[
        "hc_",
        "indexer.attn_q_b",
        "indexer.attn_k",
        "indexer.proj",
        "indexer_compressor_gate",
        "indexer_compressor_ape",
        "ssm_f_a.weight",
        "ssm_f_b.weight",
        "ssm_g_a.weight",
        "ssm_g_b.weight",
        "ssm_beta.weight",
        "attn_kv_a_mqa.weight",
        "attn_k_b.weight",
        "attn_v_b.weight",
    ];
    n_dims >= 2
        && name.ends_with("weight")
        && !NEVER.iter().any(|p| name.contains(p))
        && !(arch == GLM5_NEXT && NEVER_GLM5_NEXT.iter().any(|p| name.contains(p)))
        && name != "position_embd.weight"
        && name != "token_types.weight"
}

const GLM5_NEXT: &str = "glm5-next";

fn use_more_bits(i: u64, n: u64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i as i64 - (n / 8) as i64).rem_euclid(3) == 2
}

/// The shape fallback of §4.4 (`tensor_type_fallback`) when `row_len` is not a multiple of
/// `t`'s block size: the IQ types → IQ4_NL, Q2_K/Q3_K/TQ1_0/TQ2_0/Q2_0 → Q4_0, Q4_K → Q5_0,
/// Q5_K → Q5_1, Q6_K → Q8_0, a 32-value type stays; F16 when even that does not fit. `None`
/// for a type llama.cpp defines no fallback for (Q1_0, NVFP4), where llama-quantize stops.
#[must_use]
pub fn fallback(t: GgmlType, row_len: u64) -> Option<GgmlType> {
    use GgmlType as G;
    if row_len.is_multiple_of(t.block_elems()) {
        return Some(t);
    }
    let f = match t {
        G::IQ1_S | G::IQ1_M | G::IQ2_XXS | G::IQ2_XS | G::IQ2_S | G::IQ3_XXS | G::IQ3_S | G::IQ4_XS => G::IQ4_NL,
        G::Q2_0 | G::Q2_K | G::Q3_K | G::TQ1_0 | G::TQ2_0 => G::Q4_0,
        G::Q4_K => G::Q5_0,
        G::Q5_K => G::Q5_1,
        G::Q6_K => G::Q8_0,
        _ if t.block_elems() <= 32 => t,
        _ => return None,
    };
    Some(if row_len.is_multiple_of(f.block_elems()) { f } else { G::F16 })
}

/// Whether a tensor quantized to `ty` in a `ftype` file needs an importance matrix
/// (`tensor_requires_imatrix`): IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S and IQ3_XXS, and Q2_K in a
/// Q2_K_S file; never `token_embd.weight`, `per_layer_token_embd.weight` or `output.weight`.
#[must_use]
pub fn requires_imatrix(name: &str, ty: GgmlType, ftype: FileType) -> bool {
    use GgmlType as G;
    if is_token_embd(name) || name == "output.weight" {
        return false;
    }
    match ty {
        G::IQ3_XXS | G::IQ2_XXS | G::IQ2_XS | G::IQ2_S | G::IQ1_M | G::IQ1_S => true,
        G::Q2_K => ftype == FileType::Q2_K_S,
        _ => false,
    }
}

/// Refuses, before anything is written, a tensor that [`requires_imatrix`] but will be
/// quantized without weights: with no importance matrix (llama-quantize's up-front refusal), or
/// with one that has no entry for it after `imatrix_include`/`imatrix_exclude` (where
/// llama-quantize bails out only when it reaches the tensor, leaving a partial file).
///
/// # Errors
/// [`Error::ImatrixRequired`] or [`Error::ImatrixEntryMissing`] naming the tensor and type.
pub fn check_imatrix(name: &str, ty: GgmlType, ftype: FileType, with_imatrix: bool, has_weights: bool) -> Result<(), Error> {
    if has_weights || !requires_imatrix(name, ty, ftype) {
        return Ok(());
    }
    let (tensor, ty) = (name.to_owned(), ty.name());
    Err(if with_imatrix { Error::ImatrixEntryMissing { tensor, ty } } else { Error::ImatrixRequired { tensor, ty } })
}

/// The type chosen for a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The type it gets.
    pub ty: GgmlType,
    /// The type the rules wanted before the row-length fallback (differs when it fell back).
    pub wanted: GgmlType,
}

/// The running state of one quantization pass.
#[derive(Debug, Clone)]
pub struct Policy {
    ftype: FileType,
    facts: ModelFacts,
    i_attention_wv: u64,
    i_ffn_down: u64,
    i_ffn_gate: u64,
    i_ffn_up: u64,
    has_imatrix: bool,
    controls: Controls,
}

impl Policy {
    /// A fresh pass.
    #[must_use]
    pub fn new(ftype: FileType, facts: ModelFacts) -> Self {
        Self {
            ftype,
            facts,
            i_attention_wv: 0,
            i_ffn_down: 0,
            i_ffn_gate: 0,
            i_ffn_up: 0,
            has_imatrix: false,
            controls: Controls::default(),
        }
    }

    /// The pass quantizes with an importance matrix, which changes some choices as in
    /// llama-quantize (`qs.has_imatrix`): Q4_0/Q5_0 keep their first `ffn_down` layers at
    /// Q4_1/Q5_1, IQ4_NL/IQ4_XS do not raise them to Q5_K, IQ3_XXS keeps `ffn_down` and
    /// `attn_v` at IQ3_XXS.
    #[must_use]
    pub fn with_imatrix(mut self) -> Self {
        self.has_imatrix = true;
        self
    }

    /// The pass applies llama-quantize's per-tensor controls ([`Controls`]).
    #[must_use]
    pub fn with_controls(mut self, controls: Controls) -> Self {
        self.controls = controls;
        self
    }

    /// The type for the next tensor in visit order ([`sort_key`]), or `None` if it keeps its
    /// source type. Must be called once per tensor, in order: the counters advance.
    ///
    /// As llama-quantize's `llama_tensor_get_type`: `token_embedding_type` and (for a real
    /// `output.weight`) `output_tensor_type` are used as given, without the shape fallback (so
    /// `wanted == ty` and the caller checks the rows fit); otherwise, for a quantized file type,
    /// the first matching `tensor_types` rule, else (unless `pure`) the mixture rules, then the
    /// shape fallback. A rule or `pure` skips the mixture rules and their counters.
    /// [`FileType::COPY`] keeps every tensor.
    ///
    /// # Errors
    /// [`Error::NoFallback`] when the rows do not fit the type and llama.cpp defines no
    /// fallback for it (Q1_0 on rows that are not a multiple of 128).
    pub fn next(&mut self, name: &str, dims: &[u64]) -> Result<Option<Choice>, Error> {
        if self.ftype == FileType::COPY
            || !is_quantizable(name, dims.len(), &self.facts.arch)
            || (self.controls.leave_output_tensor && name == "output.weight")
        {
            return Ok(None);
        }
        let cat = category(name);
        if let Some(t) = self.controls.token_embedding_type.filter(|_| cat == Category::TokenEmbd) {
            // llama-quantize lets a `tensor_types` rule name per_layer_token_embd explicitly.
            if name != "per_layer_token_embd.weight" || self.controls.rule_for(name).is_none() {
                return Ok(Some(Choice { ty: t, wanted: t }));
            }
        }
        if let Some(t) = self.controls.output_tensor_type.filter(|_| cat == Category::Output) {
            return Ok(Some(Choice { ty: t, wanted: t }));
        }
        let base = self.ftype.base_type();
        let row_len = dims.first().copied().unwrap_or(1);
        if !base.is_quantized() {
            return Ok(Some(Choice { ty: base, wanted: base }));
        }
        let wanted = match self.controls.rule_for(name) {
            Some(rule) => rule.ty,
            None if self.controls.pure => base,
            None => self.mix(name, cat, dims, base),
        };
        let ty = fallback(wanted, row_len).ok_or_else(|| Error::NoFallback {
            tensor: name.to_owned(),
            ty: wanted.name(),
            block: wanted.block_elems(),
            width: row_len,
        })?;
        Ok(Some(Choice { ty, wanted }))
    }

    /// `llama_tensor_get_type_impl`: the file type's mixture rules.
    fn mix(&mut self, name: &str, cat: Category, dims: &[u64], base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let ft = self.ftype;
        // glm5-next: these never go below Q8_0 (base is a quantized type here).
        if self.facts.arch == GLM5_NEXT && ["attn_q_a", "attn_q_b", "nextn.eh_proj"].iter().any(|p| name.contains(p)) {
            return G::Q8_0;
        }
        let iq2_family = matches!(ft, F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M);
        if cat == Category::Output || (!self.facts.has_output && cat == Category::TokenEmbd) {
            self.output(dims, base)
        } else if ft == F::MXFP4_MOE {
            // Expert (3-D) tensors → MXFP4, everything else Q8_0.
            let ffn = matches!(cat, Category::FfnUp | Category::FfnGate | Category::FfnDown);
            let experts = dims.get(2).is_some_and(|&e| e > 1);
            if experts && (self.facts.arch != "bailingmoe3" || ffn) { G::MXFP4 } else { G::Q8_0 }
        } else if cat == Category::TokenEmbd {
            match (self.controls.token_embedding_type, ft) {
                (Some(t), _) => t,
                (None, F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ1_M) => G::Q2_K,
                (None, F::IQ2_S | F::IQ2_M | F::IQ3_XXS) => G::IQ3_S,
                (None, F::TQ1_0 | F::TQ2_0 | F::Q2_0) => G::Q4_K,
                (None, _) => base,
            }
        } else if iq2_family {
            self.mix_iq2(cat, base)
        } else {
            self.mix_rest(name, cat, base)
        }
    }

    /// The output tensor (and, with tied embeddings, `token_embd`).
    fn output(&self, dims: &[u64], base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        if let Some(t) = self.controls.output_tensor_type {
            return t;
        }
        let nx = dims.first().copied().unwrap_or(1);
        if self.ftype == F::MXFP4_MOE || self.facts.is_falcon() || !nx.is_multiple_of(base.block_elems()) {
            G::Q8_0
        } else if matches!(self.ftype, F::IQ2_XXS | F::IQ2_XS | F::IQ3_XXS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M)
        {
            G::Q5_K
        } else if base != G::Q8_0 {
            G::Q6_K
        } else {
            base
        }
    }

    /// IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ1_S and IQ1_M.
    fn mix_iq2(&mut self, cat: Category, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let (ft, f) = (self.ftype, &self.facts);
        let iq2_s_m = matches!(ft, F::IQ2_S | F::IQ2_M);
        if cat.is_attn_v() {
            self.i_attention_wv += 1;
            if f.n_gqa >= 4 || f.n_expert >= 4 {
                G::Q4_K
            } else if iq2_s_m {
                G::IQ3_S
            } else {
                G::Q2_K
            }
        } else if f.n_expert == 8 && cat == Category::AttnK {
            G::Q4_K
        } else if cat == Category::FfnDown {
            let low = self.i_ffn_down < f.n_layer / 8;
            self.i_ffn_down += 1;
            match (low, iq2_s_m) {
                (true, true) => G::IQ3_S,
                (true, false) => G::Q2_K,
                (false, _) => base,
            }
        } else if cat == Category::AttnOutput {
            if f.n_expert == 8 {
                G::Q5_K
            } else if matches!(ft, F::IQ1_S | F::IQ1_M) {
                G::IQ2_XXS
            } else if iq2_s_m {
                G::IQ3_S
            } else {
                base
            }
        } else {
            base
        }
    }

    /// Every other quantized file type, by category.
    fn mix_rest(&mut self, name: &str, cat: Category, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let ft = self.ftype;
        match cat {
            c if c.is_attn_v() => self.attn_v(base),
            Category::AttnK if self.facts.n_expert == 8 => G::Q8_0,
            Category::AttnK | Category::AttnQ => match ft {
                F::IQ3_XS => G::IQ3_XXS,
                F::IQ3_XXS => G::IQ2_S,
                _ => base,
            },
            Category::FfnDown => {
                let i = self.layer(self.i_ffn_down, name);
                self.i_ffn_down += 1;
                self.ffn_down(i, base)
            }
            Category::AttnOutput => self.attn_output(base),
            Category::FfnGate | Category::FfnUp => {
                let counter = if cat == Category::FfnGate { &mut self.i_ffn_gate } else { &mut self.i_ffn_up };
                let i_seen = *counter;
                *counter += 1;
                let (i, n) = (self.layer(i_seen, name), self.facts.n_layer);
                if ft == F::IQ3_XS && i >= n / 8 && i < 7 * n / 8 { G::IQ3_XXS } else { base }
            }
            _ => base,
        }
    }

    /// `layer_info`: with experts the layer comes from the name (experts are not visited in
    /// layer order), else the running counter.
    fn layer(&self, counter: u64, name: &str) -> u64 {
        if self.facts.n_expert > 1 { layer_of(name).unwrap_or(counter) } else { counter }
    }

    fn attn_v(&mut self, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let f = &self.facts;
        let (i, n, gqa4) = (self.i_attention_wv, f.n_attention_wv, f.n_gqa >= 4);
        let mut t = match self.ftype {
            F::Q2_K => {
                if gqa4 {
                    G::Q4_K
                } else {
                    G::Q3_K
                }
            }
            F::Q2_K_S if gqa4 => G::Q4_K,
            F::IQ3_XXS if gqa4 => G::Q4_K,
            F::IQ3_XXS => {
                if self.has_imatrix {
                    G::IQ3_XXS
                } else {
                    G::IQ3_S
                }
            }
            F::IQ3_XS | F::IQ3_S if gqa4 => G::Q4_K,
            F::IQ3_M => G::Q4_K,
            F::Q3_K_M => {
                if i < 2 {
                    G::Q5_K
                } else {
                    G::Q4_K
                }
            }
            F::Q3_K_L => G::Q5_K,
            F::IQ4_NL | F::IQ4_XS if gqa4 => G::Q5_K,
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
            F::Q4_K_S if i < 4 => G::Q5_K,
            _ => base,
        };
        if f.is_70b && matches!(t, G::Q3_K | G::Q4_K) {
            t = G::Q5_K;
        }
        if f.n_expert == 8 {
            t = G::Q8_0;
        }
        self.i_attention_wv += 1;
        t
    }

    fn ffn_down(&self, i: u64, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let f = &self.facts;
        let (n, falcon, im) = (f.n_layer, f.is_falcon(), self.has_imatrix);
        match self.ftype {
            F::Q2_K => G::Q3_K,
            F::Q2_K_S if i < n / 8 => G::Q4_K,
            F::Q2_K_S => base,
            F::IQ3_XXS if !im => {
                if i < n / 8 {
                    G::Q4_K
                } else {
                    G::Q3_K
                }
            }
            F::Q3_K_M if i < n / 16 => G::Q5_K,
            F::Q3_K_M if !falcon || use_more_bits(i, n) => G::Q4_K,
            F::Q3_K_M => G::Q3_K,
            F::IQ3_M if i < n / 8 || (f.n_expert == 8 && use_more_bits(i, n)) => G::Q4_K,
            F::Q3_K_L if falcon => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            F::Q4_K_M if falcon && i < n / 16 => G::Q6_K,
            F::Q4_K_M if falcon && use_more_bits(i, n) => G::Q5_K,
            F::Q4_K_M if falcon => G::Q4_K,
            F::Q4_K_M if use_more_bits(i, n) => G::Q6_K,
            F::Q4_K_M => base,
            F::IQ4_NL | F::IQ4_XS if i < n / 8 && !im => G::Q5_K,
            F::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
            F::Q4_K_S if !falcon && i < n / 8 => G::Q5_K,
            // Only with an imatrix: without one the output stays what it always was.
            F::Q4_0 if im && i < n / 8 => G::Q4_1,
            F::Q5_0 if im && i < n / 8 => G::Q5_1,
            _ => base,
        }
    }

    fn attn_output(&self, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let (ft, f) = (self.ftype, &self.facts);
        if f.is_falcon() {
            return if ft == F::Q3_K_L { G::Q4_K } else { base };
        }
        if f.n_expert == 8 {
            let more = matches!(
                ft,
                F::Q2_K
                    | F::IQ3_XS
                    | F::IQ3_XXS
                    | F::Q3_K_S
                    | F::Q3_K_M
                    | F::IQ4_NL
                    | F::Q4_K_S
                    | F::Q4_K_M
                    | F::IQ3_S
                    | F::IQ3_M
                    | F::IQ4_XS
            );
            return if more { G::Q5_K } else { base };
        }
        match ft {
            F::Q2_K => G::Q3_K,
            F::IQ3_XXS => G::IQ3_S,
            F::Q3_K_M | F::IQ3_M => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            _ => base,
        }
    }
}

/// Convenience: the type of every tensor of a model, in visit order.
///
/// # Errors
/// As [`Policy::next`].
pub fn plan_types(
    ftype: FileType,
    facts: &ModelFacts,
    tensors: &[(String, Vec<u64>, GgmlType)],
) -> Result<Vec<(String, GgmlType)>, Error> {
    let mut order: Vec<&(String, Vec<u64>, GgmlType)> = tensors.iter().collect();
    order.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
    let mut p = Policy::new(ftype, facts.clone());
    order.into_iter().map(|(n, d, s)| Ok((n.clone(), p.next(n, d)?.map_or(*s, |c| c.ty)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_tables() {
        let pick = |n: u64| (0..n).filter(|&i| use_more_bits(i, n)).collect::<Vec<_>>();
        assert_eq!(pick(32), [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
        assert_eq!(pick(24), [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
        assert_eq!(pick(28), [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
        assert_eq!(pick(8), [0, 3, 6, 7]);
    }

    #[test]
    fn order_puts_non_layer_first() {
        let mut v = ["blk.10.a", "blk.9.b", "token_embd.weight", "output.weight", "blk.0.z"];
        v.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        assert_eq!(v, ["output.weight", "token_embd.weight", "blk.0.z", "blk.9.b", "blk.10.a"]);
    }

    #[test]
    fn fallbacks() {
        use GgmlType as G;
        assert_eq!(fallback(G::Q4_K, 640), Some(G::Q5_0));
        assert_eq!(fallback(G::Q5_K, 640), Some(G::Q5_1));
        assert_eq!(fallback(G::Q6_K, 640), Some(G::Q8_0));
        assert_eq!(fallback(G::Q3_K, 288), Some(G::Q4_0));
        assert_eq!(fallback(G::Q8_0, 48), Some(G::F16));
        assert_eq!(fallback(G::Q4_K, 512), Some(G::Q4_K));
        for t in [G::IQ1_S, G::IQ1_M, G::IQ2_XXS, G::IQ2_XS, G::IQ2_S, G::IQ3_XXS, G::IQ3_S, G::IQ4_XS] {
            assert_eq!(fallback(t, 640), Some(G::IQ4_NL), "{t:?}");
            assert_eq!(fallback(t, 656), Some(G::F16), "{t:?}");
        }
        for t in [G::Q2_K, G::TQ1_0, G::TQ2_0, G::Q2_0] {
            assert_eq!(fallback(t, 608), Some(G::Q4_0), "{t:?}");
        }
        assert_eq!(fallback(G::IQ4_NL, 48), Some(G::F16));
        assert_eq!(fallback(G::MXFP4, 48), Some(G::F16));
        assert_eq!(fallback(G::Q1_0, 576), None);
        assert_eq!(fallback(G::Q1_0, 640), Some(G::Q1_0));
    }

    #[test]
    fn q1_0_without_fallback_is_refused_naming_the_tensor() {
        let mut p = Policy::new(FileType::Q1_0, gemma());
        let e = p.next("blk.0.attn_q.weight", &[576, 1024]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "blk.0.attn_q.weight: Q1_0 needs rows that are a multiple of 128 and has no fallback type; the tensor's rows are 576 wide"
        );
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn imatrix_requirement_is_per_tensor() {
        use GgmlType as G;
        assert!(requires_imatrix("blk.0.ffn_down.weight", G::IQ2_XXS, FileType::IQ2_XXS));
        assert!(requires_imatrix("blk.0.ffn_down.weight", G::IQ3_XXS, FileType::Q4_K_M));
        assert!(!requires_imatrix("token_embd.weight", G::IQ1_S, FileType::IQ1_S));
        assert!(!requires_imatrix("output.weight", G::IQ2_XS, FileType::IQ2_XS));
        assert!(requires_imatrix("blk.0.attn_q.weight", G::Q2_K, FileType::Q2_K_S));
        assert!(!requires_imatrix("blk.0.attn_q.weight", G::Q2_K, FileType::Q2_K));
        assert!(!requires_imatrix("blk.0.attn_q.weight", G::IQ3_S, FileType::IQ3_S));
        let e = check_imatrix("blk.0.attn_output.weight", G::IQ2_XXS, FileType::IQ2_XXS, false, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "blk.0.attn_output.weight would be quantized to IQ2_XXS, which needs an importance matrix: create an importance matrix with llama-imatrix and pass it as \"imatrix\""
        );
        let e = check_imatrix("blk.2.ffn_down.weight", G::IQ2_XXS, FileType::IQ2_XXS, true, false).unwrap_err();
        assert!(e.to_string().starts_with("the importance matrix has no entry for blk.2.ffn_down.weight"), "{e}");
        assert_eq!(check_imatrix("blk.2.ffn_down.weight", G::IQ2_XXS, FileType::IQ2_XXS, true, true), Ok(()));
    }

    #[test]
    fn categories_follow_llama_quantize_order() {
        assert_eq!(category("output.weight"), Category::Output);
        assert_eq!(category("per_layer_token_embd.weight"), Category::TokenEmbd);
        assert_eq!(category("blk.0.attn_qkv.weight"), Category::AttnQkv);
        assert_eq!(category("blk.0.ffn_up_exps.weight"), Category::FfnUp);
        assert_eq!(category("blk.0.ffn_gate_up_exps.weight"), Category::FfnGate);
        assert_eq!(category("blk.0.ffn_down_exps.weight"), Category::FfnDown);
        assert_eq!(category("blk.0.attn_k_norm.weight"), Category::Other);
    }

    fn gemma() -> ModelFacts {
        let names = ["token_embd.weight", "blk.0.attn_v.weight", "blk.1.attn_v.weight"];
        ModelFacts::new("gemma3", 18, 0, 4, 1, names.iter().copied())
    }

    fn controls(output: Option<&str>, embd: Option<&str>, rules: &[&str], pure: bool, leave: bool) -> Controls {
        let rules: Vec<String> = rules.iter().map(|r| String::from(*r)).collect();
        Controls::parse(output, embd, &rules, pure, leave).unwrap()
    }

    #[test]
    fn controls_choose_as_llama_quantize() {
        use GgmlType as G;
        let pick = |c: Controls, name: &str, dims: &[u64]| {
            Policy::new(FileType::Q4_K_M, gemma()).with_controls(c).next(name, dims).unwrap().map(|c| (c.wanted, c.ty))
        };
        let embd = [640, 262_144];
        // Tied embeddings: the output rules give token_embd Q6_K → Q8_0 at 640 wide.
        assert_eq!(pick(Controls::default(), "token_embd.weight", &embd), Some((G::Q8_0, G::Q8_0)));
        // --pure: the default type, with the shape fallback.
        assert_eq!(pick(controls(None, None, &[], true, false), "token_embd.weight", &embd), Some((G::Q4_K, G::Q5_0)));
        // --output-tensor-type reaches a tied token_embd through the mixture rules.
        let c = controls(Some("q5_0"), None, &[], false, false);
        assert_eq!(pick(c, "token_embd.weight", &embd), Some((G::Q5_0, G::Q5_0)));
        // --token-embedding-type: as given, no fallback (the caller refuses an unfit one).
        let c = controls(None, Some("q4_k"), &[], false, false);
        assert_eq!(pick(c, "token_embd.weight", &embd), Some((G::Q4_K, G::Q4_K)));
        // --tensor-type: the first match wins, and the shape fallback still applies.
        let c = controls(None, None, &["attn=q8_0", "attn_v=q4_0", r"blk\.1[0-7]\.ffn_(up|gate)=q5_k"], false, false);
        assert_eq!(pick(c.clone(), "blk.0.attn_v.weight", &[640, 256]), Some((G::Q8_0, G::Q8_0)));
        assert_eq!(pick(c.clone(), "blk.12.ffn_up.weight", &[640, 2048]), Some((G::Q5_K, G::Q5_1)));
        assert_eq!(pick(c, "blk.2.ffn_up.weight", &[640, 2048]), Some((G::Q4_K, G::Q5_0)));
        // --leave-output-tensor keeps a real output.weight; without it the output type is as given.
        let mut facts = gemma();
        facts.has_output = true;
        let c = controls(Some("q4_0"), None, &[], false, true);
        assert_eq!(
            Policy::new(FileType::Q4_K_M, facts.clone()).with_controls(c).next("output.weight", &[640, 9]),
            Ok(None)
        );
        let c = controls(Some("q4_k"), None, &[], false, false);
        let got = Policy::new(FileType::Q4_K_M, facts).with_controls(c).next("output.weight", &[640, 9]).unwrap();
        assert_eq!(got.map(|c| c.ty), Some(G::Q4_K));
        // Non-quantized file types ignore tensor_types, as llama-quantize does.
        let c = controls(None, None, &["attn=q8_0"], false, false);
        let got = Policy::new(FileType::F16, gemma()).with_controls(c).next("blk.0.attn_q.weight", &[640, 1024]).unwrap();
        assert_eq!(got.map(|c| c.ty), Some(G::F16));
    }

    #[test]
    fn header_facts_that_would_divide_by_zero_are_refused() {
        let names = ["token_embd.weight", "blk.0.attn_v.weight", "blk.1.attn_v.weight"];
        let check = |b, h, kv| check_header_facts("llama", b, h, kv, names.iter().copied());
        assert_eq!(check(Some(2), Some(8), Some(2)), Ok(()));
        assert_eq!(
            check(Some(0), Some(8), Some(2)).unwrap_err(),
            "llama.block_count is 0 but tensor \"blk.1.attn_v.weight\" is in layer 1"
        );
        assert_eq!(
            check(Some(1), Some(8), Some(2)).unwrap_err(),
            "llama.block_count is 1 but tensor \"blk.1.attn_v.weight\" is in layer 1"
        );
        assert_eq!(
            check(None, Some(8), Some(2)).unwrap_err(),
            "llama.block_count is missing but tensor \"blk.1.attn_v.weight\" is in layer 1"
        );
        assert_eq!(check(Some(2), Some(0), Some(2)).unwrap_err(), "llama.attention.head_count is 0");
        assert_eq!(check(Some(2), Some(8), Some(0)).unwrap_err(), "llama.attention.head_count_kv is 0");
        assert_eq!(
            check(Some(2), Some(8), Some(3)).unwrap_err(),
            "llama.attention.head_count 8 is not a multiple of head_count_kv 3"
        );
        assert_eq!(check_header_facts("x", None, None, None, ["output.weight"].into_iter()), Ok(()));
    }
}

/// Every run llama-quantize made of gemma3-270m (`shared/fixtures/gemma3-270m-expected.json`
/// and `shared/fixtures/imatrix/*-expected.json`): the planned type of every tensor equals the
/// recorded one, and every recorded refusal is refused here for the same tensor.
#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::imatrix::{self, Imatrix};
    use alloc::string::ToString;
    use serde_json::Value as J;

    fn shared(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(rel)
    }

    fn json(rel: &str) -> J {
        let p = shared(rel);
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
    }

    /// The source model's tensors (name, dims, type): shapes from a run that has them all.
    fn gemma_tensors() -> Vec<(String, Vec<u64>, GgmlType)> {
        let run = &json("imatrix/gemma3-270m-imatrix-expected.json")["file_types"]["F16"];
        let order = run["tensor_order"].as_array().unwrap();
        order
            .iter()
            .map(|n| {
                let n = n.as_str().unwrap();
                let dims: Vec<u64> =
                    run["tensors"][n]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
                let ty = if dims.len() >= 2 { GgmlType::F16 } else { GgmlType::F32 };
                (n.to_owned(), dims, ty)
            })
            .collect()
    }

    /// A run's options as its argv gave them.
    #[derive(Default)]
    struct Options {
        output: Option<String>,
        embd: Option<String>,
        rules: Vec<String>,
        pure: bool,
        leave: bool,
        imatrix: Option<String>,
        include: Vec<String>,
        exclude: Vec<String>,
    }

    fn options(argv: &[J]) -> Options {
        let mut o = Options::default();
        let mut it = argv.iter().map(|a| a.as_str().unwrap().to_owned()).skip(1);
        while let Some(a) = it.next() {
            let mut val = || it.next().unwrap();
            match a.as_str() {
                "--output-tensor-type" => o.output = Some(val()),
                "--token-embedding-type" => o.embd = Some(val()),
                "--tensor-type" => o.rules.push(val()),
                "--pure" => o.pure = true,
                "--leave-output-tensor" => o.leave = true,
                "--imatrix" => o.imatrix = Some(val()),
                "--include-weights" => o.include.push(val()),
                "--exclude-weights" => o.exclude.push(val()),
                _ => {}
            }
        }
        o
    }

    fn load_imatrix(file: &str, o: &Options) -> Imatrix {
        let mut m = imatrix::parse(&std::fs::read(shared("imatrix").join(file)).unwrap()).unwrap();
        m.filter_entries(&o.include, &o.exclude);
        m
    }

    /// What kiln plans: every tensor's type, or the refusal (its message).
    fn plan(ftype: FileType, o: &Options, imatrix: Option<&Imatrix>) -> Result<Vec<(String, GgmlType)>, String> {
        let tensors = gemma_tensors();
        let facts = ModelFacts::new("gemma3", 18, 0, 4, 1, tensors.iter().map(|t| t.0.as_str()));
        let controls =
            Controls::parse(o.output.as_deref(), o.embd.as_deref(), &o.rules, o.pure, o.leave).map_err(|e| e.to_string())?;
        let mut p = Policy::new(ftype, facts).with_controls(controls);
        if imatrix.is_some() {
            p = p.with_imatrix();
        }
        let mut order: Vec<&(String, Vec<u64>, GgmlType)> = tensors.iter().collect();
        order.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
        let mut out = Vec::new();
        for (name, dims, src) in order {
            let choice = p.next(name, dims).map_err(|e| e.to_string())?;
            if let Some(c) = choice {
                crate::quant_controls::check_fits(name, c.ty, dims[0])?;
                let has = imatrix.is_some_and(|m| m.weights_for(name, dims[0], 1).ok().flatten().is_some());
                check_imatrix(name, c.ty, ftype, imatrix.is_some(), has).map_err(|e| e.to_string())?;
            }
            out.push((name.clone(), choice.map_or(*src, |c| c.ty)));
        }
        Ok(out)
    }

    /// The tensor a failed run names, from its log lines.
    fn refused_tensor(error: &J) -> String {
        let text = match error {
            J::Array(lines) => lines.iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n"),
            J::String(s) => s.clone(),
            _ => panic!("error is {error}"),
        };
        for marker in ["offending tensor: ", "Missing importance matrix for tensor "] {
            if let Some((_, rest)) = text.split_once(marker) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        // The abort on an unfit --token-embedding-type names no tensor: token_embd is the one.
        assert!(text.contains("not divisible by block size"), "{text}");
        "token_embd.weight".to_owned()
    }

    /// Checks one run; returns how many tensors were compared.
    fn check_run(what: &str, key: &str, run: &J) -> usize {
        let o = options(run["argv"].as_array().map_or(&[][..], Vec::as_slice));
        // gemma3-270m-expected.json keys its runs by type and records no argv.
        let ftype = FileType::parse_quantize(run["type_arg"].as_str().unwrap_or(key)).unwrap();
        let matrix = o.imatrix.as_deref().map(|f| load_imatrix(f, &o));
        let got = plan(ftype, &o, matrix.as_ref());
        if run["failed"].as_bool() == Some(true) {
            let tensor = refused_tensor(&run["error"]);
            let e = got.expect_err(what);
            assert!(e.contains(&tensor), "{what}: refused with {e:?}, llama-quantize named {tensor}");
            return 0;
        }
        let got = got.unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        let order: Vec<&str> = run["tensor_order"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert_eq!(got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), order, "{what}: order");
        let bad: Vec<String> = got
            .iter()
            .filter(|(n, t)| run["tensors"][n.as_str()]["type"].as_str() != Some(t.name()))
            .map(|(n, t)| alloc::format!("{n}: {} vs {}", t.name(), run["tensors"][n.as_str()]["type"]))
            .collect();
        assert!(bad.is_empty(), "{what}: {} tensors differ: {:?}", bad.len(), &bad[..bad.len().min(5)]);
        assert_eq!(run["file_type"].as_u64(), Some(u64::from(if ftype == FileType::COPY { 1 } else { ftype.id() })));
        got.len()
    }

    fn check_file(rel: &str, key: &str) -> (usize, usize) {
        let doc = json(rel);
        let runs = doc[key].as_object().unwrap();
        let compared = runs.iter().map(|(name, run)| check_run(&alloc::format!("{rel} {name}"), name, run)).sum();
        (runs.len(), compared)
    }

    #[test]
    fn every_recorded_run_plans_the_recorded_types() {
        // gemma3-270m-expected.json ran without an imatrix and has no argv.
        let (n, t) = check_file("gemma3-270m-expected.json", "file_types");
        assert_eq!((n, t), (8, 8 * 236));
        let (n, t) = check_file("imatrix/gemma3-270m-imatrix-expected.json", "file_types");
        assert_eq!((n, t), (36, 36 * 236));
        let (n, _) = check_file("imatrix/gemma3-270m-newtypes-expected.json", "file_types");
        assert_eq!(n, 28);
        let (n, _) = check_file("imatrix/gemma3-270m-controls-expected.json", "runs");
        assert_eq!(n, 15);
    }
}
