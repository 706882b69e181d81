//! SIGKILL at random points of uploads, creates (with quantization) and deletes; after each kill
//! the server restarts on the same store and `kiln fsck` must find it consistent: every model
//! whole (its blobs present, right sizes and digests) or absent, no temp file left.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{Rng, TestServer, digest, seed, tiny_llama};

/// One request of a round; `true` when it completed.
fn act(url: &str, action: u64, name: &str, round: u64, payload: &[u8]) -> bool {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let post = |path: &str, body: &[u8]| agent.post(&format!("{url}{path}")).send_bytes(body).is_ok();
    let d = digest(payload);
    match action {
        0 => post(&format!("/api/blobs/{d}"), payload),
        1 => {
            let req = json!({"model": name, "files": {"t.gguf": d}, "quantize": "q4_K_M", "stream": false});
            post(&format!("/api/blobs/{d}"), payload) && post("/api/create", req.to_string().as_bytes())
        }
        2 => {
            let req = json!({"model": name, "from": "m0", "system": format!("round {round}"), "parameters": {"top_k": round}, "stream": false});
            post("/api/create", req.to_string().as_bytes())
        }
        _ => agent.delete(&format!("{url}/api/delete")).send_string(&json!({"model": name}).to_string()).is_ok(),
    }
}

#[test]
fn sigkill_at_random_points_leaves_a_consistent_store() {
    let mut rng = Rng::new(seed("crash"));
    let tiny = tiny_llama();
    // How long each kind of request takes here, so that kill points can be spread over it.
    let mut took = [0u64; 4];
    {
        let s = TestServer::start();
        for (action, t) in took.iter_mut().enumerate() {
            let start = Instant::now();
            act(&s.url, action as u64, "m0", 0, &tiny);
            *t = u64::try_from(start.elapsed().as_millis()).unwrap().max(2);
        }
    }
    let mut models = tempfile::tempdir().unwrap();
    // Go on until 24 kills have landed while a request was running (kills after it finished
    // count too, but prove less); the cap only stops a machine too loaded to ever land one.
    let (wanted, cap) = (24, 160);
    let mut killed_busy = 0;
    let mut rounds = 0;
    while killed_busy < wanted && rounds < cap {
        let round = rounds;
        rounds += 1;
        let s = TestServer::start_in(models, &[]);
        let url = s.url.clone();
        let action = rng.below(4);
        let name = format!("m{}", rng.below(3));
        let payload = tiny.clone();
        let worker = std::thread::spawn(move || act(&url, action, &name, round, &payload));
        let delay = rng.below(took[action as usize] * 5 / 4);
        std::thread::sleep(Duration::from_millis(delay));
        if !worker.is_finished() {
            killed_busy += 1;
        }
        models = s.kill9();
        let _ = worker.join();
        // Restart (which sweeps temp files), then check.
        let s = TestServer::start_in(models, &[]);
        // A kill between a blob and its manifest leaves the blob until a prune an hour later.
        let (ok, report) = s.fsck_allowing_orphans();
        assert!(ok, "round {round} (action {action}, kill after {delay} ms): store inconsistent:\n{report}");
        for m in s.get("/api/tags").json()["models"].as_array().unwrap() {
            let show = s.post("/api/show", &json!({"model": m["name"]}));
            assert_eq!(show.status, 200, "round {round}: {} listed but unreadable: {}", m["name"], show.body);
        }
        models = s.stop();
    }
    eprintln!(
        "crash: {rounds} SIGKILLs ({killed_busy} while the request was still running; request times {took:?} ms); store consistent after each"
    );
    assert!(killed_busy >= wanted, "only {killed_busy} of {rounds} kills landed mid-request");
}
