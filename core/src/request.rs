//! Wire types of every endpoint (`shared/spec/ollama-api.md` §2): field names and optionality as
//! Ollama's `api/types.go`. Unknown fields are ignored, so old clients that still send `name` or
//! `modelfile` decode fine. Response fields are declared in the Go structs' order, since that is
//! the order Go's encoder writes them in; maps (`model_info`) are `BTreeMap`s, sorted as Go sorts
//! map keys.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `license`: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum License {
    /// One license text.
    One(String),
    /// Several license texts, one layer each.
    Many(Vec<String>),
}

/// A canned conversation message (`api.Message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool` (lower-cased on decode by the validator).
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Model reasoning, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64 images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Tool calls, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub tool_calls: Option<Vec<Value>>,
    /// Tool name for a `tool` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Tool call id for a `tool` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// `POST /api/create` (`api.CreateRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRequest {
    /// Target name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Deprecated alias of `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Existing model to derive from; wins over `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `{file name: digest}` of uploaded blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// `{file name: digest}` of LoRA adapter blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapters: Option<BTreeMap<String, String>>,
    /// Go template text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// License text(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    /// Default runtime options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub parameters: Option<Map<String, Value>>,
    /// Canned conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// Target quantization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantize: Option<String>,
    /// Deprecated alias of `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Stream NDJSON (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Built-in chat renderer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// Built-in output parser name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parser: Option<String>,
    /// Minimum Ollama version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// Config metadata overrides (remote stubs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub info: Option<Map<String, Value>>,
    /// Upstream for a remote stub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<String>,
    /// Draft model files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_files: Option<BTreeMap<String, String>>,
    /// Draft quantization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_quantize: Option<String>,
    /// kiln extension: an uploaded importance matrix (`sha256:…`, either format `llama-imatrix`
    /// writes) to quantize with, as `llama-quantize --imatrix`. Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imatrix: Option<String>,
    /// kiln extension, `llama-quantize --include-weights`: only the importance matrix's entries
    /// whose name contains one of these strings are used. Needs `imatrix`; not with
    /// `imatrix_exclude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imatrix_include: Option<Vec<String>>,
    /// kiln extension, `llama-quantize --exclude-weights`: the importance matrix's entries whose
    /// name contains one of these strings are dropped. Needs `imatrix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imatrix_exclude: Option<Vec<String>>,
    /// kiln extension, `llama-quantize --output-tensor-type`: the type of `output.weight` (with
    /// tied embeddings, of `token_embd.weight`). Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tensor_type: Option<String>,
    /// kiln extension, `llama-quantize --token-embedding-type`: the type of `token_embd.weight`,
    /// used as given. Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_embedding_type: Option<String>,
    /// kiln extension, `llama-quantize --tensor-type`, in order: `"PATTERN=TYPE"` entries, the
    /// pattern a regular expression (lower-cased) searched in each tensor name; the first match
    /// wins. Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_types: Option<Vec<String>>,
    /// kiln extension, `llama-quantize --pure`: every tensor the file type's default type, no
    /// mixture rules. Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pure: Option<bool>,
    /// kiln extension, `llama-quantize --leave-output-tensor`: `output.weight` is not quantized.
    /// Needs `quantize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_output_tensor: Option<bool>,
}

/// `POST /api/show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShowRequest {
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Deprecated alias of `model`.
    #[serde(default)]
    pub name: Option<String>,
    /// Show arrays in `model_info` in full.
    #[serde(default)]
    pub verbose: Option<bool>,
}

/// `DELETE /api/delete`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteRequest {
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Deprecated alias of `model`.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /api/copy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CopyRequest {
    /// Existing model.
    #[serde(default)]
    pub source: String,
    /// New name.
    #[serde(default)]
    pub destination: String,
}

/// `POST /api/pull` and `POST /api/push` (`api.PullRequest`, `api.PushRequest`: the same fields;
/// `shared/spec/ollama-registry.md` §1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryRequest {
    /// `[host[:port]/][namespace/]model[:tag]`; the host is the registry.
    #[serde(default)]
    pub model: Option<String>,
    /// Deprecated alias of `model` (the Go CLI still sends it).
    #[serde(default)]
    pub name: Option<String>,
    /// Plain `http` for every registry request.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// Accepted and ignored, as Ollama does: credentials come from the server's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Accepted and ignored, as Ollama does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Stream NDJSON (default true).
    #[serde(default)]
    pub stream: Option<bool>,
}

