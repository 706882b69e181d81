//! `GET /api/openapi.json`: the API description, generated from kiln-core's wire types (utoipa
//! schemas derived under its `openapi` feature) plus the response-only shapes below. The
//! schemathesis run in the test command holds the server to it.

use crate::quantize::backend::QuantizerInfo;
use axum::Json;
use kiln_core::event::ProgressEvent;
use kiln_core::request::{
    CopyRequest, CreateRequest, DeleteRequest, License, ListModel, ListResponse, Message, ModelDetails, ShowRequest,
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Every error: `{"error": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong, as Ollama's clients show it.
    pub error: String,
}

/// The non-streaming create reply.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// `success`.
    pub status: String,
}

/// `GET /api/version`.
#[derive(Serialize, ToSchema)]
pub struct VersionResponse {
    /// The Ollama API version kiln speaks.
    pub version: String,
    /// kiln's own version.
    pub kiln: String,
}

/// A message as `show` lists it.
#[derive(Serialize, ToSchema)]
pub struct ShownMessage {
    /// Role.
    pub role: String,
    /// Text.
    pub content: String,
}

/// `POST /api/show`.
#[derive(Serialize, ToSchema)]
pub struct ShowResponse {
    /// License texts, joined.
    pub license: Option<String>,
    /// A Modelfile that recreates the model.
    pub modelfile: String,
    /// Parameters, one `key value` per line.
    pub parameters: Option<String>,
    /// The prompt template.
    pub template: String,
    /// The system prompt.
    pub system: Option<String>,
    /// Format, family, sizes.
    pub details: ModelDetails,
    /// Canned messages.
    pub messages: Option<Vec<ShownMessage>>,
    /// GGUF metadata (`general.*`, `<arch>.*`, tokenizer summaries).
    #[schema(value_type = Object)]
    pub model_info: serde_json::Value,
    /// The projector's metadata, for vision models.
    #[schema(value_type = Option<Object>)]
    pub projector_info: Option<serde_json::Value>,
    /// Tensor names, types and shapes (`verbose` only).
    #[schema(value_type = Option<Vec<Object>>)]
    pub tensors: Option<Vec<serde_json::Value>>,
    /// `completion`, `tools`, `insert`, `vision`, `thinking`.
    pub capabilities: Vec<String>,
    /// Manifest modification time (RFC 3339).
    pub modified_at: String,
}

/// `GET /api/kiln/info`.
#[derive(Serialize, ToSchema)]
pub struct KilnInfo {
    /// Which quantizer runs.
    pub quantizer: QuantizerInfo,
}

/// The description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kiln",
        description = "Ollama's model-creation API (create, blobs, tags, show, copy, delete), served by kiln."
    ),
    paths(
        crate::api::version::root,
        crate::api::version::version,
        crate::api::version::info,
        crate::api::blobs::head,
        crate::api::blobs::upload,
        crate::api::create::create,
        crate::api::models::tags,
        crate::api::models::show,
        crate::api::models::copy,
        crate::api::models::delete,
        openapi_json,
    ),
    components(schemas(
        CreateRequest,
        ShowRequest,
        CopyRequest,
        DeleteRequest,
        License,
        Message,
        ModelDetails,
        ListModel,
        ListResponse,
        ProgressEvent,
        ErrorResponse,
        StatusResponse,
        VersionResponse,
        ShowResponse,
        ShownMessage,
        KilnInfo,
        QuantizerInfo
    ))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "This description", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
