//! `config.json` → the architecture and its hyper-parameters, with transformers' class defaults.
//!
//! The reference reads `config.json` through `AutoConfig.from_pretrained(...).to_dict()`
//! (transformers 4.57.6), so every attribute of the config class is present even when the file
//! omits it (e.g. `LlamaConfig` always has `head_dim`). [`parse`] reproduces that: the class's
//! defaults, overlaid by the file, `text_config` merged into the top level.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;

use serde_json::{Map, Value as Json, json};

use super::arch::{Arch, SUPPORTED};

/// Why `config.json` cannot be used. Every message names the file, the field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or not an object.
    #[error("config.json: not a JSON object ({0}); re-download the model's config.json")]
    Json(String),
    /// No `architectures` list.
    #[error("config.json: no \"architectures\" list naming the model class (e.g. [\"LlamaForCausalLM\"]); add it")]
    NoArchitecture,
    /// The class is not one kiln converts.
    #[error("config.json: architecture {class:?} is not supported; supported: {}", SUPPORTED.join(", "))]
    Unsupported {
        /// `architectures[0]`.
        class: String,
    },
    /// A field is missing, of the wrong type, or out of range.
    #[error("config.json: \"{field}\" {what}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong and what it must be.
        what: String,
    },
}

/// A parsed `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    /// `architectures[0]` (of `text_config` when it names one), e.g. `"LlamaForCausalLM"`.
    pub class: String,
    /// Its GGUF architecture.
    pub arch: Arch,
    /// The hyper-parameters as transformers' config class has them: class defaults, the file,
    /// then `text_config` merged into the top level.
    pub hparams: Map<String, Json>,
    /// `num_hidden_layers`.
    pub block_count: u64,
    /// `hidden_size`.
    pub n_embd: u64,
    /// `intermediate_size`.
    pub n_ff: u64,
    /// `num_attention_heads`.
    pub n_head: u64,
    /// `num_key_value_heads`.
    pub n_head_kv: u64,
    /// The attention head size: `head_dim`, else `hidden_size / num_attention_heads`.
    pub head_dim: u64,
    /// `vocab_size`.
    pub vocab_size: u64,
}

impl HfConfig {
    /// A hyper-parameter, `None` when absent or `null` (Python's `hparams.get(key)`).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.hparams.get(key).filter(|v| !v.is_null())
    }

    /// The first of `keys` present (even if `null`), as the reference's `find_hparam`.
    #[must_use]
    pub fn find(&self, keys: &[&str]) -> Option<&Json> {
        keys.iter().find_map(|k| self.hparams.get(*k)).filter(|v| !v.is_null())
    }

    /// A non-negative integer hyper-parameter.
    ///
    /// # Errors
    /// [`ConfigError::Field`] when present but not a non-negative integer.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        uint_of(key, self.get(key))
    }

    /// A number hyper-parameter.
    ///
    /// # Errors
    /// [`ConfigError::Field`] when present but not a number.
    pub fn float(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        float_of(key, self.get(key))
    }
}

/// A non-negative integer or `None`, for field `key`.
///
/// # Errors
/// [`ConfigError::Field`] when `v` is not a non-negative integer.
pub fn uint_of(key: &str, v: Option<&Json>) -> Result<Option<u64>, ConfigError> {
    v.map(|v| v.as_u64().ok_or_else(|| field(key, "must be a non-negative integer"))).transpose()
}

/// A number or `None`, for field `key`.
///
/// # Errors
/// [`ConfigError::Field`] when `v` is not a number.
pub fn float_of(key: &str, v: Option<&Json>) -> Result<Option<f64>, ConfigError> {
    v.map(|v| v.as_f64().ok_or_else(|| field(key, "must be a number"))).transpose()
}

fn field(key: &str, what: &str) -> ConfigError {
    ConfigError::Field { field: key.to_owned(), what: what.to_owned() }
}

/// transformers 4.57.6's defaults for the class's attributes the conversion reads.
fn class_defaults(class: &str) -> Json {
    match class {
        "LlamaForCausalLM" => json!({
            "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": 32, "num_attention_heads": 32, "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": null,
            "tie_word_embeddings": false, "attention_bias": false, "mlp_bias": false,
        }),
        "MistralForCausalLM" => json!({
            "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "sliding_window": 4096, "tie_word_embeddings": false,
        }),
        "Qwen2ForCausalLM" => json!({
            "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
            "num_hidden_layers": 32, "num_attention_heads": 32, "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": null,
            "tie_word_embeddings": false, "use_sliding_window": false, "sliding_window": 4096,
            "max_window_layers": 28,
        }),
        "Qwen3ForCausalLM" => json!({
            "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
            "num_hidden_layers": 32, "num_attention_heads": 32, "head_dim": 128,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "rope_scaling": null, "tie_word_embeddings": false, "attention_bias": false,
            "use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 28,
        }),
        "Qwen3MoeForCausalLM" => json!({
            "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
            "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 4,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "rope_scaling": null, "tie_word_embeddings": false, "attention_bias": false,
            "use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 28,
            "decoder_sparse_step": 1, "moe_intermediate_size": 768, "num_experts_per_tok": 8,
            "num_experts": 128, "norm_topk_prob": false, "mlp_only_layers": [],
        }),
        "Gemma3ForCausalLM" => json!({
            "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
            "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
            "head_dim": 256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
            "rope_theta": 1_000_000.0, "rope_local_base_freq": 10000.0, "rope_scaling": null,
            "sliding_window": 4096, "query_pre_attn_scalar": 256,
            "final_logit_softcapping": null, "attn_logit_softcapping": null,
            "tie_word_embeddings": true,
        }),
        "Phi3ForCausalLM" => json!({
            "vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
            "num_hidden_layers": 32, "num_attention_heads": 32, "max_position_embeddings": 4096,
            "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "partial_rotary_factor": 1.0, "rope_scaling": null, "sliding_window": null,
            "tie_word_embeddings": false,
        }),
        _ => json!({}),
    }
}

