//! Slow and hostile clients (issue 15): stalled bodies stay within the JSON buffer cap, a huge
//! parameter key does not stall other requests, header and idle timeouts close connections, a
//! full fd table still answers, and SIGTERM exits within its deadline. Each test is bounded in
//! time and count, loopback only.

use std::io::{Read, Write};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{TestServer, connect, kiln_bin, time_until_closed};

/// Reads one response whose length is given (`Content-Length`), leaving the connection open.
fn read_response(c: &mut std::net::TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).expect("read response");
        assert!(n > 0, "closed mid-response: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[test]
fn stalled_json_bodies_stay_within_the_buffer_cap() {
    const CAP_MIB: u64 = 64;
    const CLIENTS: usize = 16;
    const EACH_MIB: usize = 24;
    // glibc keeps freed heap memory after its mmap threshold has grown (it does after the first
    // large free), so RSS would count buffers already given back; a fixed threshold makes every
    // large buffer its own mapping, returned on free, and RSS then measures what is held.
    let models = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models"])
        .arg(models.path())
        .args(["--json-buffer-mib", "64", "--body-timeout", "10"])
        .env("MALLOC_MMAP_THRESHOLD_", "131072");
    let s = TestServer::spawn(cmd, models);
    let base = s.rss_mib();
    let t0 = Instant::now();
    // Each client sends most of a create body in 1 MiB chunks (chunked, so the server learns
    // the size only as it comes), then stalls with the socket open.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = s.addr().to_owned();
            thread::spawn(move || {
                let mut c = connect(&addr, Duration::from_secs(15));
                let head = "POST /api/create HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
                let mut sent = c.write_all(head.as_bytes()).is_ok();
                let chunk = format!("100000\r\n{}\r\n", "x".repeat(1 << 20));
                let start = "{\"model\":\"m\",\"system\":\"";
                sent = sent && c.write_all(format!("{:x}\r\n{start}\r\n", start.len()).as_bytes()).is_ok();
                for _ in 0..EACH_MIB {
                    sent = sent && c.write_all(chunk.as_bytes()).is_ok();
                }
                (c, sent)
            })
        })
        .collect();
    let mut clients: Vec<_> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    let stalled = clients.iter().filter(|(_, sent)| *sent).count();
    thread::sleep(Duration::from_millis(500));
    let held = s.rss_mib().saturating_sub(base);
    eprintln!(
        "{stalled} of {CLIENTS} clients sent {EACH_MIB} MiB and stalled; server holds {held} MiB more than at start"
    );
    assert!(held < CAP_MIB + 64, "{held} MiB held with a {CAP_MIB} MiB cap");
    assert!(t0.elapsed() < Duration::from_secs(9), "sending took {:?}: the stall check came too late", t0.elapsed());
    // The server still answers, and a body over the cap was refused with a clear 503.
    assert_eq!(s.get("/api/version").status, 200);
    let mut answers = Vec::new();
    for (c, _) in &mut clients {
        let mut text = String::new();
        let _ = c.read_to_string(&mut text);
        answers.push(text.lines().next().unwrap_or("(closed)").to_owned());
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("{\"error\":\"server busy:"), "{text}");
        }
    }
    eprintln!("answers: {answers:?}");
    assert!(answers.iter().any(|a| a.starts_with("HTTP/1.1 503")), "{answers:?}");
    // Those that got under the cap stalled and were timed out (408), which gave the budget back.
    assert!(answers.iter().any(|a| a.starts_with("HTTP/1.1 408")), "{answers:?}");
    let big = format!("{{\"model\": \"m\", \"system\": \"{}\"}}", "x".repeat(40 << 20));
    let r = s.post_raw("/api/show", big.as_bytes());
    assert_eq!((r.status, r.error()), (404, "model 'm:latest' not found".to_owned()));
}

#[test]
fn hostile_parameter_keys_do_not_stall_other_requests() {
    let s = TestServer::start();
    let key = "k".repeat(20 << 20);
    let body = json!({"model": "m", "from": "base", "parameters": {key: 1}}).to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..2)
        .map(|_| {
            let (url, body, stop) = (s.url.clone(), body.clone(), stop.clone());
            thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).build();
                let mut errors = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match agent.post(&format!("{url}/api/create")).send_string(&body) {
                        Err(ureq::Error::Status(code, r)) => errors.push((code, r.into_string().unwrap())),
                        other => panic!("expected a 400, got {other:?}"),
                    }
                }
                errors
            })
        })
        .collect();
    // Let the hostile bodies start arriving before measuring.
    thread::sleep(Duration::from_millis(300));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
    let mut times: Vec<Duration> = (0..100)
        .map(|_| {
            let t0 = Instant::now();
            assert_eq!(agent.get(&format!("{}/api/version", s.url)).call().unwrap().status(), 200);
            let took = t0.elapsed();
            thread::sleep(Duration::from_millis(20));
            took
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let errors: Vec<_> = attackers.into_iter().flat_map(|h| h.join().unwrap()).collect();
    times.sort();
    let (p50, p99, max) = (times[49], times[98], times[99]);
    eprintln!("/api/version under {} hostile creates: p50 {p50:?}, p99 {p99:?}, max {max:?}", errors.len());
    assert!(!errors.is_empty());
    for (code, body) in &errors {
        assert_eq!(*code, 400);
        assert!(body.len() < 200, "the error echoes the key: {} bytes", body.len());
        assert!(body.contains("unknown parameter 'kkkk") && body.contains("…'"), "{body}");
    }
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?} (max {max:?})");
}

