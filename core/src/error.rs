//! The one error type of kiln-core. Messages match Ollama's wherever clients show them
//! (`shared/spec/ollama-api.md` §4); the HTTP status is a hint the server maps in one place.

use alloc::borrow::Cow;
use alloc::string::String;

/// Characters of request input an error message echoes (a name, a key, a role).
pub const ECHO_CHARS: usize = 64;

/// `s` cut to [`ECHO_CHARS`] characters, with `…` when cut: an error never echoes unbounded
/// input. Clipping a clipped string changes nothing.
#[must_use]
pub fn clip(s: &str) -> Cow<'_, str> {
    clip_to(s, ECHO_CHARS)
}

/// `s` cut to `max` characters, with `…` when cut.
#[must_use]
pub fn clip_to(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((at, _)) if s[at..].chars().ne(core::iter::once('…')) => Cow::Owned(alloc::format!("{}…", &s[..at])),
        _ => Cow::Borrowed(s),
    }
}

/// Characters a longer message (a decoder's or a template parser's, which quote the input)
/// keeps: its start, and its end, where the position is.
const MESSAGE_HEAD: usize = 240;
const MESSAGE_TAIL: usize = 60;

/// A long message cut in the middle.
fn clip_middle(s: &str) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= MESSAGE_HEAD + MESSAGE_TAIL + 1 {
        return Cow::Borrowed(s);
    }
    let head: String = s.chars().take(MESSAGE_HEAD).collect();
    let tail: String = s.chars().skip(n - MESSAGE_TAIL).collect();
    Cow::Owned(alloc::format!("{head}…{tail}"))
}

