//! `GET /api/tags`, `POST /api/show`, `POST /api/copy`, `DELETE /api/delete`: reading and managing
//! stored models (§2.6–2.9).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kiln_core::error::clip;
use kiln_core::gguf::{Array, Header, Value as GValue};
use kiln_core::request::{
    CopyRequest, DeleteRequest, ListModel, ListResponse, Message, ModelDetails, ShowRequest, ShowResponse, ShowTensor,
};
use kiln_core::{Error, ModelName};
use serde_json::{Map, Value, json};

use super::format_time;
use crate::gguf::read;
use crate::http::error::ApiError;
use crate::http::extract::{self, JsonBody};
use crate::state::AppState;
use crate::store::manifests::StoredManifest;
use crate::store::{ConfigFile, MAX_TEXT_BLOB, Store, media};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(e.to_string()))
}

fn details(store: &Store, m: &StoredManifest) -> ModelDetails {
    let cfg: ConfigFile = store
        .read_small_blob(&m.manifest.config.digest, MAX_TEXT_BLOB)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let parent = m.manifest.layers.iter().find(|l| l.media_type == media::MODEL).map(|l| l.from.clone());
    ModelDetails {
        parent_model: parent.unwrap_or_default(),
        format: cfg.model_format,
        family: cfg.model_family,
        families: cfg.model_families,
        parameter_size: cfg.model_type,
        quantization_level: cfg.file_type,
        context_length: None,
        embedding_length: None,
    }
}

/// `GET /api/tags`: every model, newest first.
///
/// # Errors
/// Only on internal failures.
#[utoipa::path(get, path = "/api/tags", responses((status = 200, description = "Local models", body = ListResponse)))]
pub async fn tags(State(state): State<AppState>) -> Result<Json<ListResponse>, ApiError> {
    let store = state.store.clone();
    let models = blocking(move || {
        let mut all = store.all_manifests();
        all.sort_by_key(|m| {
            std::cmp::Reverse(m.modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
        });
        all.iter()
            .map(|m| ListModel {
                name: m.name.short(),
                model: m.name.short(),
                modified_at: format_time(m.modified),
                size: m.manifest.total_size(),
                digest: crate::store::blobs::digest_of(&m.bytes).hex().to_owned(),
                details: details(&store, m),
            })
            .collect()
    })
    .await?;
    Ok(Json(ListResponse { models }))
}

fn parse_name(raw: Option<&str>) -> Result<ModelName, ApiError> {
    let raw = raw.filter(|s| !s.trim().is_empty()).ok_or(Error::ModelRequired)?;
    ModelName::parse(raw).ok_or_else(|| Error::InvalidModelName.into())
}

fn gguf_to_json(v: &GValue, verbose: bool) -> Value {
    fn f32_json(f: f32) -> Value {
        // Go encodes float32 with float32's shortest digits.
        f.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
    }
    fn text(b: &[u8]) -> Value {
        Value::String(String::from_utf8_lossy(b).into_owned())
    }
    match v {
        GValue::U8(x) => json!(x),
        GValue::I8(x) => json!(x),
        GValue::U16(x) => json!(x),
        GValue::I16(x) => json!(x),
        GValue::U32(x) => json!(x),
        GValue::I32(x) => json!(x),
        GValue::U64(x) => json!(x),
        GValue::I64(x) => json!(x),
        GValue::F32(x) => f32_json(*x),
        GValue::F64(x) => json!(x),
        GValue::Bool(x) => json!(x),
        GValue::Str(s) => text(s),
        GValue::Array(a) if !verbose && a.len() > 5 => json!([]),
        GValue::Array(a) => match a {
            Array::U8(v) => json!(v),
            Array::I8(v) => json!(v),
            Array::U16(v) => json!(v),
            Array::I16(v) => json!(v),
            Array::U32(v) => json!(v),
            Array::I32(v) => json!(v),
            Array::U64(v) => json!(v),
            Array::I64(v) => json!(v),
            Array::F64(v) => json!(v),
            Array::Bool(v) => json!(v),
            Array::F32(v) => Value::Array(v.iter().map(|f| f32_json(*f)).collect()),
            Array::Str(v) => Value::Array(v.iter().map(|s| text(s)).collect()),
        },
    }
}

fn model_info(h: &Header, verbose: bool) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = h
        .kvs
        .iter()
        .filter(|(k, _)| k != "general.name" && k != "tokenizer.chat_template")
        .map(|(k, v)| (k.clone(), gguf_to_json(v, verbose)))
        .collect();
    m.insert("general.parameter_count".into(), json!(h.parameter_count()));
    m
}

