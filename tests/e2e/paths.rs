//! No name, tag, namespace, host or digest can make the server read or write outside the models
//! directory, and a manifest on disk that points at a bad digest is reported, never followed
//! (CVE-2024-37032's shape: a traversal "digest" in a manifest; CVE-2024-39722's: a traversal
//! name whose answer reveals whether a file exists; CVE-2024-39721's: a create that reads from
//! a device file).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{TestServer, list_files, minimal_gguf};

const SECRET: &[u8] = b"top secret, outside the store";

fn hostile_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "../secret",
        "../../secret",
        "..",
        "../..",
        "/etc/passwd",
        "/secret",
        "..%2Fsecret",
        "..%2f..%2fsecret",
        "%2e%2e/secret",
        "a/../../secret",
        "..\\secret",
        "a\\..\\..\\secret",
        "C:\\secret",
        "a\u{0}b",
        "secret\u{0}",
        "registry.ollama.ai/../../secret",
        "Registry.Ollama.AI/library/../../secret:latest",
        "../library/m",
        "x/../../../secret:latest",
        "m:../../secret",
        "m:..",
        "m:a/b",
        "host:1234/ns/..",
        "../ns/m:tag",
        "ns/../m",
        "./m",
        "m/.",
        "\u{202e}m",
        "m\n",
        "~/m",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    v.push(format!("{}/secret", "..".repeat(40)));
    v
}

fn hostile_digests() -> Vec<String> {
    [
        "sha256:../../secret",
        "sha256-../../secret",
        "sha256:..%2F..%2Fsecret",
        "..%2F..%2Fsecret",
        "sha256:/etc/passwd",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000/../../secret",
        "sha256:ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD",
        "sha256:abc",
        "sha512:0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:000000000000000000000000000000000000000000000000000000000000000\u{0}",
        "sha256:%00",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:%".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn no_name_or_digest_reaches_outside_the_store() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret"), SECRET).unwrap();
    let s = TestServer::start_in(tempfile::tempdir_in(outer.path()).unwrap(), &[]);
    let store_dir = s.models.path().file_name().unwrap().to_owned();
    let d = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "m", "files": {"m.gguf": d}}));
    let before = s.files();
    let mut requests = 0;
    for name in hostile_names() {
        let bodies = [
            ("/api/create", json!({"model": name, "files": {"m.gguf": d}})),
            ("/api/create", json!({"model": "fine", "from": name})),
            ("/api/show", json!({"model": name})),
            ("/api/copy", json!({"source": "m", "destination": name})),
            ("/api/copy", json!({"source": name, "destination": "fine"})),
            ("/api/delete", json!({"model": name})),
        ];
        for (path, body) in bodies {
            let method = if path == "/api/delete" { "DELETE" } else { "POST" };
            let r = s.request(method, path, Some(body.to_string().as_bytes()));
            requests += 1;
            assert!(r.status == 400 || r.status == 404, "{path} {body}: {} {}", r.status, r.body);
            assert!(!r.body.contains("top secret"), "{path} {body} leaked the file");
        }
    }
    for digest in hostile_digests() {
        for method in ["HEAD", "POST"] {
            let r = s.request(method, &format!("/api/blobs/{}", enc(&digest)), Some(SECRET));
            requests += 1;
            assert!(r.status == 400 || r.status == 404, "{method} blob {digest}: {} {}", r.status, r.body);
        }
        let r = s.post("/api/create", &json!({"model": "fine", "files": {"m.gguf": digest}}));
        requests += 1;
        assert_eq!(r.status, 400, "create with file digest {digest}: {}", r.body);
        let r =
            s.post("/api/create", &json!({"model": "fine", "files": {"m.gguf": d}, "adapters": {"a.gguf": digest}}));
        requests += 1;
        assert_eq!(r.status, 400, "create with adapter digest {digest}: {}", r.body);
    }
    // Raw paths the router itself sees: encoded slashes and dot segments.
    for path in [
        "/api/blobs/..%2F..%2Fsecret",
        "/api/blobs/%2e%2e%2fsecret",
        "/api/blobs/../../secret",
        "/ui/../../secret",
        "/ui/..%2F..%2Fsecret",
        "/ui/%2e%2e/%2e%2e/secret",
    ] {
        let r = s.request("GET", path, None);
        requests += 1;
        assert!(!r.body.contains("top secret"), "GET {path} leaked the file");
    }
    assert_eq!(s.files(), before, "the store changed");
    let mut outside: Vec<String> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, [store_dir.to_string_lossy().into_owned(), "secret".into()]);
    assert_eq!(std::fs::read(outer.path().join("secret")).unwrap(), SECRET);
    eprintln!(
        "paths: {requests} hostile requests ({} names, {} digests), nothing read or written outside the store",
        hostile_names().len(),
        hostile_digests().len()
    );
}

