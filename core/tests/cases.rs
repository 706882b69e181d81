//! The shared validation and Modelfile cases (`tests/cases/*.json`), checked natively here and in
//! the browser by `web/tests/web.rs`, so both builds of kiln-core give the same answers.

use kiln_core::modelfile::parse_modelfile;
use kiln_core::request::CreateRequest;
use kiln_core::validate::validate_create;
use serde_json::Value;

#[test]
fn validation_cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("cases/validation.json")).unwrap();
    for c in &cases {
        let req: CreateRequest = serde_json::from_value(c["request"].clone()).unwrap();
        let got = validate_create(&req).err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), c["error"].as_str(), "{}", c["request"]);
    }
}

#[test]
fn modelfile_cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("cases/modelfile.json")).unwrap();
    for c in &cases {
        let text = c["text"].as_str().unwrap();
        match parse_modelfile(text) {
            Ok(req) => assert_eq!(serde_json::to_value(&req).unwrap(), c["request"], "{text:?}"),
            Err(e) => assert_eq!(
                (e.line as u64, e.column as u64),
                (c["error"]["line"].as_u64().unwrap(), c["error"]["column"].as_u64().unwrap()),
                "{text:?}: {e}"
            ),
        }
    }
}