fn tensors(h: &Header) -> Vec<ShowTensor> {
    h.tensors
        .iter()
        .map(|t| ShowTensor { name: t.name.clone(), ty: t.ty.name().into(), shape: t.dims.clone() })
        .collect()
}

/// Go's `%#v` for a JSON value as Ollama shows parameters.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => {
            let mut s = String::new();
            kiln_core::gojson::write_f64(&mut s, n.as_f64().unwrap_or(0.0));
            s
        }
        other => other.to_string(),
    }
}

/// Ollama's Modelfile quoting.
fn quote(s: &str) -> String {
    if s.contains('\n') || s.starts_with(' ') || s.ends_with(' ') {
        if s.contains('"') { format!("\"\"\"{s}\"\"\"") } else { format!("\"{s}\"") }
    } else {
        s.to_owned()
    }
}

/// The template Ollama shows for a model without a template layer.
const DEFAULT_TEMPLATE: &str = "{{ .Prompt }}";

/// What `show` reads from a manifest's layers.
#[derive(Default)]
struct Layers {
    /// `FROM <blob>` / `ADAPTER <blob>` lines, in layer order.
    sources: Vec<String>,
    /// The first model layer's GGUF header.
    header: Option<Header>,
    /// The last projector's header (vision models).
    projector: Option<Header>,
    template: Option<String>,
    system: Option<String>,
    licenses: Vec<String>,
    params: Map<String, Value>,
    messages: Vec<Message>,
}

impl Layers {
    fn template(&self) -> &str {
        self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE)
    }

    /// `params` flattened to `(key, value)`, one per array element, as Ollama lists them.
    fn param_values(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.params.iter().flat_map(|(k, v)| match v {
            Value::Array(items) => items.iter().map(|v| (k.as_str(), v)).collect::<Vec<_>>(),
            v => vec![(k.as_str(), v)],
        })
    }
}

