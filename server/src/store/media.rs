//! Media types of a manifest's layers, its config and the manifest itself: the vocabulary
//! Ollama's store and registries use, in one place for the writers (create) and readers (show).

/// The manifest itself.
pub const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config blob.
pub const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Main GGUF weights.
pub const MODEL: &str = "application/vnd.ollama.image.model";
/// Vision/audio projector.
pub const PROJECTOR: &str = "application/vnd.ollama.image.projector";
/// LoRA adapter.
pub const ADAPTER: &str = "application/vnd.ollama.image.adapter";
/// Prompt template.
pub const TEMPLATE: &str = "application/vnd.ollama.image.template";
/// Legacy template.
pub const PROMPT: &str = "application/vnd.ollama.image.prompt";
/// System prompt.
pub const SYSTEM: &str = "application/vnd.ollama.image.system";
/// License text.
pub const LICENSE: &str = "application/vnd.ollama.image.license";
/// Parameters JSON.
pub const PARAMS: &str = "application/vnd.ollama.image.params";
/// Messages JSON.
pub const MESSAGES: &str = "application/vnd.ollama.image.messages";
