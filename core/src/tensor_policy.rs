//! Which ggml type each tensor gets when a model is quantized to a file type: llama.cpp's
//! `llama_tensor_get_type` without an importance matrix (`shared/spec/quantization.md` §4,
//! llama.cpp `0c1e570` `src/llama-quant.cpp`), as pure functions.
//!
//! Tensors are visited in llama-quantize's order ([`sort_key`]); the counters that make
//! `attn_v`/`ffn_down` types depend on the layer are kept in [`Policy`].

use alloc::string::String;
use alloc::vec::Vec;

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
        Self {
            arch: arch.into(),
            n_layer,
            n_expert,
            n_gqa,
            has_output: names.clone().any(|n| n == "output.weight"),
            n_attention_wv: names
                .filter(|n| {
                    n.contains("attn_v.weight") || n.contains("attn_qkv.weight") || n.contains("attn_kv_b.weight")
                })
                .count() as u64,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }

    fn is_70b(&self) -> bool {
        self.arch == "llama" && self.n_layer == 80
    }
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

/// Whether llama.cpp ever quantizes this tensor (§4.1). `n_dims` is the number of dimensions.
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
    let _ = arch;
    n_dims >= 2
        && name.ends_with("weight")
        && !NEVER.iter().any(|p| name.contains(p))
        && name != "position_embd.weight"
        && name != "token_types.weight"
}

fn use_more_bits(i: u64, n: u64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i as i64 - (n / 8) as i64).rem_euclid(3) == 2
}

/// The shape fallback of §4.4 when `row_len` is not a multiple of `t`'s block size.
#[must_use]
pub fn fallback(t: GgmlType, row_len: u64) -> GgmlType {
    if row_len.is_multiple_of(t.block_elems()) {
        return t;
    }
    let f = match t {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::TQ1_0 | GgmlType::TQ2_0 | GgmlType::Q2_0 => GgmlType::Q4_0,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        _ => GgmlType::F16,
    };
    if row_len.is_multiple_of(f.block_elems()) { f } else { GgmlType::F16 }
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
    has_imatrix: bool,
    controls: Controls,
}

impl Policy {
    /// A fresh pass.
    #[must_use]
    pub fn new(ftype: FileType, facts: ModelFacts) -> Self {
        Self { ftype, facts, i_attention_wv: 0, i_ffn_down: 0, has_imatrix: false, controls: Controls::default() }
    }

    /// The pass quantizes with an importance matrix, which changes some choices as in
    /// llama-quantize (`qs.has_imatrix`): Q4_0/Q5_0 keep their first `ffn_down` layers at
    /// Q4_1/Q5_1.
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
    pub fn next(&mut self, name: &str, dims: &[u64]) -> Option<Choice> {
        if !is_quantizable(name, dims.len(), &self.facts.arch)
            || (self.controls.leave_output_tensor && name == "output.weight")
        {
            return None;
        }
        let is_token_embd = name == "token_embd.weight" || name == "per_layer_token_embd.weight";
        if let Some(t) = self.controls.token_embedding_type.filter(|_| is_token_embd) {
            // llama-quantize lets a `tensor_types` rule name per_layer_token_embd explicitly.
            if name != "per_layer_token_embd.weight" || self.controls.rule_for(name).is_none() {
                return Some(Choice { ty: t, wanted: t });
            }
        }
        if let Some(t) = self.controls.output_tensor_type.filter(|_| name == "output.weight") {
            return Some(Choice { ty: t, wanted: t });
        }
        let base = self.ftype.base_type();
        let row_len = dims.first().copied().unwrap_or(1);
        if !base.is_quantized() {
            return Some(Choice { ty: base, wanted: base });
        }
        let wanted = match self.controls.rule_for(name) {
            Some(rule) => rule.ty,
            None if self.controls.pure => base,
            None => self.mix(name, row_len, base),
        };
        Some(Choice { ty: fallback(wanted, row_len), wanted })
    }