/// Parses `config.json`.
///
/// # Errors
/// [`ConfigError`]: not JSON, no `architectures`, an unsupported class (the message lists
/// [`SUPPORTED`]), or a needed field missing or mistyped.
pub fn parse(json: &[u8]) -> Result<HfConfig, ConfigError> {
    let raw: Json = serde_json::from_slice(json).map_err(|e| ConfigError::Json(format!("{e}")))?;
    let Json::Object(raw) = raw else {
        return Err(ConfigError::Json("the top level is not an object".to_owned()));
    };
    let first = |v: Option<&Json>| -> Option<String> {
        v.and_then(Json::as_array).and_then(|a| a.first()).and_then(Json::as_str).map(str::to_owned)
    };
    let text = raw.get("text_config").and_then(Json::as_object);
    let class = first(text.and_then(|t| t.get("architectures")))
        .or_else(|| first(raw.get("architectures")))
        .ok_or(ConfigError::NoArchitecture)?;
    let arch = Arch::from_class(&class).ok_or_else(|| ConfigError::Unsupported { class: class.clone() })?;

    let Json::Object(mut hp) = class_defaults(&class) else {
        return Err(ConfigError::Json("internal: class defaults".to_owned()));
    };
    for (k, v) in &raw {
        hp.insert(k.clone(), v.clone());
    }
    // Constructor-derived attributes.
    let num = |hp: &Map<String, Json>, k: &str| uint_of(k, hp.get(k).filter(|v| !v.is_null()));
    let n_head = num(&hp, "num_attention_heads")?.ok_or_else(|| field("num_attention_heads", "is missing; set it"))?;
    if hp.get("num_key_value_heads").is_none_or(Json::is_null) {
        hp.insert("num_key_value_heads".to_owned(), json!(n_head));
    }
    let n_embd = num(&hp, "hidden_size")?.ok_or_else(|| field("hidden_size", "is missing; set it"))?;
    if matches!(class.as_str(), "LlamaForCausalLM" | "MistralForCausalLM")
        && hp.get("head_dim").is_none_or(Json::is_null)
        && n_head > 0
    {
        hp.insert("head_dim".to_owned(), json!(n_embd / n_head));
    }
    if let Some(Json::Object(rs)) = hp.get_mut("rope_scaling")
        && !rs.contains_key("rope_type")
        && let Some(t) = rs.get("type").cloned()
    {
        rs.insert("rope_type".to_owned(), t);
    }
    if class == "Gemma3ForCausalLM"
        && hp.get("use_bidirectional_attention").and_then(Json::as_bool) == Some(true)
        && let Some(sw) = num(&hp, "sliding_window")?
    {
        hp.insert("sliding_window".to_owned(), json!(sw / 2 + 1));
    }
    if let Some(Json::Object(t)) = raw.get("text_config") {
        for (k, v) in t {
            hp.insert(k.clone(), v.clone());
        }
    }

    let need = |k: &str| -> Result<u64, ConfigError> {
        let v = num(&hp, k)?.ok_or_else(|| field(k, "is missing; set it"))?;
        if v == 0 {
            return Err(field(k, "must be positive"));
        }
        Ok(v)
    };
    let block_count = need("num_hidden_layers")?;
    let n_embd = need("hidden_size")?;
    let n_ff = need("intermediate_size")?;
    let n_head = need("num_attention_heads")?;
    let n_head_kv = need("num_key_value_heads")?;
    let vocab_size = need("vocab_size")?;
    if !n_head.is_multiple_of(n_head_kv) {
        return Err(field("num_key_value_heads", "must divide num_attention_heads"));
    }
    let head_dim = match num(&hp, "head_dim")? {
        Some(0) => return Err(field("head_dim", "must be positive")),
        Some(d) => d,
        None if n_embd.is_multiple_of(n_head) => n_embd / n_head,
        None => {
            return Err(field(
                "head_dim",
                "is missing and hidden_size is not a multiple of num_attention_heads; set head_dim",
            ));
        }
    };
    num(&hp, "max_position_embeddings")?;
    for k in ["rms_norm_eps", "rope_theta"] {
        float_of(k, hp.get(k).filter(|v| !v.is_null()))?;
    }
    Ok(HfConfig { class, arch, hparams: hp, block_count, n_embd, n_ff, n_head, n_head_kv, head_dim, vocab_size })
}
