//! The store stays consistent (issue 15): a name the store cannot hold is a 400 everywhere.

use serde_json::json;

use crate::util::{TestServer, minimal_gguf};

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
