//! The store stays consistent under disconnects and races (issue 15, defects 3–6): no blob is
//! left that nothing references, an upload's 200 means the blob is there, a name the store
//! cannot hold is a 400, and names differing only in case end as one model.

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::util::{TestServer, digest, list_files, minimal_gguf, tiny_llama};

const SETTLE: Duration = Duration::from_secs(10);

fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("")
}

fn is_quantize_tick(v: &Value) -> bool {
    status(v).starts_with("quantizing") && v["total"].as_u64().is_some()
}

/// A client that goes away before, during and just after quantization (before the manifest is
/// written) leaves no blob behind: what the create wrote is collected, the upload it used stays.
#[test]
fn disconnect_at_each_create_phase_leaves_no_orphan() {
    let s = TestServer::start();
    let base = s.upload(&tiny_llama());
    // A model that references the upload, so the store is orphan-free before each round.
    s.create_ok(&json!({"model": "base", "files": {"t.gguf": base}}));
    type Stop = fn(&Value) -> bool;
    let phases: [(&str, Stop); 3] = [
        ("before quantize", |v| status(v) == "parsing GGUF"),
        ("during quantize", |v| is_quantize_tick(v) && v["completed"].as_u64().unwrap_or(0) > 0),
        ("after quantize", |v| is_quantize_tick(v) && v["completed"] == v["total"]),
    ];
    let mut completed_anyway = 0;
    for round in 0..2 {
        for (phase, stop) in phases {
            let req = json!({"model": "gone", "files": {"t.gguf": base}, "quantize": "q8_0",
                "system": format!("{phase} {round}")});
            let seen = s.create_then_disconnect(&req, stop);
            assert!(seen.iter().any(stop), "{phase}: the stream never reached that point: {seen:?}");
            let (ok, report) = s.fsck_settled(SETTLE);
            assert!(ok, "{phase} (round {round}): a disconnect left the store unclean:\n{report}");
            // The server may finish the create before it sees the client go; then it is whole.
            if s.delete(&json!({"model": "gone"})).status == 200 {
                completed_anyway += 1;
            }
        }
    }
    let (ok, report) = s.fsck();
    assert!(ok, "{report}");
    eprintln!("disconnects: 6 creates abandoned at 3 phases ({completed_anyway} finished first); no orphan");
}

/// Concurrent creates of one name: each replaced manifest's blobs are collected, whichever
/// create wrote them.
#[test]
fn same_name_races_leave_no_orphan() {
    let s = Arc::new(TestServer::start());
    let base = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "keep", "files": {"m.gguf": base}}));
    let (rounds, clients) = (5, 4);
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(clients));
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (s, base, barrier) = (s.clone(), base.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let req = json!({"model": "race", "files": {"m.gguf": base},
                        "system": format!("round {round} writer {i}"), "stream": false});
                    barrier.wait();
                    let r = s.post("/api/create", &req);
                    assert_eq!(r.status, 200, "round {round} writer {i}: {}", r.body);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (ok, report) = s.fsck_settled(SETTLE);
        assert!(ok, "round {round}: orphans after {clients} concurrent creates of one name:\n{report}");
    }
    let show = s.post("/api/show", &json!({"model": "race"}));
    assert_eq!(show.status, 200, "{}", show.body);
    eprintln!("same-name races: {rounds} rounds of {clients}; {}", s.fsck().1.lines().last().unwrap_or_default());
}

/// Ollama's start-up prune: an old unreferenced blob goes at a restart, a fresh one (within the
/// grace hour) and a referenced one stay; `OLLAMA_NOPRUNE` keeps everything.
#[test]
fn restart_prunes_unreferenced_blobs_unless_noprune() {
    let s = TestServer::start();
    let used = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "m", "files": {"m.gguf": used}}));
    let old = s.upload(b"an upload no create ever used");
    let fresh = s.upload(b"an upload that may still be used");
    let blob = |models: &std::path::Path, d: &str| models.join("blobs").join(d.replace(':', "-"));
    let age = |path: &std::path::Path| {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(2 * 3600)).unwrap();
    };
    age(&blob(s.models.path(), &old));
    age(&blob(s.models.path(), &used));
    // Empty manifest folders go too.
    std::fs::create_dir_all(s.models.path().join("manifests/example.com/ns/gone")).unwrap();
    let models = s.stop();

    let mut cmd = std::process::Command::new(crate::util::kiln_bin());
    cmd.env("OLLAMA_NOPRUNE", "1").args(["serve", "--host", "127.0.0.1:0", "--models"]).arg(models.path());
    let s = TestServer::spawn(cmd, models);
    assert!(blob(s.models.path(), &old).is_file(), "OLLAMA_NOPRUNE=1 keeps unreferenced blobs");
    assert_eq!(s.request("HEAD", &format!("/api/blobs/{old}"), None).status, 200);
    let models = s.stop();

    let s = TestServer::start_in(models, &[]);
    assert!(!blob(s.models.path(), &old).exists(), "an unreferenced blob older than an hour is pruned");
    assert_eq!(s.request("HEAD", &format!("/api/blobs/{old}"), None).status, 404);
    assert!(blob(s.models.path(), &fresh).is_file(), "a blob uploaded within the hour is kept");
    assert!(blob(s.models.path(), &used).is_file(), "a referenced blob is kept, however old");
    assert!(!s.models.path().join("manifests/example.com").exists(), "empty manifest folders are removed");
    assert_eq!(s.post("/api/show", &json!({"model": "m"})).status, 200);
    let (ok, report) = s.fsck_allowing_orphans();
    assert!(ok && report.contains("1 orphans"), "only the fresh upload is left over:\n{report}");
}

