//! `HEAD|POST /api/blobs/:digest`.

use crate::util::{TestServer, digest};

#[test]
fn upload_then_dedup_then_head() {
    let s = TestServer::start();
    let data = b"hello kiln".repeat(1000);
    let d = digest(&data);
    let r = s.post_raw(&format!("/api/blobs/{d}"), &data);
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    assert_eq!(s.blob(&d), data);
    let r = s.post_raw(&format!("/api/blobs/{d}"), b"not even read");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(s.request("HEAD", &format!("/api/blobs/{d}"), None).status, 200);
    let other = digest(b"other");
    assert_eq!(s.request("HEAD", &format!("/api/blobs/{other}"), None).status, 404);
    // The dash form and upper-case hex name the same blob.
    let dash = d.replace("sha256:", "sha256-").to_uppercase().replace("SHA256-", "sha256-");
    assert_eq!(s.request("HEAD", &format!("/api/blobs/{dash}"), None).status, 200);
}

#[test]
fn mismatch_keeps_nothing() {
    let s = TestServer::start();
    let before = s.files();
    let claimed = digest(b"something else");
    let r = s.post_raw(&format!("/api/blobs/{claimed}"), b"actual bytes");
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), format!("digest mismatch, expected \"{claimed}\", got \"{}\"", digest(b"actual bytes")));
    assert_eq!(s.files(), before, "a mismatching upload must leave no file");
}

#[test]
fn malformed_digests() {
    let s = TestServer::start();
    for bad in ["sha256:abc", "md5:00", "sha256:..%2F..%2Fetc%2Fpasswd", &"0".repeat(64), "sha256:%00"] {
        let r = s.post_raw(&format!("/api/blobs/{bad}"), b"x");
        assert_eq!((r.status, r.error().as_str()), (400, "invalid digest format"), "{bad}");
        assert_eq!(s.request("HEAD", &format!("/api/blobs/{bad}"), None).status, 400, "{bad}");
    }
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[test]
fn empty_blob() {
    let s = TestServer::start();
    let d = digest(b"");
    assert_eq!(s.post_raw(&format!("/api/blobs/{d}"), b"").status, 201);
    assert!(s.blob(&d).is_empty());
}
