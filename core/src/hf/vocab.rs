//! Tokenizer files → the `tokenizer.*` and `general.sampling.*` keys.

use alloc::vec::Vec;

use super::Kv;

/// Why a tokenizer file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// Placeholder until the reader lands.
    #[error("tokenizer: not supported yet")]
    Unsupported,
}

/// What the tokenizer files contribute to the GGUF.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    /// `general.sampling.*` keys from `generation_config.json`, in the reference's order.
    pub sampling: Vec<Kv>,
    /// `tokenizer.*` keys, in the reference's order.
    pub tokenizer: Vec<Kv>,
    /// Tokens written (`tokenizer.ggml.tokens`' length): gemma3 cuts its embedding rows to it.
    pub n_tokens: u64,
}