#[test]
fn partial_headers_are_disconnected_at_the_header_timeout() {
    let s = TestServer::start_with(&["--header-timeout", "2", "--idle-timeout", "30"]);
    // A slowloris: a header byte every 300 ms, never the blank line.
    let mut c = connect(s.addr(), Duration::from_secs(10));
    let t0 = Instant::now();
    c.write_all(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    let mut closed_after = None;
    while t0.elapsed() < Duration::from_secs(8) {
        if c.write_all(b"X").is_err() {
            closed_after = Some(t0.elapsed());
            break;
        }
        c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        if let (_, true) = time_until_closed(&mut c) {
            closed_after = Some(t0.elapsed());
            break;
        }
    }
    let took = closed_after.expect("a partial request head was held for 8 s");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_millis(3500), "closed after {took:?}");
    // A connection that sends nothing at all is closed at the same timeout.
    let mut quiet = connect(s.addr(), Duration::from_secs(8));
    let (took, closed) = time_until_closed(&mut quiet);
    assert!(closed && took < Duration::from_millis(3500), "silent connection: closed {closed} after {took:?}");
    assert_eq!(s.get("/api/version").status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let s = TestServer::start_with(&["--header-timeout", "10", "--idle-timeout", "2"]);
    let mut c = connect(s.addr(), Duration::from_secs(10));
    for _ in 0..2 {
        c.write_all(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let r = read_response(&mut c);
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    let (took, closed) = time_until_closed(&mut c);
    assert!(closed, "an idle keep-alive connection was kept for {took:?}");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_millis(3500), "closed after {took:?}");
}

#[test]
fn the_soft_fd_limit_is_raised_to_the_hard_one() {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    cmd.args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\""])
        .arg(kiln_bin())
        .args(["serve", "--host", "127.0.0.1:0", "--models"])
        .arg(models.path());
    let s = TestServer::spawn(cmd, models);
    let (soft, hard) = s.nofile_limit();
    assert_eq!(soft, hard, "soft limit {soft}, hard {hard}");
}

#[test]
fn a_full_fd_table_still_answers() {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    cmd.args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\""])
        .arg(kiln_bin())
        .args(["serve", "--host", "127.0.0.1:0", "--models"])
        .arg(models.path());
    let s = TestServer::spawn(cmd, models);
    assert_eq!(s.nofile_limit().0, "256");
    let idle: Vec<_> = (0..300).map(|_| connect(s.addr(), Duration::from_secs(5))).collect();
    thread::sleep(Duration::from_millis(300));
    for attempt in 0..3 {
        let mut c = connect(s.addr(), Duration::from_secs(3));
        let t0 = Instant::now();
        c.write_all(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = c.read_to_string(&mut text);
        let took = t0.elapsed();
        assert!(
            text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 503"),
            "attempt {attempt}: {took:?}: {text:?}"
        );
        assert!(took < Duration::from_secs(3), "attempt {attempt}: answered after {took:?}");
    }
    drop(idle);
}

#[test]
fn sigterm_with_a_stalled_upload_exits_within_the_deadline() {
    let mut s = TestServer::start_with(&["--shutdown-timeout", "2", "--body-timeout", "60", "--header-timeout", "60"]);
    let mut upload = connect(s.addr(), Duration::from_secs(10));
    let digest = format!("sha256:{}", "ab".repeat(32));
    write!(upload, "POST /api/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000000\r\n\r\n").unwrap();
    upload.write_all(&vec![7u8; 1 << 20]).unwrap();
    let temps = |s: &TestServer| s.files().into_iter().filter(|f| f.contains(".kiln-tmp-")).count();
    let t0 = Instant::now();
    while temps(&s) == 0 && t0.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(temps(&s), 1, "the upload should be streaming into a temp file");
    // An idle keep-alive connection and a partial request head must not hold the exit either.
    let mut idle = connect(s.addr(), Duration::from_secs(10));
    idle.write_all(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    assert!(read_response(&mut idle).starts_with("HTTP/1.1 200"));
    let mut partial = connect(s.addr(), Duration::from_secs(10));
    partial.write_all(b"GET /api/version HTTP/1.1\r\nHost: loc").unwrap();
    let (status, took) = s.terminate(Duration::from_secs(4)).expect("still running 4 s after SIGTERM");
    eprintln!("exited {status} {took:?} after SIGTERM");
    assert!(took < Duration::from_secs(4));
    let (_, out) = s.fsck();
    assert!(!out.contains("temp:"), "fsck: {out}");
    assert_eq!(temps(&s), 0, "{:?}", s.files());
}
