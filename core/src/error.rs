//! The one error type of kiln-core. Messages match Ollama's wherever clients show them
//! (`shared/spec/ollama-api.md` §4); the HTTP status is a hint the server maps in one place.

use alloc::string::String;

/// Every validation failure kiln-core can report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An empty body on a JSON endpoint.
    #[error("missing request body")]
    MissingBody,
    /// The body is not valid JSON, or a field has the wrong JSON type.
    #[error("{0}")]
    BadJson(String),
    /// `model`/`name` is missing or blank.
    #[error("model is required")]
    ModelRequired,
    /// A create/show/`from` name that does not parse.
    #[error("invalid model name")]
    InvalidModelName,
    /// A delete name that does not parse.
    #[error("name \"{0}\" is invalid")]
    InvalidDeleteName(String),
    /// A copy source that does not parse.
    #[error("source \"{0}\" is invalid")]
    InvalidSource(String),
    /// A copy destination that does not parse.
    #[error("destination \"{0}\" is invalid")]
    InvalidDestination(String),
    /// A digest that is not `sha256:` + 64 hex digits.
    #[error("invalid digest format")]
    InvalidDigest,
    /// A `files`/`adapters` key that is not a clean relative path.
    #[error("file path must be relative")]
    FilePathNotRelative,
    /// Neither `from` nor `files`.
    #[error("neither 'from' or 'files' was specified")]
    NeitherFromNorFiles,
    /// `files` is empty or holds nothing kiln can import.
    #[error("unknown type")]
    UnknownType,
    /// Safetensors import is out of kiln's scope.
    #[error(
        "safetensors import is not supported by kiln: convert the model to GGUF first (llama.cpp's convert_hf_to_gguf.py) and upload the .gguf file"
    )]
    SafetensorsUnsupported,
    /// More than one adapter.
    #[error("only one adapter is currently supported")]
    TooManyAdapters,
    /// Remote (cloud) stubs need a registry; kiln has none.
    #[error("remote models are not supported by kiln: '{0}'")]
    RemoteUnsupported(String),
    /// Draft models are not supported yet.
    #[error("draft models are not supported by kiln yet")]
    DraftUnsupported,
    /// `draft_quantize` without `draft_files`.
    #[error("--draft-quantize requires a DRAFT model")]
    DraftQuantizeWithoutDraft,
    /// A `parameters` key Ollama does not know.
    #[error("unknown parameter '{key}'{hint}")]
    UnknownParameter {
        /// The key as sent.
        key: String,
        /// `; did you mean 'x'?` or empty.
        hint: String,
    },
    /// A `parameters` value of the wrong JSON type.
    #[error("invalid value for parameter '{key}': expected {expected}, got {got}")]
    ParameterType {
        /// The key as sent.
        key: String,
        /// What the key takes, e.g. `an integer`.
        expected: &'static str,
        /// What was sent, e.g. `a string`.
        got: String,
    },
    /// A message role outside system/user/assistant/tool.
    #[error("invalid role '{role}' in message {index}: must be one of \"system\", \"user\", \"assistant\" or \"tool\"")]
    MessageRole {
        /// The role as sent.
        role: String,
        /// Index of the message in `messages`.
        index: usize,
    },
    /// A template whose actions do not balance.
    #[error("template error: {0}")]
    Template(String),
    /// A `quantize` value outside the supported vocabulary.
    #[error(
        "unsupported quantization type {0} - supported types are F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K"
    )]
    UnsupportedQuantization(String),
    /// A model that does not exist (show/`from`).
    #[error("model '{0}' not found")]
    ModelNotFound(String),
}

impl Error {
    /// The HTTP status this error is answered with.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ModelNotFound(_) => 404,
            _ => 400,
        }
    }
}
