//! DNS-rebinding guard, CORS, disconnected uploads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::TestServer;

fn raw(s: &TestServer, request: &str) -> String {
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.read_to_string(&mut out);
    out
}

#[test]
fn rebinding_hosts_are_refused() {
    let s = TestServer::start();
    let r = raw(&s, "GET /api/tags HTTP/1.1\r\nHost: attacker.example.com\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    for ok in ["localhost:11434", "127.0.0.1", "[::1]:80", "kiln.localhost"] {
        let r = raw(&s, &format!("GET /api/tags HTTP/1.1\r\nHost: {ok}\r\nConnection: close\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 200"), "{ok}: {r}");
    }
}

#[test]
fn cors_allows_local_origins_only() {
    let s = TestServer::start_with(&["--origins", "https://studio.example"]);
    let pre = |origin: &str| {
        raw(&s, &format!("OPTIONS /api/create HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n")).to_ascii_lowercase()
    };
    for ok in ["http://localhost:5173", "https://127.0.0.1", "app://desktop", "https://studio.example"] {
        let r = pre(ok);
        assert!(r.contains(&format!("access-control-allow-origin: {ok}")), "{ok}: {r}");
    }
    let r = pre("https://evil.example");
    assert!(!r.contains("access-control-allow-origin"), "{r}");
}

#[test]
fn a_dropped_upload_leaves_nothing() {
    let s = TestServer::start();
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    write!(c, "POST /api/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000000\r\n\r\n").unwrap();
    c.write_all(&vec![7u8; 4_000_000]).unwrap();
    let temps = || s.files().into_iter().filter(|f| f.contains(".kiln-tmp-")).count();
    let t0 = Instant::now();
    while temps() == 0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(temps(), 1, "the upload should be streaming into a temp file");
    drop(c);
    let t0 = Instant::now();
    while temps() > 0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t0.elapsed();
    assert!(s.files().is_empty(), "left behind: {:?}", s.files());
    assert!(took < Duration::from_secs(1), "temp file removed only after {took:?}");
}

#[test]
fn json_bodies_are_limited() {
    let s = TestServer::start();
    let addr = s.url.trim_start_matches("http://");
    // The server answers from the Content-Length alone (and may close before reading the body,
    // as HTTP allows), so this client sends the head and reads the answer.
    for path in ["/api/create", "/api/show", "/api/copy"] {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"model\": \"",
            (64 << 20) + 1
        )
        .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{path}: {answer}");
        assert!(answer.ends_with("{\"error\":\"request body larger than 64 MiB\"}"), "{path}: {answer}");
    }
    // Just under the limit is read and judged on its content.
    let big = format!("{{\"model\": \"m\", \"system\": \"{}\"}}", "x".repeat((64 << 20) - 40));
    let r = s.post_raw("/api/show", big.as_bytes());
    assert_eq!((r.status, r.error()), (404, "model 'm:latest' not found".to_owned()));
    assert!(s.files().is_empty());
}