/// A checked [`RegistryRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// The model, which also names the registry and repository.
    pub name: crate::ModelName,
    /// Plain `http`.
    pub insecure: bool,
    /// NDJSON (else one object).
    pub stream: bool,
}

impl RegistryRequest {
    /// The name (`model`, else `name`), parsed, with the flags.
    ///
    /// # Errors
    /// [`crate::Error::ModelRequired`] when neither is given, [`crate::Error::InvalidModelName`]
    /// when the name does not parse (a part with `/`, `..`, a bad character, too long).
    pub fn target(&self) -> Result<RegistryTarget, crate::Error> {
        let raw = [&self.model, &self.name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .ok_or(crate::Error::ModelRequired)?;
        let name = crate::ModelName::parse(raw).ok_or(crate::Error::InvalidModelName)?;
        Ok(RegistryTarget { name, insecure: self.insecure.unwrap_or(false), stream: self.stream.unwrap_or(true) })
    }
}

/// `details` of `/api/tags` and `/api/show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelDetails {
    /// `from` of the model layer, or empty.
    pub parent_model: String,
    /// Container format, `gguf`.
    pub format: String,
    /// Architecture of the first model layer.
    pub family: String,
    /// Architectures of every model layer.
    pub families: Option<Vec<String>>,
    /// Human parameter count, e.g. `8.0B`.
    pub parameter_size: String,
    /// File type name, e.g. `Q4_K_M`.
    pub quantization_level: String,
    /// `<arch>.context_length`, left out when 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// `<arch>.embedding_length`, left out when 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_length: Option<u64>,
}

/// One entry of `GET /api/tags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListModel {
    /// Short display name.
    pub name: String,
    /// Same as `name`.
    pub model: String,
    /// Manifest mtime, RFC 3339.
    pub modified_at: String,
    /// Sum of layer sizes plus the config size.
    pub size: u64,
    /// Hex SHA-256 of the manifest bytes.
    pub digest: String,
    /// Details from the config blob.
    pub details: ModelDetails,
}

/// `GET /api/tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListResponse {
    /// Models, newest first.
    pub models: Vec<ListModel>,
}

/// One entry of `show`'s `tensors` (`api.Tensor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShowTensor {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// ggml type name, e.g. `Q4_K`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Dimensions, innermost first.
    pub shape: Vec<u64>,
}

/// `POST /api/show` (`api.ShowResponse`). Keys Ollama leaves out when empty are `Option`s or
/// skipped when empty; `template`, `details`, `model_info` and `modified_at` are always sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShowResponse {
    /// License texts, joined with `\n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// A Modelfile that recreates the model.
    pub modelfile: String,
    /// Parameters, one `key value` per line (key padded to 30, value in Go `%#v` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// The prompt template (`{{ .Prompt }}` when the model has none).
    pub template: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Format, family, sizes (no context or embedding length).
    pub details: ModelDetails,
    /// Canned messages, role and content only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// GGUF metadata without `general.name` and `tokenizer.chat_template`, plus
    /// `general.parameter_count`; arrays over 5 elements are `[]` unless `verbose`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub model_info: BTreeMap<String, Value>,
    /// The same for the first projector (vision models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub projector_info: Option<BTreeMap<String, Value>>,
    /// Tensor names, types and shapes of the model layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<ShowTensor>>,
    /// `completion`, `tools`, `insert`, `vision`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Manifest modification time, RFC 3339 with nanoseconds as Go prints it.
    pub modified_at: String,
}

/// `GET /api/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionResponse {
    /// The Ollama API version kiln speaks.
    pub version: String,
    /// kiln's own version (Ollama has no such key; its clients ignore it).
    pub kiln: String,
}

/// Where creates quantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QuantizerBackend {
    /// A GPU that passed the start-up self-test.
    Gpu,
    /// The CPU pool.
    Cpu,
}

/// What `GET /api/kiln/info` reports about the quantizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuantizerInfo {
    /// `gpu` or `cpu`: where creates quantize.
    pub backend: QuantizerBackend,
    /// The GPU adapter that ran the self-test, if any (also when it failed); `null` otherwise.
    pub adapter: Option<String>,
    /// Its driver.
    pub driver: Option<String>,
    /// `passed`, `failed: …`, or `not run: …` (and why).
    pub self_test: String,
    /// CPU quantizer threads.
    pub threads: usize,
    /// The tensor types quantized on the GPU (when `backend` is `gpu`; empty otherwise): every
    /// other type runs on the CPU.
    #[serde(default)]
    pub gpu_types: Vec<String>,
    /// Those of `gpu_types` that also run on the GPU with an importance matrix; the others'
    /// weighted tensors run on the CPU.
    #[serde(default)]
    pub gpu_weighted_types: Vec<String>,
}

