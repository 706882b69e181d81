//! Golden bytes: blobs, config and manifest written exactly as Ollama writes them
//! (`shared/spec/ollama-api.md` §5.2–5.5), so a real Ollama can share the store.

use serde_json::json;

use crate::util::{TestServer, hex, minimal_gguf};

#[test]
fn minimal_gguf_gives_ollamas_config_and_manifest() {
    let s = TestServer::start();
    let gguf = minimal_gguf();
    assert_eq!(gguf.len(), 68);
    let d = s.upload(&gguf);
    assert_eq!(d, "sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad");
    s.create_ok(&json!({"model": "empty", "files": {"e.gguf": d}}));
    let bytes = std::fs::read(s.models.path().join("manifests/registry.ollama.ai/library/empty/latest")).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c\",\"size\":147},\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad\",\"size\":68}]}\n"
    );
    assert_eq!(hex(&bytes), "f75369d1dd1fb2f7c3db80c05854077604d2e78397dbe270fbe9d8a453ae62ff");
    let config = s.blob("sha256:99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c");
    assert_eq!(config.len(), 147);
}

#[test]
fn text_and_json_layers_have_ollamas_digests() {
    let s = TestServer::start();
    let d = s.upload(&minimal_gguf());
    let statuses = s.create_ok(&json!({"model": "v", "files": {"e.gguf": d}, "template": "{{ .Prompt }}",
        "system": "Say hi!", "license": "MIT",
        "parameters": {"temperature": 1, "top_k": 10, "stop": ["USER:", "ASSISTANT:"]}}));
    for want in [
        "b507b9c2f6ca642bffcd06665ea7c91f235fd32daeefdf875a0f938db05fb315",
        "f29e82a8284dbdf5910b1555580ff60b04238b8da9d5e51159ada67a4d0d5851",
        "e5dcffe836b6ec8a58e492419b550e65fb8cbdc308503979e5dacb33ac7ea3b7",
        "1d0ad71299d48c2fb7ae2b98e683643e771f8a5b72be34942af90d97a91c1e37",
    ] {
        assert!(statuses.contains(&format!("creating new layer sha256:{want}")), "{want} in {statuses:?}");
    }
    let params = s.blob("sha256:1d0ad71299d48c2fb7ae2b98e683643e771f8a5b72be34942af90d97a91c1e37");
    assert_eq!(params, b"{\"stop\":[\"USER:\",\"ASSISTANT:\"],\"temperature\":1,\"top_k\":10}\n");
    // HTML-sensitive characters are escaped as Go does.
    let statuses = s.create_ok(&json!({"model": "phi", "files": {"e.gguf": d},
        "parameters": {"stop": ["<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]}}));
    assert!(statuses.contains(
        &"creating new layer sha256:0d79f567714c62c048378f2107fb332dabee0135d080c302d884317da9433cc5".to_owned()
    ));
}

#[test]
fn restart_sweeps_temp_files_and_keeps_models() {
    let s = TestServer::start();
    let d = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "keep", "files": {"e.gguf": d}}));
    let root = s.models.path().to_path_buf();
    std::fs::write(root.join("blobs/.kiln-tmp-crashed"), b"partial").unwrap();
    std::fs::write(root.join("manifests/.kiln-tmp-crashed"), b"{").unwrap();
    let models = s.stop();
    let s = TestServer::start_in(models, &[]);
    assert!(s.files().iter().all(|f| !f.contains(".kiln-tmp-")), "{:?}", s.files());
    assert_eq!(s.get("/api/tags").json()["models"][0]["name"], "keep:latest");
}