/// Every validation failure kiln-core can report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An empty body on a JSON endpoint.
    #[error("missing request body")]
    MissingBody,
    /// The body is not valid JSON, or a field has the wrong JSON type.
    #[error("{}", clip_middle(.0))]
    BadJson(String),
    /// `model`/`name` is missing or blank.
    #[error("model is required")]
    ModelRequired,
    /// A create/show/`from` name that does not parse.
    #[error("invalid model name")]
    InvalidModelName,
    /// A delete name that does not parse.
    #[error("name \"{}\" is invalid", clip(.0))]
    InvalidDeleteName(String),
    /// A copy source that does not parse.
    #[error("source \"{}\" is invalid", clip(.0))]
    InvalidSource(String),
    /// A copy destination that does not parse.
    #[error("destination \"{}\" is invalid", clip(.0))]
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
    /// Hugging Face files (`config.json`, a tokenizer) without any weights.
    #[error(
        "no .safetensors files: a Hugging Face import uploads config.json, the tokenizer files and every model*.safetensors shard"
    )]
    SafetensorsMissing,
    /// An importance matrix without a quantization to use it for.
    #[error(
        "imatrix needs quantize: an importance matrix only changes how weights are quantized; add \"quantize\" (e.g. \"q4_K_M\")"
    )]
    ImatrixWithoutQuantize,
    /// A per-tensor control (`tensor_types`, `pure`, …) without a quantization to apply it to.
    #[error(
        "{0} needs quantize: per-tensor controls only change how a model is quantized; add \"quantize\" (e.g. \"q4_K_M\")"
    )]
    ControlWithoutQuantize(&'static str),
    /// `imatrix_include` / `imatrix_exclude` without an importance matrix.
    #[error("{0} needs imatrix: it filters the importance matrix's entries")]
    ImatrixFilterWithoutImatrix(&'static str),
    /// Both `imatrix_include` and `imatrix_exclude` (llama-quantize refuses them together).
    #[error("imatrix_include and imatrix_exclude cannot be used together")]
    ImatrixFilterBoth,
    /// A type name that is no ggml type.
    #[error("{field}: unknown type '{}' - kiln's types are {}", clip(value), crate::quant_controls::KILN_TYPE_NAMES)]
    ControlTypeUnknown {
        /// The field, e.g. `tensor_types[1]`.
        field: String,
        /// The name as sent.
        value: String,
    },
    /// A ggml type llama-quantize cannot write (NVFP4, Q8_K, the integer types, …).
    #[error("{field}: kiln cannot quantize to {ty} - kiln's types are {}", crate::quant_controls::KILN_TYPE_NAMES)]
    ControlTypeUnsupported {
        /// The field, e.g. `output_tensor_type`.
        field: String,
        /// The type's name.
        ty: &'static str,
    },
    /// A `tensor_types` entry that is not `PATTERN=TYPE`.
    #[error("{field}: '{}' is not PATTERN=TYPE (e.g. \"attn_v=q8_0\")", clip(value))]
    TensorTypeMalformed {
        /// The field, e.g. `tensor_types[0]`.
        field: String,
        /// The entry as sent.
        value: String,
    },
    /// A `tensor_types` pattern that does not compile.
    #[error("{field}: '{}' is not a valid regular expression: {}", clip(pattern), clip_middle(reason))]
    TensorTypeRegex {
        /// The field, e.g. `tensor_types[0]`.
        field: String,
        /// The pattern (lower-cased, as matched).
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// PyTorch pickles (`.bin`, `.pth`, `.pt`) instead of safetensors weights.
    #[error(
        "PyTorch checkpoints (.bin, .pth) are not supported: save the model as safetensors (save_pretrained with safe_serialization=True) and upload the model*.safetensors files"
    )]
    PytorchUnsupported,
    /// Safetensors LoRA adapters are not converted.
    #[error(
        "safetensors adapters are not supported by kiln: convert the adapter to GGUF first (llama.cpp's convert_lora_to_gguf.py) and upload the .gguf file"
    )]
    SafetensorsAdapter,
    /// More than one adapter.
    #[error("only one adapter is currently supported")]
    TooManyAdapters,
    /// Remote (cloud) stubs need a registry; kiln has none.
    #[error("remote models are not supported by kiln: '{}'", clip(.0))]
    RemoteUnsupported(String),
    /// Draft models are not supported yet.
    #[error("draft models are not supported by kiln yet")]
    DraftUnsupported,
    /// `draft_quantize` without `draft_files`.
    #[error("--draft-quantize requires a DRAFT model")]
    DraftQuantizeWithoutDraft,
    /// A `parameters` key Ollama does not know.
    #[error("unknown parameter '{}'{hint}", clip(key))]
    UnknownParameter {
        /// The key as sent.
        key: String,
        /// `; did you mean 'x'?` or empty.
        hint: String,
    },
    /// A `parameters` value of the wrong JSON type.
    #[error("invalid value for parameter '{}': expected {expected}, got {}", clip(key), clip_middle(got))]
    ParameterType {
        /// The key as sent.
        key: String,
        /// What the key takes, e.g. `an integer`.
        expected: &'static str,
        /// What was sent, e.g. `a string`.
        got: String,
    },
    /// A message role outside system/user/assistant/tool.
    #[error(
        "invalid role '{}' in message {index}: must be one of \"system\", \"user\", \"assistant\" or \"tool\"",
        clip(role)
    )]
    MessageRole {
        /// The role as sent.
        role: String,
        /// Index of the message in `messages`.
        index: usize,
    },
    /// A template whose actions do not balance.
    #[error("template error: {}", clip_middle(.0))]
    Template(String),
    /// A `quantize` value outside the supported vocabulary.
    #[error("unsupported quantization type {} - supported types are {}", clip(.0), crate::file_type::TARGET_NAMES)]
    UnsupportedQuantization(String),
    /// A tensor whose type needs an importance matrix (IQ1/IQ2 types, IQ3_XXS, Q2_K in a Q2_K_S
    /// file), with none given: llama-quantize refuses the whole quantization.
    #[error(
        "{} would be quantized to {ty}, which needs an importance matrix: create an importance matrix with llama-imatrix and pass it as \"imatrix\"",
        clip(tensor)
    )]
    ImatrixRequired {
        /// The first such tensor, in output order.
        tensor: String,
        /// Its type.
        ty: &'static str,
    },
    /// The importance matrix given has no entry (after `imatrix_include`/`imatrix_exclude`) for
    /// a tensor whose type needs one; llama-quantize bails out there, leaving a partial file.
    #[error(
        "the importance matrix has no entry for {} (after imatrix_include/imatrix_exclude), which is quantized to {ty} and needs one: create an importance matrix with llama-imatrix from this model and pass it as \"imatrix\", keeping that tensor's entry",
        clip(tensor)
    )]
    ImatrixEntryMissing {
        /// The first such tensor, in output order.
        tensor: String,
        /// Its type.
        ty: &'static str,
    },
    /// A tensor whose rows do not fit its type, which has no fallback type (Q1_0).
    #[error(
        "{}: {ty} needs rows that are a multiple of {block} and has no fallback type; the tensor's rows are {width} wide",
        clip(tensor)
    )]
    NoFallback {
        /// The tensor.
        tensor: String,
        /// The type it would get.
        ty: &'static str,
        /// The type's block size.
        block: u64,
        /// The tensor's row width.
        width: u64,
    },
    /// A model that does not exist (show/`from`).
    #[error("model '{}' not found", clip(.0))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_input_is_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        let c = clip(&long);
        assert_eq!(c.chars().count(), ECHO_CHARS + 1);
        assert!(c.ends_with('…'));
        assert_eq!(clip(&c), c);
        let e = Error::InvalidDeleteName("x".repeat(1 << 20)).to_string();
        assert_eq!(e, alloc::format!("name \"{}…\" is invalid", "x".repeat(ECHO_CHARS)));
        let e = Error::BadJson(alloc::format!("invalid type: string \"{}\" at line 1 column 9", "y".repeat(1 << 20)));
        assert!(e.to_string().len() < 400 && e.to_string().ends_with("at line 1 column 9"), "{e}");
        assert_eq!(Error::ModelNotFound("m:latest".into()).to_string(), "model 'm:latest' not found");
    }
}
