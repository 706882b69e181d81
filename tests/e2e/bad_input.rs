//! Every bad request gets a clear `{"error"}` with the right status, and the store is unchanged.

use serde_json::{Value, json};

use crate::util::{TestServer, digest, tiny_llama};

pub fn check(s: &TestServer, path: &str, body: &[u8], status: u16, message: &str) {
    let before = s.files();
    for stream in [None, Some(false)] {
        let body = match (stream, serde_json::from_slice::<Value>(body)) {
            (Some(flag), Ok(Value::Object(mut o))) => {
                o.insert("stream".into(), json!(flag));
                Value::Object(o).to_string().into_bytes()
            }
            _ => body.to_vec(),
        };
        let r = s.request(if path == "/api/delete" { "DELETE" } else { "POST" }, path, Some(&body));
        assert_eq!(r.status, status, "{path} {}: {}", String::from_utf8_lossy(&body), r.body);
        assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
        let e = r.error();
        assert!(e.contains(message), "{path} {}: {e:?} should contain {message:?}", String::from_utf8_lossy(&body));
    }
    assert_eq!(s.files(), before, "store changed by a rejected request");
}

#[test]
fn create_bad_input_table() {
    let s = TestServer::start();
    let good = s.upload(&tiny_llama());
    let not_gguf = s.upload(b"this is not a gguf file at all");
    let tiny = tiny_llama();
    let truncated = s.upload(&tiny[..tiny.len() / 2]);
    let missing = digest(b"never uploaded");
    let long = "x".repeat(81);
    let cases: Vec<(Value, u16, String)> = vec![
        (json!({"files": {"m.gguf": good}}), 400, "model is required".into()),
        (json!({"model": "", "files": {"m.gguf": good}}), 400, "model is required".into()),
        (json!({"model": "../x", "files": {"m.gguf": good}}), 400, "invalid model name".into()),
        (json!({"model": "a/b/c/d", "files": {"m.gguf": good}}), 400, "invalid model name".into()),
        (json!({"model": long, "files": {"m.gguf": good}}), 400, "invalid model name".into()),
        (json!({"model": "bad name!", "files": {"m.gguf": good}}), 400, "invalid model name".into()),
        (json!({"model": "m", "from": "../../etc"}), 400, "invalid model name".into()),
        (json!({"model": "m"}), 400, "neither 'from' or 'files' was specified".into()),
        (json!({"model": "m", "files": {}}), 400, "unknown type".into()),
        (json!({"model": "m", "files": {"m.gguf": "sha256:123"}}), 400, "invalid digest format".into()),
        (json!({"model": "m", "files": {"m.gguf": ""}}), 400, "invalid digest format".into()),
        (json!({"model": "m", "files": {"../m.gguf": good}}), 400, "file path must be relative".into()),
        (json!({"model": "m", "files": {"m.gguf": missing}}), 400, format!("blob \"{missing}\" not found")),
        (json!({"model": "m", "from": "nope"}), 404, "model 'nope:latest' not found".into()),
        (json!({"model": "m", "files": {"m.gguf": not_gguf}}), 400, "supplied file was not in GGUF format".into()),
        (json!({"model": "m", "files": {"m.gguf": truncated}}), 400, "m.gguf: invalid tensor".into()),
        (
            json!({"model": "m", "files": {"config.json": good}}),
            400,
            "no .safetensors files: a Hugging Face import uploads config.json, the tokenizer files and every model*.safetensors shard".into(),
        ),
        (
            json!({"model": "m", "files": {"m.gguf": good}, "parameters": {"temprature": 0.7}}),
            400,
            "unknown parameter 'temprature'; did you mean 'temperature'?".into(),
        ),
        (
            json!({"model": "m", "files": {"m.gguf": good}, "parameters": {"num_ctx": "4096"}}),
            400,
            "invalid value for parameter 'num_ctx': expected an integer".into(),
        ),
        (
            json!({"model": "m", "files": {"m.gguf": good}, "parameters": {"stop": "x"}}),
            400,
            "expected an array of strings".into(),
        ),
        (
            json!({"model": "m", "files": {"m.gguf": good}, "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "invalid role 'wizard'".into(),
        ),
        (
            json!({"model": "m", "files": {"m.gguf": good}, "quantize": "q9_K"}),
            400,
            "unsupported quantization type Q9_K".into(),
        ),
        (json!({"model": "m", "files": {"m.gguf": good}, "template": "{{ .Prompt"}), 400, "template error".into()),
        (json!({"model": "m", "files": {"m.gguf": good}, "license": 5}), 400, "invalid JSON body".into()),
        (json!({"model": 5}), 400, "invalid JSON body".into()),
        (json!({"model": "m", "from": "llama3:cloud"}), 400, "remote models are not supported".into()),
    ];
    for (req, status, msg) in cases {
        check(&s, "/api/create", req.to_string().as_bytes(), status, &msg);
    }
    check(&s, "/api/create", b"", 400, "missing request body");
    check(&s, "/api/create", b"{\"model\":", 400, "invalid JSON body");
    check(&s, "/api/create", b"not json", 400, "invalid JSON body");
}

#[test]
fn other_endpoints_bad_input() {
    let s = TestServer::start();
    check(&s, "/api/show", b"", 400, "missing request body");
    check(&s, "/api/show", b"{}", 400, "model is required");
    check(&s, "/api/show", br#"{"model":"a/b/c/d"}"#, 400, "invalid model name");
    check(&s, "/api/copy", b"{", 400, "invalid JSON body");
    check(&s, "/api/delete", b"{}", 400, "model is required");
}
