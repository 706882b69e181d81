//! The JavaScript API other web tools can call: kiln-core's validation and Modelfile parser,
//! exported with wasm-bindgen. Objects cross as plain JS values (serde-wasm-bindgen).
//!
//! ```js
//! window.wasmBindings.validate_create_request({ model: "x", from: "llama3.2" })
//! // → { ok: true } or { ok: false, error: "invalid model name", status: 400 }
//! window.wasmBindings.parse_modelfile("FROM llama3.2\nPARAMETER temperature 0.7")
//! // → { from: "llama3.2", parameters: { temperature: 0.7 } }, or throws { line, column, message }
//! ```

use kiln_core::request::CreateRequest;
use kiln_core::validate::validate_create;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[derive(Serialize)]
struct Verdict {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}

/// Validates a create request object exactly as the server will.
///
/// # Errors
/// When `obj` is not shaped like a create request (wrong JSON types).
#[wasm_bindgen]
pub fn validate_create_request(obj: JsValue) -> Result<JsValue, JsValue> {
    let verdict = match serde_wasm_bindgen::from_value::<CreateRequest>(obj) {
        Err(e) => Verdict { ok: false, error: Some(format!("invalid JSON body: {e}")), status: Some(400) },
        Ok(req) => match validate_create(&req) {
            Ok(_) => Verdict { ok: true, error: None, status: None },
            Err(e) => Verdict { ok: false, status: Some(e.http_status()), error: Some(e.to_string()) },
        },
    };
    to_js(&verdict)
}

/// Parses Modelfile text into a create request object (without `model`).
///
/// # Errors
/// `{ line, column, message }` for the first syntax error.
#[wasm_bindgen]
pub fn parse_modelfile(text: &str) -> Result<JsValue, JsValue> {
    match kiln_core::modelfile::parse_modelfile(text) {
        Ok(req) => to_js(&req),
        Err(e) => Err(to_js(&e)?),
    }
}
