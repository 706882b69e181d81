//! `GET /api/tags`, `POST /api/show`, `POST /api/copy`, `DELETE /api/delete`: reading and managing
//! stored models (§2.6–2.9).

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kiln_core::gguf::{Array, Header, Value as GValue};
use kiln_core::request::{CopyRequest, DeleteRequest, ListModel, ListResponse, Message, ModelDetails, ShowRequest};
use kiln_core::{Error, ModelName};
use serde_json::{Map, Value, json};

use super::format_time;
use crate::gguf::read;
use crate::http::error::ApiError;
use crate::http::extract::{self, JsonBody};
use crate::state::AppState;
use crate::store::manifests::StoredManifest;
use crate::store::{ConfigFile, MAX_TEXT_BLOB, Store, StoreError, media};

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
                digest: crate::store::blobs::digest_of(&m.bytes).hex().to_string(),
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

fn model_info(h: &Header, verbose: bool) -> Map<String, Value> {
    let mut m: Map<String, Value> = h
        .kvs
        .iter()
        .filter(|(k, _)| k != "general.name" && k != "tokenizer.chat_template")
        .map(|(k, v)| (k.clone(), gguf_to_json(v, verbose)))
        .collect();
    m.insert("general.parameter_count".into(), json!(h.parameter_count()));
    m
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
        s.to_string()
    }
}

/// `POST /api/show`.
///
/// # Errors
/// 400 for a bad name, 404 for an unknown model.
#[allow(clippy::too_many_lines)]
#[utoipa::path(post, path = "/api/show", request_body = ShowRequest, responses((status = 200, description = "Model details", body = crate::http::openapi::ShowResponse), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Corrupt manifest or storage failure", body = crate::http::openapi::ErrorResponse)))]
pub async fn show(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let req: ShowRequest = extract::json(&body)?;
    let name = parse_name(req.model.as_deref().filter(|m| !m.is_empty()).or(req.name.as_deref()))?;
    let verbose = req.verbose.unwrap_or(false);
    let store = state.store.clone();
    blocking(move || {
        let name = store.resolve(&name);
        let m = store.read_manifest(&name)?.ok_or_else(|| ApiError::not_found(format!("model '{}' not found", name.short())))?;
        let text = |d: &kiln_core::Digest| store.read_small_blob(d, MAX_TEXT_BLOB).map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut out = Map::new();
        let mut modelfile = format!(
            "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM {}\n\n",
            name.short()
        );
        let (mut template, mut system, mut licenses) = (None, None, Vec::new());
        let (mut params, mut messages): (Map<String, Value>, Vec<Message>) = (Map::new(), Vec::new());
        let mut header = None;
        let mut projector = None;
        for l in &m.manifest.layers {
            let d = l.digest.clone();
            match l.media_type.as_str() {
                media::MODEL => {
                    let _ = writeln!(modelfile, "FROM {}", store.blob_path(&d).display());
                    if header.is_none() {
                        header = Some(read::read_header(&store.blob_path(&d)).map_err(|e| ApiError::internal(e.to_string()))?);
                    }
                }
                media::PROJECTOR => {
                    let _ = writeln!(modelfile, "FROM {}", store.blob_path(&d).display());
                    projector = read::read_header(&store.blob_path(&d)).ok();
                }
                media::ADAPTER => {
                    let _ = writeln!(modelfile, "ADAPTER {}", store.blob_path(&d).display());
                }
                media::TEMPLATE | media::PROMPT => template = Some(text(&d)?),
                media::SYSTEM => system = Some(text(&d)?),
                media::LICENSE => licenses.push(text(&d)?),
                media::PARAMS => params = serde_json::from_str(&text(&d)?).unwrap_or_default(),
                media::MESSAGES => messages = serde_json::from_str(&text(&d)?).unwrap_or_default(),
                _ => {}
            }
        }
        let template_text = template.clone().unwrap_or_else(|| "{{ .Prompt }}".into());
        let _ = writeln!(modelfile, "TEMPLATE {}", quote(&template_text));
        if let Some(s) = &system {
            let _ = writeln!(modelfile, "SYSTEM {}", quote(s));
        }
        let mut param_lines = Vec::new();
        for (k, v) in &params {
            let values: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            for v in values {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    v => go_value(v),
                };
                let _ = writeln!(modelfile, "PARAMETER {k} {}", quote(&shown));
                param_lines.push(format!("{k:<30} {}", go_value(v)));
            }
        }
        for l in &licenses {
            let _ = writeln!(modelfile, "LICENSE {}", quote(l));
        }
        for msg in &messages {
            let _ = writeln!(modelfile, "MESSAGE {} {}", msg.role, quote(&msg.content));
        }
        if !licenses.is_empty() {
            out.insert("license".into(), json!(licenses.join("\n")));
        }
        out.insert("modelfile".into(), json!(modelfile));
        if !param_lines.is_empty() {
            out.insert("parameters".into(), json!(param_lines.join("\n")));
        }
        out.insert("template".into(), json!(template_text));
        if let Some(s) = system {
            out.insert("system".into(), json!(s));
        }
        let mut det = serde_json::to_value(details(&store, &m)).unwrap_or_default();
        if let Some(o) = det.as_object_mut() {
            o.remove("context_length");
            o.remove("embedding_length");
        }
        out.insert("details".into(), det);
        if !messages.is_empty() {
            let short: Vec<Value> = messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
            out.insert("messages".into(), Value::Array(short));
        }
        let mut caps = vec!["completion"];
        if template_text.contains(".Tools") {
            caps.push("tools");
        }
        if template_text.contains(".Suffix") {
            caps.push("insert");
        }
        if projector.is_some() {
            caps.push("vision");
        }
        if let Some(h) = &header {
            out.insert("model_info".into(), Value::Object(model_info(h, verbose)));
            let tensors: Vec<Value> =
                h.tensors.iter().map(|t| json!({"name": t.name, "type": t.ty.name(), "shape": t.dims})).collect();
            out.insert("tensors".into(), Value::Array(tensors));
        } else {
            out.insert("model_info".into(), json!({}));
        }
        if let Some(p) = &projector {
            out.insert("projector_info".into(), Value::Object(model_info(p, verbose)));
        }
        out.insert("capabilities".into(), json!(caps));
        out.insert("modified_at".into(), json!(format_time(m.modified)));
        Ok::<_, ApiError>(Json(Value::Object(out)))
    })
    .await?
}

