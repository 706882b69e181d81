//! The architecture table: HF class → GGUF arch, tensor-name map, hyper-parameter keys, transforms.
//!
//! What each architecture does (as `convert_hf_to_gguf.py` of llama-cpp-python 0.3.36 does it):
//!
//! | HF class | GGUF arch | transforms |
//! |---|---|---|
//! | `LlamaForCausalLM`, `MistralForCausalLM` | `llama` | Q/K rows permuted (rotate-half → interleaved RoPE); `rope_freqs` generated for llama3 rope scaling |
//! | `Qwen2ForCausalLM` | `qwen2` | none |
//! | `Qwen3ForCausalLM` | `qwen3` | none |
//! | `Qwen3MoeForCausalLM` | `qwen3moe` | per-expert tensors stacked into `ffn_{gate,up,down}_exps` |
//! | `Gemma3ForCausalLM` | `gemma3` | `+1` on every `*norm.weight`; embedding rows cut to the vocabulary; `lm_head` never written |
//! | `Phi3ForCausalLM` | `phi3` | fused `qkv_proj` / `gate_up_proj` kept |
//!
//! Tied embeddings (no `lm_head.weight` in the files) give no `output.weight`.

use alloc::format;
use alloc::string::String;

/// A GGUF architecture kiln converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (Llama and Mistral).
    Llama,
    /// `qwen2`.
    Qwen2,
    /// `qwen3`.
    Qwen3,
    /// `qwen3moe`.
    Qwen3Moe,
    /// `gemma3` (text only).
    Gemma3,
    /// `phi3`.
    Phi3,
}

/// The Hugging Face `architectures[0]` classes kiln converts, so that a client can check a
/// directory's `config.json` before uploading it.
pub const SUPPORTED: &[&str] = &[
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
];

impl Arch {
    /// The architecture of an HF class in [`SUPPORTED`].
    #[must_use]
    pub fn from_class(class: &str) -> Option<Self> {
        Some(match class {
            "LlamaForCausalLM" | "MistralForCausalLM" => Self::Llama,
            "Qwen2ForCausalLM" => Self::Qwen2,
            "Qwen3ForCausalLM" => Self::Qwen3,
            "Qwen3MoeForCausalLM" => Self::Qwen3Moe,
            "Gemma3ForCausalLM" => Self::Gemma3,
            "Phi3ForCausalLM" => Self::Phi3,
            _ => return None,
        })
    }

    /// `general.architecture`, also the prefix of its hyper-parameter keys.
    #[must_use]
    pub const fn gguf_name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Qwen3Moe => "qwen3moe",
            Self::Gemma3 => "gemma3",
            Self::Phi3 => "phi3",
        }
    }

    /// Whether `q_proj`/`k_proj` rows are permuted (llama.cpp's llama graph uses interleaved
    /// RoPE; HF stores rotate-half).
    #[must_use]
    pub const fn permutes_qk(self) -> bool {
        matches!(self, Self::Llama)
    }

    /// Whether `*norm.weight` tensors get `+1` (Gemma stores the scale as an offset).
    #[must_use]
    pub const fn norm_plus_one(self) -> bool {
        matches!(self, Self::Gemma3)
    }

    /// Whether per-expert tensors are stacked.
    #[must_use]
    pub const fn is_moe(self) -> bool {
        matches!(self, Self::Qwen3Moe)
    }
}

/// What a tensor is, for shape checks and transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `token_embd` — `[vocab, n_embd]`.
    TokenEmbd,
    /// `output` (`lm_head`) — `[vocab, n_embd]`.
    Output,
    /// A norm over the embedding (`output_norm`, `attn_norm`, `ffn_norm`, …) — `[n_embd]`.
    Norm,
    /// `attn_q` — `[n_head·head_dim, n_embd]`.
    Q,
    /// `attn_k` — `[n_head_kv·head_dim, n_embd]`.
    K,
    /// `attn_v` — `[n_head_kv·head_dim, n_embd]`.
    V,
    /// `attn_output` — `[n_embd, n_head·head_dim]`.
    O,
    /// `attn_q_norm` / `attn_k_norm` — `[head_dim]`.
    HeadNorm,
    /// Phi-3's fused `attn_qkv` — `[(n_head + 2·n_head_kv)·head_dim, n_embd]`.
    Qkv,
    /// `ffn_gate` / `ffn_up` — `[n_ff, n_embd]`.
    GateUp,
    /// `ffn_down` — `[n_embd, n_ff]`.
    Down,
    /// Phi-3's fused `gate_up_proj` (→ `ffn_up`) — `[2·n_ff, n_embd]`.
    FusedGateUp,
    /// MoE router `ffn_gate_inp` — `[n_expert, n_embd]`.
    GateInp,
    /// One expert's `gate_proj` (0), `up_proj` (1) or `down_proj` (2) of expert `.1`.
    Expert(u8, u64),
}

/// An HF tensor name, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// GGUF name (for an expert tensor: the stacked tensor's name).
    pub name: String,
    /// The block (layer) index, if any.
    pub bid: Option<u64>,
    /// What it is.
    pub kind: Kind,
    /// Whether it is a `.bias`.
    pub bias: bool,
}

/// Expert stack names in the order the reference writes them once a layer is complete.
pub const EXPERT_ORDER: [(u8, &str); 3] = [(2, "ffn_down_exps"), (0, "ffn_gate_exps"), (1, "ffn_up_exps")];