/// CVE-2024-37032: a manifest whose layer "digest" is a path. Every reader must refuse it.
#[test]
fn a_manifest_with_a_traversal_digest_is_reported_not_followed() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret"), SECRET).unwrap();
    let s = TestServer::start_in(tempfile::tempdir_in(outer.path()).unwrap(), &[]);
    let d = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "good", "files": {"m.gguf": d}}));
    let manifests = s.models.path().join("manifests/registry.ollama.ai/library");
    let evil = |digest: &str| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest, "size": 29},
            "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 29}]})
        .to_string()
    };
    for (model, digest) in
        [("evil", "sha256:../../../secret"), ("evil2", "sha256-../../../secret"), ("evil3", "../../secret")]
    {
        std::fs::create_dir_all(manifests.join(model)).unwrap();
        std::fs::write(manifests.join(model).join("latest"), evil(digest)).unwrap();
    }
    let (ok, report) = s.fsck();
    assert!(!ok, "fsck must fail on a manifest with a traversal digest:\n{report}");
    assert!(report.contains("evil"), "fsck names the manifest:\n{report}");
    let tags = s.get("/api/tags");
    assert_eq!(tags.status, 200);
    assert!(!tags.body.contains("top secret"));
    for model in ["evil", "evil2", "evil3"] {
        let r = s.post("/api/show", &json!({"model": model}));
        assert!(r.status >= 400 && !r.body.contains("top secret"), "show {model}: {} {}", r.status, r.body);
        let r = s.post("/api/create", &json!({"model": "copy", "from": model}));
        assert!(r.status >= 400 || r.body.contains("error"), "create from {model}: {} {}", r.status, r.body);
        assert!(!r.body.contains("top secret"));
        let r = s.post("/api/copy", &json!({"source": model, "destination": "copy"}));
        assert!(!r.body.contains("top secret"));
        assert_eq!(s.delete(&json!({"model": model})).status, 200, "a corrupt manifest can be deleted");
    }
    assert!(s.fsck().0, "after the deletes the store is consistent again");
    assert_eq!(std::fs::read(outer.path().join("secret")).unwrap(), SECRET, "a delete followed the digest");
    assert!(s.post("/api/show", &json!({"model": "good"})).status == 200, "the good model is untouched");
    assert!(!list_files(s.models.path()).iter().any(|f| f.contains("copy")), "no model was made from a bad manifest");
}

/// CVE-2024-39721's shape: a create that names a device file must not read it.
#[test]
fn a_create_cannot_read_device_files() {
    let s = TestServer::start();
    let start = Instant::now();
    for body in [
        json!({"model": "m", "from": "/dev/random"}),
        json!({"model": "m", "files": {"m.gguf": "/dev/random"}}),
        json!({"model": "m", "files": {"/dev/random": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}}),
        json!({"model": "m", "modelfile": "FROM /dev/random"}),
        json!({"model": "m", "path": "/dev/random"}),
    ] {
        let r = s.post("/api/create", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}