/// `POST /api/copy`: copies the manifest byte for byte; 200 with an empty body.
///
/// # Errors
/// 400 for bad names, 404 for an unknown source.
#[utoipa::path(post, path = "/api/copy", request_body = CopyRequest, responses((status = 200, description = "Copied"), (status = 400, description = "Invalid request", body = crate::http::openapi::ErrorResponse), (status = 404, description = "No such model", body = crate::http::openapi::ErrorResponse), (status = 413, description = "Body over 64 MiB", body = crate::http::openapi::ErrorResponse), (status = 500, description = "Corrupt manifest or storage failure", body = crate::http::openapi::ErrorResponse)))]
pub async fn copy(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<StatusCode, ApiError> {
    let req: CopyRequest = extract::json(&body)?;
    let src = ModelName::parse(&req.source).ok_or_else(|| Error::InvalidSource(req.source.clone()))?;
    let dst = ModelName::parse(&req.destination).ok_or_else(|| Error::InvalidDestination(req.destination.clone()))?;
    let store = state.store.clone();
    blocking(move || {
        let src = store.resolve(&src);
        let dst = store.resolve(&dst);
        let m = store
            .read_manifest(&src)?
            .ok_or_else(|| ApiError::not_found(format!("model \"{}\" not found", req.source)))?;
        if src != dst {
            let old = store.read_manifest(&dst).ok().flatten().map(|o| o.manifest);
            store.write_manifest(&dst, &m.bytes, old.as_ref())?;
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
    let req: DeleteRequest = extract::json(&body)?;
    let raw = req.model.filter(|m| !m.trim().is_empty()).or(req.name).unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(Error::ModelRequired.into());
    }
    let name = ModelName::parse(&raw).ok_or_else(|| Error::InvalidDeleteName(raw.clone()))?;
    let store = state.store.clone();
    blocking(move || {
        let name = store.resolve(&name);
        match store.read_manifest(&name) {
            Ok(Some(m)) => store.delete_manifest(&m)?,
            Ok(None) => return Err(ApiError::not_found(format!("model '{raw}' not found"))),
            // A corrupt manifest can still be deleted: that is how a user gets rid of it.
            Err(e @ StoreError::BadManifest { .. }) => {
                tracing::warn!("deleting {e}");
                store.delete_corrupt_manifest(&name)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(StatusCode::OK)
    })
    .await?
}