/// `POST /api/blobs/<digest>` on a raw socket: the first half of `body`, then `meanwhile` (while
/// the server is reading the upload), then the rest. The response's status.
fn upload_split(s: &TestServer, d: &str, body: &[u8], meanwhile: impl FnOnce()) -> u16 {
    use std::io::{BufRead as _, Write as _};
    let addr = s.url.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    write!(sock, "POST /api/blobs/{d} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    sock.write_all(first).unwrap();
    meanwhile();
    sock.write_all(rest).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(sock).read_line(&mut line).unwrap();
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line {line:?}"))
}

/// An upload of a blob that exists races a delete of the only model using it: the delete lands
/// while the body is still arriving, and the upload's 200 (or 201) must still mean `HEAD` finds
/// the blob.
#[test]
fn upload_of_existing_blob_survives_a_concurrent_delete() {
    let s = TestServer::start();
    let body = tiny_llama();
    let d = digest(&body);
    let rounds = 6;
    let mut answered = [0; 2];
    for round in 0..rounds {
        s.upload(&body);
        s.create_ok(&json!({"model": "only", "files": {"t.gguf": d}}));
        let status = upload_split(&s, &d, &body, || {
            // Long enough for the server to have started on the upload (its existence check).
            std::thread::sleep(Duration::from_millis(if round % 2 == 0 { 100 } else { 5 }));
            assert_eq!(s.delete(&json!({"model": "only"})).status, 200);
        });
        assert!(status == 200 || status == 201, "round {round}: upload answered {status}");
        answered[usize::from(status == 201)] += 1;
        let head = s.request("HEAD", &format!("/api/blobs/{d}"), None);
        assert_eq!(head.status, 200, "round {round}: the upload answered {status} but the blob is gone");
    }
    let (ok, report) = s.fsck_allowing_orphans();
    assert!(ok, "{report}");
    eprintln!(
        "upload/delete race: {rounds} rounds, {} answered 200, {} answered 201; blob there after each",
        answered[0], answered[1]
    );
}

/// A host longer than a file name can be is refused by every endpoint with a 400, and nothing
/// is written.
#[test]
fn names_the_store_cannot_hold_are_refused() {
    let s = TestServer::start();
    let d = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "m", "files": {"m.gguf": d}}));
    let before = s.files();
    for len in [256, 300, 350] {
        let long = format!("{}/ns/model:tag", "h".repeat(len));
        for (method, path, body) in [
            ("POST", "/api/create", json!({"model": long, "files": {"m.gguf": d}})),
            ("POST", "/api/show", json!({"model": long})),
            ("POST", "/api/copy", json!({"source": "m", "destination": long})),
            ("POST", "/api/copy", json!({"source": long, "destination": "m2"})),
            ("DELETE", "/api/delete", json!({"model": long})),
        ] {
            let r = s.request(method, path, Some(body.to_string().as_bytes()));
            assert_eq!(r.status, 400, "{path} with a {len}-byte host: {}", r.body);
            let e = r.error();
            assert!(e.contains("invalid") || e.contains("is invalid"), "{path}: unclear message {e:?}");
        }
    }
    assert_eq!(s.files(), before, "a refused name changed the store");
    // The longest host a file name can hold works end to end.
    let longest = format!("{}/ns/model:tag", "h".repeat(255));
    s.create_ok(&json!({"model": longest, "files": {"m.gguf": d}}));
    assert_eq!(s.post("/api/show", &json!({"model": longest})).status, 200);
    assert_eq!(s.delete(&json!({"model": longest})).status, 200);
    let (ok, report) = s.fsck();
    assert!(ok, "{report}");
}

/// Concurrent creates of names that differ only in case end as one model, stored under one
/// spelling, with no blob of the others left behind.
#[test]
fn case_variants_created_concurrently_are_one_model() {
    let s = Arc::new(TestServer::start());
    let base = s.upload(&minimal_gguf());
    s.create_ok(&json!({"model": "keep", "files": {"m.gguf": base}}));
    let variants = ["Case", "case", "CASE", "cASE", "CaSe", "casE"];
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(variants.len()));
        let handles: Vec<_> = variants
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (s, base, barrier) = (s.clone(), base.clone(), barrier.clone());
                let name = (*name).to_owned();
                std::thread::spawn(move || {
                    let req = json!({"model": name, "files": {"m.gguf": base},
                        "system": format!("round {round} writer {i}"), "stream": false});
                    barrier.wait();
                    let r = s.post("/api/create", &req);
                    assert_eq!(r.status, 200, "{name}: {}", r.body);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let tags = s.get("/api/tags").json();
        let names: Vec<&str> = tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["name"].as_str())
            .filter(|n| *n != "keep:latest")
            .collect();
        assert_eq!(names.len(), 1, "round {round}: case variants became separate models: {names:?}");
        let manifests: Vec<String> = list_files(&s.models.path().join("manifests"))
            .into_iter()
            .filter(|f| f.to_lowercase().contains("/case/"))
            .collect();
        assert_eq!(manifests.len(), 1, "round {round}: {manifests:?}");
        let (ok, report) = s.fsck_settled(SETTLE);
        assert!(ok, "round {round}: {report}");
        assert_eq!(s.delete(&json!({"model": "CASE"})).status, 200);
    }
}