/// What the table says of an HF tensor name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Written under this name.
    Tensor(Mapped),
    /// Dropped, as the reference drops it (`rotary_emb.inv_freq`, Gemma's `lm_head`).
    Drop,
    /// Not a tensor of this architecture.
    Unknown,
}

/// Maps an HF tensor name (already without `language_model.`).
#[must_use]
pub fn map_name(arch: Arch, hf: &str) -> Mapping {
    match try_map(arch, hf) {
        Ok(Some(m)) => Mapping::Tensor(m),
        Ok(None) => Mapping::Drop,
        Err(()) => Mapping::Unknown,
    }
}

fn try_map(arch: Arch, hf: &str) -> Result<Option<Mapped>, ()> {
    if hf.ends_with(".rotary_emb.inv_freq") || hf.ends_with(".attention.masked_bias") || hf.ends_with(".attention.bias")
    {
        return Ok(None);
    }
    let (base, bias) = if let Some(b) = hf.strip_suffix(".weight") {
        (b, false)
    } else if let Some(b) = hf.strip_suffix(".bias") {
        (b, true)
    } else {
        return Err(());
    };
    let top = |name: &str, kind| Ok(Some(Mapped { name: suffixed(name, bias), bid: None, kind, bias }));
    match base {
        "model.embed_tokens" => return top("token_embd", Kind::TokenEmbd),
        "model.norm" => return top("output_norm", Kind::Norm),
        "lm_head" if arch == Arch::Gemma3 => return Ok(None),
        "lm_head" => return top("output", Kind::Output),
        _ => {}
    }
    let rest = base.strip_prefix("model.layers.").ok_or(())?;
    let (bid, sub) = rest.split_once('.').ok_or(())?;
    if bid.is_empty() || !bid.bytes().all(|b| b.is_ascii_digit()) || (bid.len() > 1 && bid.starts_with('0')) {
        return Err(());
    }
    let bid: u64 = bid.parse().map_err(|_| ())?;
    let qk_norm = matches!(arch, Arch::Qwen3 | Arch::Qwen3Moe | Arch::Gemma3);
    let (name, kind) = match sub {
        "input_layernorm" => ("attn_norm", Kind::Norm),
        "post_attention_layernorm" if arch == Arch::Gemma3 => ("post_attention_norm", Kind::Norm),
        "post_attention_layernorm" => ("ffn_norm", Kind::Norm),
        "pre_feedforward_layernorm" if arch == Arch::Gemma3 => ("ffn_norm", Kind::Norm),
        "post_feedforward_layernorm" if arch == Arch::Gemma3 => ("post_ffw_norm", Kind::Norm),
        "self_attn.q_proj" if arch != Arch::Phi3 => ("attn_q", Kind::Q),
        "self_attn.k_proj" if arch != Arch::Phi3 => ("attn_k", Kind::K),
        "self_attn.v_proj" if arch != Arch::Phi3 => ("attn_v", Kind::V),
        "self_attn.qkv_proj" if arch == Arch::Phi3 => ("attn_qkv", Kind::Qkv),
        "self_attn.o_proj" => ("attn_output", Kind::O),
        "self_attn.q_norm" if qk_norm => ("attn_q_norm", Kind::HeadNorm),
        "self_attn.k_norm" if qk_norm => ("attn_k_norm", Kind::HeadNorm),
        "mlp.gate_proj" if arch != Arch::Phi3 => ("ffn_gate", Kind::GateUp),
        "mlp.up_proj" if arch != Arch::Phi3 => ("ffn_up", Kind::GateUp),
        "mlp.gate_up_proj" if arch == Arch::Phi3 => ("ffn_up", Kind::FusedGateUp),
        "mlp.down_proj" => ("ffn_down", Kind::Down),
        "mlp.gate" if arch.is_moe() => ("ffn_gate_inp", Kind::GateInp),
        _ => {
            let (e, which) = expert(arch, sub)?;
            let stack = EXPERT_ORDER.iter().find(|(w, _)| *w == which).map_or("", |(_, n)| *n);
            if bias {
                return Err(());
            }
            return Ok(Some(Mapped {
                name: format!("blk.{bid}.{stack}.weight"),
                bid: Some(bid),
                kind: Kind::Expert(which, e),
                bias,
            }));
        }
    };
    Ok(Some(Mapped { name: format!("blk.{bid}.{}", suffixed(name, bias)), bid: Some(bid), kind, bias }))
}

/// `mlp.experts.{e}.{gate,up,down}_proj` → (e, 0/1/2).
fn expert(arch: Arch, sub: &str) -> Result<(u64, u8), ()> {
    if !arch.is_moe() {
        return Err(());
    }
    let rest = sub.strip_prefix("mlp.experts.").ok_or(())?;
    let (e, w) = rest.split_once('.').ok_or(())?;
    if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) || (e.len() > 1 && e.starts_with('0')) {
        return Err(());
    }
    let e = e.parse().map_err(|_| ())?;
    let which = match w {
        "gate_proj" => 0,
        "up_proj" => 1,
        "down_proj" => 2,
        _ => return Err(()),
    };
    Ok((e, which))
}

fn suffixed(name: &str, bias: bool) -> String {
    format!("{name}.{}", if bias { "bias" } else { "weight" })
}
