//! kiln-core in the browser: the shared cases of `core/tests/cases/` through the JavaScript API,
//! in headless Chromium — the same answers as the native build gives.
#![cfg(target_arch = "wasm32")]
#![expect(clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

use kiln_web::js_api::{parse_modelfile, validate_create_request};
use serde_json::Value;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn js(v: &Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).unwrap()
}

fn rust(v: &JsValue) -> Value {
    serde_json::from_str(&js_sys::JSON::stringify(v).unwrap().as_string().unwrap()).unwrap()
}

#[wasm_bindgen_test]
fn validation_cases_match_native() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("../../core/tests/cases/validation.json")).unwrap();
    for c in &cases {
        let verdict = rust(&validate_create_request(js(&c["request"])).unwrap());
        match c["error"].as_str() {
            None => assert_eq!(verdict, serde_json::json!({"ok": true}), "{}", c["request"]),
            Some(e) => assert_eq!(verdict["error"], e, "{}", c["request"]),
        }
    }
}

#[wasm_bindgen_test]
fn modelfile_cases_match_native() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("../../core/tests/cases/modelfile.json")).unwrap();
    for c in &cases {
        let text = c["text"].as_str().unwrap();
        match parse_modelfile(text) {
            Ok(v) => assert_eq!(rust(&v), c["request"], "{text:?}"),
            Err(e) => {
                let e = rust(&e);
                assert_eq!(
                    (e["line"].clone(), e["column"].clone()),
                    (c["error"]["line"].clone(), c["error"]["column"].clone()),
                    "{text:?}"
                );
            }
        }
    }
}
