//! Hugging Face model directories → GGUF, as llama.cpp's `convert_hf_to_gguf.py` (llama-cpp-python
//! 0.3.36) makes them. Pure: the server reads the files and hands their bytes (small files) or
//! headers (safetensors shards) here, and gets back the GGUF's metadata and, per output tensor,
//! a recipe of source byte ranges and element operations, which it streams.
//!
//! Flow: [`config::parse`] (`config.json` → architecture + hyper-parameters) →
//! [`vocab::vocab`] (tokenizer files → `tokenizer.*` and `general.sampling.*` keys) →
//! [`safetensors::parse`] per shard → [`plan::plan`] (tensor names, shapes, types, transforms,
//! key order) → a [`plan::Conversion`].
//!
//! | module | owns |
//! |---|---|
//! | [`arch`] | the architecture table: HF class → GGUF arch, tensor names, transforms |
//! | [`config`] | `config.json` with transformers' class defaults |
//! | [`safetensors`] | the bounded safetensors header and index readers |
//! | [`plan`] | the conversion: metadata in the reference's order, output tensors and their recipes |
//! | [`vocab`] | tokenizers: BPE (`tokenizer.json`), SentencePiece (`tokenizer.model`), Llama HF |
//! | [`spm`] | the bounded `tokenizer.model` (protobuf) reader |

use alloc::string::String;

use crate::gguf::Value;

pub mod arch;
pub mod config;
pub mod plan;
pub mod safetensors;
pub mod spm;
pub mod vocab;

/// One metadata key/value pair, in file order.
pub type Kv = (String, Value);

/// The small files of a model directory a conversion reads, by their name in the directory.
/// `None` where the directory has no such file.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFiles<'a> {
    /// `config.json` (required).
    pub config: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer_json: Option<&'a [u8]>,
    /// `tokenizer_config.json`.
    pub tokenizer_config: Option<&'a [u8]>,
    /// `tokenizer.model` (SentencePiece).
    pub tokenizer_model: Option<&'a [u8]>,
    /// `generation_config.json`.
    pub generation_config: Option<&'a [u8]>,
    /// `added_tokens.json`.
    pub added_tokens: Option<&'a [u8]>,
    /// `special_tokens_map.json`.
    pub special_tokens_map: Option<&'a [u8]>,
    /// `chat_template.jinja`.
    pub chat_template_jinja: Option<&'a [u8]>,
    /// `chat_template.json`.
    pub chat_template_json: Option<&'a [u8]>,
}

impl TextFiles<'_> {
    /// The directory names [`TextFiles`] reads, so that a reader loads just these.
    pub const NAMES: &'static [&'static str] = &[
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "generation_config.json",
        "added_tokens.json",
        "special_tokens_map.json",
        "chat_template.jinja",
        "chat_template.json",
    ];
}

/// Why a directory cannot be converted. Every message names the file and the fault.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// `config.json` is missing, not JSON, or lacks a needed field; or the architecture is not
    /// supported.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A safetensors header or index is malformed.
    #[error(transparent)]
    Safetensors(#[from] safetensors::SafetensorsError),
    /// A tokenizer file is unreadable.
    #[error(transparent)]
    Vocab(#[from] vocab::VocabError),
    /// The tensors disagree with the configuration (missing, wrong shape, unmapped name).
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
}