/// `GET /api/kiln/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KilnInfo {
    /// Which quantizer runs.
    pub quantizer: QuantizerInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn show_response_keeps_ollamas_keys_and_order() {
        let mut r = ShowResponse {
            modelfile: "FROM m".into(),
            template: "{{ .Prompt }}".into(),
            details: ModelDetails { format: "gguf".into(), ..ModelDetails::default() },
            capabilities: vec!["completion".into()],
            modified_at: "2026-08-20T10:11:12.5+02:00".into(),
            ..ShowResponse::default()
        };
        // Empty keys are left out, except the ones Ollama always sends; `families` is `null`.
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"modelfile":"FROM m","template":"{{ .Prompt }}","details":{"parent_model":"","format":"gguf","family":"","families":null,"parameter_size":"","quantization_level":""},"model_info":{},"capabilities":["completion"],"modified_at":"2026-08-20T10:11:12.5+02:00"}"#
        );
        r.license = Some("MIT".into());
        r.parameters = Some("stop \"x\"".into());
        r.system = Some("s".into());
        r.messages = vec![Message { role: "user".into(), content: "hi".into(), ..Message::default() }];
        r.model_info.insert("z.key".into(), Value::from(1));
        r.model_info.insert("a.key".into(), Value::from(2));
        r.projector_info = Some(BTreeMap::new());
        r.tensors = Some(vec![ShowTensor { name: "t".into(), ty: "F16".into(), shape: vec![2, 3] }]);
        let s = serde_json::to_string(&r).unwrap();
        let keys = [
            "license",
            "modelfile",
            "parameters",
            "template",
            "system",
            "details",
            "messages",
            "model_info",
            "projector_info",
            "tensors",
            "capabilities",
            "modified_at",
        ];
        let at: Vec<usize> = keys.iter().map(|k| s.find(&alloc::format!("\"{k}\":")).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert!(s.contains(r#""messages":[{"role":"user","content":"hi"}]"#), "{s}");
        assert!(s.contains(r#""model_info":{"a.key":2,"z.key":1}"#), "{s}");
        assert!(s.contains(r#""tensors":[{"name":"t","type":"F16","shape":[2,3]}]"#), "{s}");
        let back: ShowResponse = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn registry_request_target() {
        let r: RegistryRequest = serde_json::from_str(r#"{"model":"127.0.0.1:5000/ns/m:q4","insecure":true}"#).unwrap();
        let t = r.target().unwrap();
        assert_eq!(alloc::format!("{}", t.name), "127.0.0.1:5000/ns/m:q4");
        assert!(t.insecure && t.stream);
        let r: RegistryRequest = serde_json::from_str(r#"{"name":"m","stream":false}"#).unwrap();
        let t = r.target().unwrap();
        assert_eq!(alloc::format!("{}", t.name), "registry.ollama.ai/library/m:latest");
        assert!(!t.insecure && !t.stream);
        let blank: RegistryRequest = serde_json::from_str(r#"{"model":" ","name":""}"#).unwrap();
        assert_eq!(blank.target(), Err(crate::Error::ModelRequired));
        for bad in ["h/../m", "h/ns/m/x:t", "h/ns/.m", "a b"] {
            let r = RegistryRequest { model: Some(bad.into()), ..RegistryRequest::default() };
            assert_eq!(r.target(), Err(crate::Error::InvalidModelName), "{bad}");
        }
    }

    #[test]
    fn version_and_info_shapes() {
        let v = VersionResponse { version: "0.33.0".into(), kiln: "0.1.0".into() };
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"version":"0.33.0","kiln":"0.1.0"}"#);
        let info = KilnInfo {
            quantizer: QuantizerInfo {
                backend: QuantizerBackend::Cpu,
                adapter: None,
                driver: None,
                self_test: "not run: --device cpu".into(),
                threads: 4,
                gpu_types: vec![],
                gpu_weighted_types: vec![],
            },
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"quantizer":{"backend":"cpu","adapter":null,"driver":null,"self_test":"not run: --device cpu","threads":4,"gpu_types":[],"gpu_weighted_types":[]}}"#
        );
        assert_eq!(serde_json::to_value(QuantizerBackend::Gpu).unwrap(), Value::from("gpu".to_owned()));
    }
}