    #[expect(
        clippy::too_many_lines,
        reason = "llama_tensor_get_type's rule table, kept in its order so it can be read against llama-quant.cpp"
    )]
    fn mix(&mut self, name: &str, row_len: u64, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        let ft = self.ftype;
        let f = &self.facts;
        let tied = !f.has_output;
        if name == "output.weight" || (tied && name == "token_embd.weight") {
            if let Some(t) = self.controls.output_tensor_type {
                return t;
            }
            if f.is_falcon() || !row_len.is_multiple_of(base.block_elems()) {
                return G::Q8_0;
            }
            return if base == G::Q8_0 { base } else { G::Q6_K };
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return base;
        }
        let is_v =
            name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight") || name.contains("attn_v.weight");
        if is_v {
            let (i, n) = (self.i_attention_wv, f.n_attention_wv);
            let mut t = match ft {
                F::Q2_K => {
                    if f.n_gqa >= 4 {
                        G::Q4_K
                    } else {
                        G::Q3_K
                    }
                }
                F::Q3_K_M => {
                    if i < 2 {
                        G::Q5_K
                    } else {
                        G::Q4_K
                    }
                }
                F::Q3_K_L => G::Q5_K,
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
                F::Q4_K_S if i < 4 => G::Q5_K,
                _ => base,
            };
            if f.is_70b() && matches!(t, G::Q3_K | G::Q4_K) {
                t = G::Q5_K;
            }
            if f.n_expert == 8 {
                t = G::Q8_0;
            }
            self.i_attention_wv += 1;
            return t;
        }
        if name.contains("attn_k.weight") {
            return if f.n_expert == 8 { G::Q8_0 } else { base };
        }
        if name.contains("ffn_down") {
            let i = if f.n_expert > 1 { layer_of(name).unwrap_or(self.i_ffn_down) } else { self.i_ffn_down };
            let n = f.n_layer;
            let falcon = f.is_falcon();
            let t = match ft {
                F::Q2_K => G::Q3_K,
                F::Q3_K_M if i < n / 16 => G::Q5_K,
                F::Q3_K_M if falcon => {
                    if use_more_bits(i, n) {
                        G::Q4_K
                    } else {
                        G::Q3_K
                    }
                }
                F::Q3_K_M => G::Q4_K,
                F::Q3_K_L => {
                    if falcon {
                        G::Q4_K
                    } else {
                        G::Q5_K
                    }
                }
                F::Q4_K_M if falcon => {
                    if i < n / 16 {
                        G::Q6_K
                    } else if use_more_bits(i, n) {
                        G::Q5_K
                    } else {
                        G::Q4_K
                    }
                }
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
                F::Q4_K_S if !falcon && i < n / 8 => G::Q5_K,
                // Only with an imatrix: without one the output stays what it always was.
                F::Q4_0 if self.has_imatrix && i < n / 8 => G::Q4_1,
                F::Q5_0 if self.has_imatrix && i < n / 8 => G::Q5_1,
                _ => base,
            };
            self.i_ffn_down += 1;
            return t;
        }
        if name.contains("attn_output.weight") {
            if f.is_falcon() {
                return if ft == F::Q3_K_L { G::Q4_K } else { base };
            }
            if f.n_expert == 8 {
                return if matches!(ft, F::Q2_K | F::Q3_K_S | F::Q3_K_M | F::Q4_K_S | F::Q4_K_M) {
                    G::Q5_K
                } else {
                    base
                };
            }
            return match ft {
                F::Q2_K => G::Q3_K,
                F::Q3_K_M => G::Q4_K,
                F::Q3_K_L => G::Q5_K,
                _ => base,
            };
        }
        base
    }
}

/// Convenience: the type of every tensor of a model, in visit order.
#[must_use]
pub fn plan_types(
    ftype: FileType,
    facts: &ModelFacts,
    tensors: &[(String, Vec<u64>, GgmlType)],
) -> Vec<(String, GgmlType)> {
    let mut order: Vec<&(String, Vec<u64>, GgmlType)> = tensors.iter().collect();
    order.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
    let mut p = Policy::new(ftype, facts.clone());
    order.into_iter().map(|(n, d, s)| (n.clone(), p.next(n, d).map_or(*s, |c| c.ty))).collect()
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
        assert_eq!(fallback(GgmlType::Q4_K, 640), GgmlType::Q5_0);
        assert_eq!(fallback(GgmlType::Q5_K, 640), GgmlType::Q5_1);
        assert_eq!(fallback(GgmlType::Q6_K, 640), GgmlType::Q8_0);
        assert_eq!(fallback(GgmlType::Q3_K, 288), GgmlType::Q4_0);
        assert_eq!(fallback(GgmlType::Q8_0, 48), GgmlType::F16);
        assert_eq!(fallback(GgmlType::Q4_K, 512), GgmlType::Q4_K);
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
            Policy::new(FileType::Q4_K_M, gemma()).with_controls(c).next(name, dims).map(|c| (c.wanted, c.ty))
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
            None
        );
        let c = controls(Some("q4_k"), None, &[], false, false);
        let got = Policy::new(FileType::Q4_K_M, facts).with_controls(c).next("output.weight", &[640, 9]);
        assert_eq!(got.map(|c| c.ty), Some(G::Q4_K));
        // Non-quantized file types ignore tensor_types, as llama-quantize does.
        let c = controls(None, None, &["attn=q8_0"], false, false);
        let got = Policy::new(FileType::F16, gemma()).with_controls(c).next("blk.0.attn_q.weight", &[640, 1024]);
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
