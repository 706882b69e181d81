//! 32 concurrent uploads (several of the same blob) and 32 concurrent creates (several of the
//! same name, some quantizing) while another thread deletes and re-creates a model sharing their
//! base blob: every request succeeds or fails cleanly, every blob verifies, each name holds one
//! whole create, and no delete removes a blob someone else needs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::util::{TestServer, digest, tiny_llama};

#[test]
fn concurrent_uploads_creates_and_deletes() {
    let s = Arc::new(TestServer::start());
    let tiny = tiny_llama();
    let base = s.upload(&tiny);
    s.create_ok(&json!({"model": "victim", "files": {"t.gguf": base}}));
    let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 300_000 + usize::from(i) * 1000]).collect();
    let mut uploads = Vec::new();
    for i in 0..32usize {
        let (s, body) = (s.clone(), payloads[i % 8].clone());
        uploads.push(std::thread::spawn(move || {
            let r = s.post_raw(&format!("/api/blobs/{}", digest(&body)), &body);
            assert!(r.status == 201 || r.status == 200, "upload {i}: {} {}", r.status, r.body);
        }));
    }
    let mut handles = Vec::new();
    for i in 0..32usize {
        let (s, base) = (s.clone(), base.clone());
        handles.push(std::thread::spawn(move || {
            let name = format!("same-{}", i % 8);
            let mut req =
                json!({"model": name, "files": {"t.gguf": base}, "system": format!("writer {i}"), "stream": false});
            if i % 4 == 0 {
                req["quantize"] = json!("q8_0");
            }
            let r = s.post("/api/create", &req);
            // The deleter may collect the base blob before this request arrives (nothing
            // references it then); that must be a clean 400, and once the create has started it
            // must not happen at all.
            if r.status == 400 {
                assert_eq!(r.error(), format!("blob \"{base}\" not found"), "create {i}");
                return false;
            }
            assert_eq!((r.status, r.json()), (200, json!({"status": "success"})), "create {i}");
            true
        }));
    }
    let deleter = {
        let (s, base) = (s.clone(), base.clone());
        std::thread::spawn(move || {
            for _ in 0..10 {
                s.delete(&json!({"model": "victim"}));
                std::thread::sleep(Duration::from_millis(5));
                s.post("/api/create", &json!({"model": "victim", "files": {"t.gguf": base}, "stream": false}));
            }
        })
    };
    for u in uploads {
        u.join().unwrap();
    }
    let created: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    deleter.join().unwrap();
    let succeeded = created.iter().filter(|c| **c).count();
    for p in &payloads {
        assert_eq!(&s.blob(&digest(p)), p, "uploaded blob corrupted");
    }
    for n in 0..8 {
        if !(0..4).any(|k| created[n + 8 * k]) {
            continue;
        }
        let m = s.manifest(&format!("registry.ollama.ai/library/same-{n}/latest"));
        let system = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["mediaType"] == "application/vnd.ollama.image.system")
            .unwrap();
        let text = String::from_utf8(s.blob(system["digest"].as_str().unwrap())).unwrap();
        let writer: usize = text.strip_prefix("writer ").unwrap().parse().unwrap();
        assert_eq!(writer % 8, n, "same-{n} holds another name's layers");
        let model = &m["layers"][0];
        let expected_type = if writer.is_multiple_of(4) { "Q8_0" } else { "F16" };
        let show = s.post("/api/show", &json!({"model": format!("same-{n}")})).json();
        assert_eq!(
            show["details"]["quantization_level"], expected_type,
            "same-{n}: config of one writer, model of another"
        );
        assert!(s.models.path().join("blobs").join(model["digest"].as_str().unwrap().replace(':', "-")).exists());
    }
    // The 8 payloads were uploaded for no model: expected orphans.
    let (consistent, report) = s.fsck_allowing_orphans();
    assert!(consistent && report.contains("0 errors"), "{report}");
    eprintln!(
        "concurrency: 32 uploads + 32 creates ({} succeeded, {} refused cleanly) + 20 delete/re-create requests; {}",
        succeeded,
        32 - succeeded,
        report.lines().last().unwrap_or_default()
    );
}