/// Reads every layer `show` reports: GGUF headers (an unreadable model layer is a 500, an
/// unreadable projector is left out) and the text/JSON layers.
fn read_layers(store: &Store, m: &StoredManifest) -> Result<Layers, ApiError> {
    let text = |d: &kiln_core::Digest| {
        store.read_small_blob(d, MAX_TEXT_BLOB).map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut out = Layers::default();
    for l in &m.manifest.layers {
        let d = &l.digest;
        let path = store.blob_path(d);
        match l.media_type.as_str() {
            media::MODEL => {
                out.sources.push(format!("FROM {}", path.display()));
                if out.header.is_none() {
                    out.header = Some(read::read_header(&path).map_err(|e| ApiError::internal(e.to_string()))?);
                }
            }
            media::PROJECTOR => {
                out.sources.push(format!("FROM {}", path.display()));
                out.projector = read::read_header(&path).ok();
            }
            media::ADAPTER => out.sources.push(format!("ADAPTER {}", path.display())),
            media::TEMPLATE | media::PROMPT => out.template = Some(text(d)?),
            media::SYSTEM => out.system = Some(text(d)?),
            media::LICENSE => out.licenses.push(text(d)?),
            media::PARAMS => out.params = serde_json::from_str(&text(d)?).unwrap_or_default(),
            media::MESSAGES => out.messages = serde_json::from_str(&text(d)?).unwrap_or_default(),
            _ => {}
        }
    }
    Ok(out)
}

/// The Modelfile `ollama show --modelfile` prints (§2.7): header, sources, then each layer.
fn render_modelfile(short_name: &str, l: &Layers) -> String {
    let mut out = format!(
        "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM {short_name}\n\n"
    );
    for line in &l.sources {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "TEMPLATE {}", quote(l.template()));
    if let Some(s) = &l.system {
        let _ = writeln!(out, "SYSTEM {}", quote(s));
    }
    for (k, v) in l.param_values() {
        let shown = match v {
            Value::String(s) => s.clone(),
            v => go_value(v),
        };
        let _ = writeln!(out, "PARAMETER {k} {}", quote(&shown));
    }
    for text in &l.licenses {
        let _ = writeln!(out, "LICENSE {}", quote(text));
    }
    for msg in &l.messages {
        let _ = writeln!(out, "MESSAGE {} {}", msg.role, quote(&msg.content));
    }
    out
}

/// `parameters`: one line per value, the key padded to 30, the value as Go's `%#v`.
fn parameter_lines(l: &Layers) -> Option<String> {
    let lines: Vec<String> = l.param_values().map(|(k, v)| format!("{k:<30} {}", go_value(v))).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// What the template and layers say the model can do.
fn capabilities(l: &Layers) -> Vec<String> {
    let template = l.template();
    let mut caps = vec!["completion".to_owned()];
    if template.contains(".Tools") {
        caps.push("tools".into());
    }
    if template.contains(".Suffix") {
        caps.push("insert".into());
    }
    if l.projector.is_some() {
        caps.push("vision".into());
    }
    caps
}

/// The whole `show` answer for a stored model.
fn show_response(store: &Store, name: &ModelName, m: &StoredManifest, verbose: bool) -> Result<ShowResponse, ApiError> {
    let layers = read_layers(store, m)?;
    Ok(ShowResponse {
        license: (!layers.licenses.is_empty()).then(|| layers.licenses.join("\n")),
        modelfile: render_modelfile(&name.short(), &layers),
        parameters: parameter_lines(&layers),
        template: layers.template().to_owned(),
        system: layers.system.clone(),
        details: ModelDetails { context_length: None, embedding_length: None, ..details(store, m) },
        messages: layers
            .messages
            .iter()
            .map(|msg| Message { role: msg.role.clone(), content: msg.content.clone(), ..Message::default() })
            .collect(),
        model_info: layers.header.as_ref().map(|h| model_info(h, verbose)).unwrap_or_default(),
        projector_info: layers.projector.as_ref().map(|p| model_info(p, verbose)),
        tensors: layers.header.as_ref().map(tensors),
        capabilities: capabilities(&layers),
        modified_at: format_time(m.modified),
    })
}

/// `POST /api/show`.
///
/// # Errors
/// 400 for a bad name, 404 for an unknown model.
#[utoipa::path(post, path = "/api/show", request_body = ShowRequest, responses((status = 200, description = "Model details", body = ShowResponse), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Corrupt manifest or storage failure", body = crate::http::openapi::ErrorResponse)))]
pub async fn show(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<Json<ShowResponse>, ApiError> {
    let req: ShowRequest = extract::decode(body).await?;
    let name = parse_name(req.model.as_deref().filter(|m| !m.is_empty()).or(req.name.as_deref()))?;
    let verbose = req.verbose.unwrap_or(false);
    let store = state.store.clone();
    blocking(move || {
        let name = store.resolve(&name);
        let m = store
            .read_manifest(&name)?
            .ok_or_else(|| ApiError::not_found(format!("model '{}' not found", name.short())))?;
        show_response(&store, &name, &m, verbose).map(Json)
    })
    .await?
}

/// `POST /api/copy`: copies the manifest byte for byte; 200 with an empty body.
///
/// # Errors
/// 400 for bad names, 404 for an unknown source.
#[utoipa::path(post, path = "/api/copy", request_body = CopyRequest, responses((status = 200, description = "Copied"), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Corrupt manifest or storage failure", body = crate::http::openapi::ErrorResponse)))]
pub async fn copy(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<StatusCode, ApiError> {
    let req: CopyRequest = extract::decode(body).await?;
    let src = ModelName::parse(&req.source).ok_or_else(|| Error::InvalidSource(req.source.clone()))?;
    let dst = ModelName::parse(&req.destination).ok_or_else(|| Error::InvalidDestination(req.destination.clone()))?;
    let store = state.store.clone();
    blocking(move || {
        let src = store.resolve(&src);
        let dst = store.resolve(&dst);
        let m = store
            .read_manifest(&src)?
            .ok_or_else(|| ApiError::not_found(format!("model \"{}\" not found", clip(&req.source))))?;
        if src != dst {
            // Resolves `dst`'s stored spelling again under the store lock, with the write.
            store.write_manifest(&dst, &m.bytes)?;
        }
        Ok(StatusCode::OK)
    })
    .await?
}

/// `DELETE /api/delete`: removes the manifest and every blob nothing else references.
///
/// # Errors
/// 400 for a bad name, 404 for an unknown model.
#[utoipa::path(delete, path = "/api/delete", request_body = DeleteRequest, responses((status = 200, description = "Deleted"), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Storage failure", body = crate::http::openapi::ErrorResponse)))]
pub async fn delete(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<StatusCode, ApiError> {
    let req: DeleteRequest = extract::decode(body).await?;
    let raw = req.model.filter(|m| !m.trim().is_empty()).or(req.name).unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(Error::ModelRequired.into());
    }
    let name = ModelName::parse(&raw).ok_or_else(|| Error::InvalidDeleteName(raw.clone()))?;
    let store = state.store.clone();
    blocking(move || {
        // Resolved, read and removed in one step under the store lock (a corrupt manifest is
        // removed too: that is how a user gets rid of it).
        if store.delete_manifest(&name)? {
            Ok(StatusCode::OK)
        } else {
            Err(ApiError::not_found(format!("model '{}' not found", clip(&raw))))
        }
    })
    .await?
}
