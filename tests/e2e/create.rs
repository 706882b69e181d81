//! `POST /api/create` from files and from models.

use serde_json::json;

use crate::util::{TestServer, digest, tiny_llama};

#[test]
fn from_files_streams_ollamas_sequence() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    let statuses = s.create_ok(&json!({"model": "tiny", "files": {"tiny.gguf": d}}));
    assert_eq!(statuses[..2], ["parsing GGUF".to_owned(), format!("using existing layer {d}")]);
    assert_eq!(statuses[2..], ["writing manifest", "success"]);
    let m = s.manifest("registry.ollama.ai/library/tiny/latest");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.ollama.image.model");
    assert_eq!(m["layers"][0]["digest"], d.as_str());
    assert_eq!(m["layers"][0]["size"], 9_995_584);
    let config = s.blob(m["config"]["digest"].as_str().unwrap());
    assert_eq!(
        String::from_utf8(config).unwrap(),
        "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],\"model_type\":\"4.99M\",\"file_type\":\"F16\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n"
    );
}

#[test]
fn stream_false_answers_one_object() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    let r = s.post("/api/create", &json!({"model": "tiny", "files": {"m.gguf": d}, "stream": false}));
    assert_eq!((r.status, r.json()), (200, json!({"status": "success"})));
    assert!(r.content_type.starts_with("application/json"));
}

#[test]
fn from_model_inherits_replaces_and_appends() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    s.create_ok(&json!({
        "model": "base", "files": {"m.gguf": d}, "template": "{{ .Prompt }}", "system": "old system",
        "license": "MIT", "parameters": {"stop": ["USER:", "ASSISTANT:"], "temperature": 1, "top_k": 10}
    }));
    let base = s.manifest("registry.ollama.ai/library/base/latest");
    let statuses = s.create_ok(&json!({
        "model": "derived", "from": "base", "system": "new system", "license": ["Apache-2.0"],
        "parameters": {"temperature": 0.6, "top_p": 0.7},
        "messages": [{"role": "assistant", "content": "What is my purpose?"}, {"role": "user", "content": "You run tests."}, {"role": "assistant", "content": "Oh, my god."}]
    }));
    let inherited: Vec<String> = ["model", "template", "license"]
        .iter()
        .map(|kind| {
            let l = base["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["mediaType"].as_str().unwrap().ends_with(kind))
                .unwrap();
            format!("using existing layer {}", l["digest"].as_str().unwrap())
        })
        .collect();
    assert_eq!(statuses[..3], inherited[..]);
    assert!(statuses[3].starts_with("creating new layer "), "system: {statuses:?}");
    assert_eq!(
        statuses[4],
        "creating new layer sha256:2af71558e438db0b73a20beab92dc278a94e1bbe974c00c1a33e3ab62d53a608"
    );
    assert_eq!(
        statuses[5],
        "creating new layer sha256:e29a7b3c47287a2489c895d21fe413c20f859a85d20e749492f52a838e36e1ba"
    );
    assert_eq!(
        statuses[6],
        "creating new layer sha256:298baeaf6928a60cf666d88d64a1ba606feb43a2865687c39e40652e407bffc4"
    );
    assert_eq!(statuses[7..], ["writing manifest", "success"]);
    let m = s.manifest("registry.ollama.ai/library/derived/latest");
    let kinds: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect();
    assert_eq!(kinds, ["model", "template", "license", "system", "license", "params", "messages"]);
    for l in m["layers"].as_array().unwrap().iter().take(3) {
        assert_eq!(l["from"], "base:latest");
    }
    assert_eq!(s.blob(m["layers"][3]["digest"].as_str().unwrap()), b"new system");
}

#[test]
fn recreating_the_same_model_reuses_every_layer_and_case_folds_the_name() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    s.create_ok(&json!({"model": "Mario", "files": {"m.gguf": d}, "system": "hi"}));
    let statuses = s.create_ok(&json!({"model": "mario:LATEST", "files": {"m.gguf": d}, "system": "hi"}));
    assert!(statuses.iter().all(|s| !s.starts_with("creating")), "{statuses:?}");
    let tags = s.get("/api/tags").json();
    assert_eq!(tags["models"].as_array().unwrap().len(), 1);
    assert_eq!(tags["models"][0]["name"], "Mario:latest");
}

#[test]
fn overwrite_collects_the_old_layers() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    s.create_ok(&json!({"model": "m", "files": {"m.gguf": d}, "system": "first"}));
    let first = s.manifest("registry.ollama.ai/library/m/latest")["layers"][1]["digest"].as_str().unwrap().to_owned();
    s.create_ok(&json!({"model": "m", "files": {"m.gguf": d}, "system": "second"}));
    assert!(
        !s.models.path().join("blobs").join(first.replace(':', "-")).exists(),
        "old system blob should be collected"
    );
    assert!(s.models.path().join("blobs").join(d.replace(':', "-")).exists());
}

#[test]
fn adapters_and_projectors_are_classified() {
    let s = TestServer::start();
    let d = s.upload(&tiny_llama());
    let adapter = crate::util::minimal_gguf();
    let a = s.upload(&adapter);
    s.create_ok(&json!({"model": "with-adapter", "files": {"m.gguf": d}, "adapters": {"lora.gguf": a}}));
    let m = s.manifest("registry.ollama.ai/library/with-adapter/latest");
    assert_eq!(m["layers"][1]["mediaType"], "application/vnd.ollama.image.adapter");
    assert_eq!(m["layers"][1]["digest"], digest(&adapter).as_str());
}
