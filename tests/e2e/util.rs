//! `TestServer`: starts the built `kiln` binary on 127.0.0.1:0 with a fresh store and reads the
//! address it prints. Requests go through ureq; helpers return (status, body) for any status.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The `kiln` binary next to this test binary (`target/<profile>/kiln`), or `KILN_BIN`.
pub fn kiln_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KILN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("kiln");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p kiln-server` (or set KILN_BIN)",
        bin.display()
    );
    bin
}

/// The shared fixtures folder (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(p.is_dir(), "shared/ must sit beside the repository: {}", p.display());
    p
}

/// A Hugging Face fixture folder of `shared/fixtures/hf`, as `scripts/hf-fixtures` regenerates
/// it (`scripts/test` runs it before the tests).
pub fn hf_fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/hf").join(name).join("model");
    assert!(p.join("config.json").is_file(), "{} is missing: run scripts/hf-fixtures", p.display());
    p
}

/// The tiny llama fixture.
pub fn tiny_llama() -> Vec<u8> {
    std::fs::read(shared().join("fixtures/tiny-llama-f16.gguf")).expect("tiny-llama fixture")
}

/// `sha256:<hex>` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(bytes))
}

/// Lowercase hex SHA-256.
pub fn hex(bytes: &[u8]) -> String {
    kiln_core::Digest::from_bytes(&Sha256::digest(bytes).into()).hex().to_owned()
}

/// A running server with its own store.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The store root.
    pub models: tempfile::TempDir,
    agent: ureq::Agent,
}

/// A response: status and body text.
pub struct Resp {
    pub status: u16,
    pub body: String,
    pub content_type: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error in {:?}", self.body)).to_owned()
    }

    /// NDJSON lines parsed.
    pub fn lines(&self) -> Vec<Value> {
        assert!(!self.body.contains("\n\n"), "blank line in stream");
        self.body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))).collect()
    }

    /// The `status` of each NDJSON line (or `error: …`).
    pub fn statuses(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|v| match v["error"].as_str() {
                Some(e) => format!("error: {e}"),
                None => v["status"].as_str().unwrap_or("").to_owned(),
            })
            .collect()
    }
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let models = tempfile::tempdir().expect("tempdir");
        Self::start_in(models, args)
    }

    /// Starts on an existing store (restart tests).
    pub fn start_in(models: tempfile::TempDir, args: &[&str]) -> Self {
        let mut cmd = Command::new(kiln_bin());
        cmd.args(["serve", "--host", "127.0.0.1:0", "--models"]).arg(models.path()).args(args);
        Self::spawn(cmd, models)
    }

    /// Runs `cmd` (which must end up exec-ing `kiln serve` on `models`) and waits for its address.
    pub fn spawn(mut cmd: Command, models: tempfile::TempDir) -> Self {
        let mut child =
            cmd.env("KILN_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn kiln");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read address");
        let addr =
            line.trim().strip_prefix("kiln listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(300)).redirects(0).build();
        Self { child, url: format!("http://{addr}"), models, agent }
    }

    /// Kills the server with SIGKILL (no chance to clean up) and hands back its store.
    pub fn kill9(self) -> tempfile::TempDir {
        self.stop()
    }

    /// Runs `kiln fsck` on this server's store: (exit success, output).
    pub fn fsck(&self) -> (bool, String) {
        fsck(self.models.path())
    }

    /// Stops the server and hands back its store.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();

        std::mem::replace(&mut self.models, tempfile::tempdir().expect("tempdir"))
    }

    fn finish(r: Result<ureq::Response, ureq::Error>) -> Resp {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        let mut body = String::new();
        resp.into_reader().read_to_string(&mut body).expect("body");
        Resp { status, body, content_type }
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        let req = self.agent.request(method, &format!("{}{path}", self.url));
        Self::finish(match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        })
    }

    /// A GET with one extra header.
    pub fn get_with(&self, path: &str, header: &str, value: &str) -> Resp {
        Self::finish(self.agent.get(&format!("{}{path}", self.url)).set(header, value).call())
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, json: &Value) -> Resp {
        self.request("POST", path, Some(json.to_string().as_bytes()))
    }

    pub fn post_raw(&self, path: &str, body: &[u8]) -> Resp {
        self.request("POST", path, Some(body))
    }

    pub fn delete(&self, json: &Value) -> Resp {
        self.request("DELETE", "/api/delete", Some(json.to_string().as_bytes()))
    }

    /// Uploads a blob and returns its digest.
    pub fn upload(&self, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let r = self.post_raw(&format!("/api/blobs/{d}"), bytes);
        assert!(r.status == 201 || r.status == 200, "upload: {} {}", r.status, r.body);
        d
    }

    /// A create that must succeed; returns the stream's statuses.
    pub fn create_ok(&self, req: &Value) -> Vec<String> {
        let r = self.post("/api/create", req);
        assert_eq!(r.status, 200, "create failed: {}", r.body);
        let s = r.statuses();
        assert_eq!(s.last().map(String::as_str), Some("success"), "{s:?}");
        s
    }

    /// Every file under the store, relative, sorted (to prove nothing changed).
    pub fn files(&self) -> Vec<String> {
        list_files(self.models.path())
    }

    pub fn manifest(&self, host_ns_model_tag: &str) -> Value {
        let p = self.models.path().join("manifests").join(host_ns_model_tag);
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .expect("manifest json")
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.models.path().join("blobs").join(digest.replace(':', "-"))).expect("blob")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The 68-byte GGUF with one key `general.architecture = "test"` (spec §5.5).
pub fn minimal_gguf() -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    let key = b"general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&4u64.to_le_bytes());
    b.extend_from_slice(b"test");
    b
}

/// Runs `kiln fsck` on a store: (exit success, output).
pub fn fsck(models: &Path) -> (bool, String) {
    let out = Command::new(kiln_bin()).args(["fsck", "--models"]).arg(models).output().expect("run kiln fsck");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The harnesses' deterministic RNG (xorshift64*), seeded and printed by each test.
pub use kiln_core::rng::Rng;

/// A seed from `KILN_SEED`, else the clock; printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("KILN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("{test}: seed {seed} (replay with KILN_SEED={seed})");
    seed
}

/// Connection-level helpers (`limits.rs`): the server process and raw sockets.
impl TestServer {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The server's resident memory (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS");
        kib >> 10
    }

    /// The server's `/proc/PID/limits` line for open files: (soft, hard).
    pub fn nofile_limit(&self) -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).expect("proc limits");
        let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line").to_owned();
        let mut w = line.split_whitespace().skip(3);
        (w.next().unwrap_or_default().to_owned(), w.next().unwrap_or_default().to_owned())
    }

    /// Sends `SIGTERM` and waits up to `within` for the process to exit; `None` if it did not.
    pub fn terminate(&mut self, within: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let t0 = std::time::Instant::now();
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
        while t0.elapsed() < within {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some((status, t0.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// A raw connection to `addr` with read and write timeouts.
pub fn connect(addr: &str, timeout: Duration) -> std::net::TcpStream {
    let c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(timeout)).expect("read timeout");
    c.set_write_timeout(Some(timeout)).expect("write timeout");
    c
}

/// Reads until the server closes the connection (or the read timeout): how long that took and
/// whether it was a close (EOF or reset) rather than the timeout.
pub fn time_until_closed(c: &mut std::net::TcpStream) -> (Duration, bool) {
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (t0.elapsed(), true),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (t0.elapsed(), false);
            }
            Err(_) => return (t0.elapsed(), true),
        }
    }
}

/// Runs `kiln fsck` with extra flags on a store: (exit success, output).
pub fn fsck_with(models: &Path, flags: &[&str]) -> (bool, String) {
    let out =
        Command::new(kiln_bin()).args(["fsck", "--models"]).arg(models).args(flags).output().expect("run kiln fsck");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

impl TestServer {
    /// `kiln fsck --allow-orphans`: for stores that legitimately hold uploads no model uses.
    pub fn fsck_allowing_orphans(&self) -> (bool, String) {
        fsck_with(self.models.path(), &["--allow-orphans"])
    }

    /// Polls `kiln fsck` (orphans included) for up to `wait` until it passes: a create that
    /// lost its client cleans up just after the connection closes. The last (exit, output).
    pub fn fsck_settled(&self, wait: Duration) -> (bool, String) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let (ok, report) = self.fsck();
            if ok || std::time::Instant::now() >= deadline {
                return (ok, report);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a streaming `POST /api/create` on a raw socket, reads its NDJSON lines until one
    /// satisfies `stop` (or the stream ends), then drops the connection. The lines read.
    pub fn create_then_disconnect(&self, req: &Value, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
        use std::io::Write as _;
        let addr = self.url.trim_start_matches("http://");
        let mut sock = std::net::TcpStream::connect(addr).expect("connect");
        let body = req.to_string();
        write!(
            sock,
            "POST /api/create HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        sock.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        let mut seen = Vec::new();
        let mut reader = BufReader::new(sock);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return seen;
            }
            // Chunked framing: size lines and blank lines between the NDJSON objects.
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else { continue };
            let done = stop(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

/// What a `kiln` client command printed.
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl TestServer {
    /// `kiln <args>` run in `cwd` against this server (`OLLAMA_HOST`); stderr is not a terminal,
    /// so progress comes as plain lines.
    pub fn cli(&self, cwd: &Path, args: &[&str]) -> CliOut {
        let out = self.cli_command(cwd, args).output().expect("run kiln");
        CliOut {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `Command` behind [`TestServer::cli`], for tests that drive the child themselves.
    pub fn cli_command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(kiln_bin());
        cmd.args(args).current_dir(cwd).env("OLLAMA_HOST", self.addr());
        cmd
    }

    /// The store's blob file names and modification times.
    pub fn blob_times(&self) -> Vec<(String, std::time::SystemTime)> {
        let mut out: Vec<_> = std::fs::read_dir(self.models.path().join("blobs"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().modified().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}
