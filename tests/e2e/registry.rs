//! `POST /api/push` and `/api/pull` against a real OCI registry: Debian's `docker-registry`
//! (CNCF Distribution) started by each test on a loopback port, read back by `skopeo` as an
//! independent client; a loopback proxy in front of it counts the requests and, when told,
//! cuts a blob stream midway, serves a wrong blob or a hostile manifest. The registry is
//! required: a test fails (it is never skipped) when `docker-registry` or `skopeo` is missing.

use std::io::{BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Resp, TestServer, digest, kiln_bin, tiny_llama};

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn require(tool: &str, package: &str) {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "`{tool}` is not installed: these tests need Debian's {package} package (scripts/setup installs it)");
}

/// A `docker-registry` on 127.0.0.1 with filesystem storage in a temp folder.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Without authentication, or behind basic auth (`htpasswd -B`) for `user`/`password`.
    fn start(auth: Option<(&str, &str)>) -> Self {
        require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect(
                "`htpasswd` is not installed: these tests need Debian's apache2-utils (scripts/setup installs it)",
            );
            assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ureq::get(&format!("http://{}/v2/", reg.addr)).call() {
                Ok(_) | Err(ureq::Error::Status(401, _)) => return reg,
                Err(e) => assert!(Instant::now() < deadline, "docker-registry did not come up: {e}\n{}", reg.log()),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A blob as the registry serves it (basic auth when given).
    fn blob(&self, repo: &str, digest: &str, auth: Option<(&str, &str)>) -> Vec<u8> {
        let mut req = ureq::get(&format!("http://{}/v2/{repo}/blobs/{digest}", self.addr));
        if let Some((u, p)) = auth {
            req = req.set("Authorization", &format!("Basic {}", base64_encode(&format!("{u}:{p}"))));
        }
        let mut out = Vec::new();
        req.call().unwrap().into_reader().read_to_end(&mut out).unwrap();
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_encode(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `skopeo inspect --raw` of an image: the manifest bytes as the registry holds them.
fn skopeo_manifest(image: &str, creds: Option<&str>) -> Vec<u8> {
    require("skopeo", "skopeo");
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    let out = cmd.arg(format!("docker://{image}")).output().unwrap();
    assert!(out.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// What the proxy does to the traffic it relays.
#[derive(Default)]
struct Tamper {
    /// Blob bodies stop at this offset of the blob (the connection closes).
    cut_at: Option<u64>,
    /// Blob bodies have one byte changed.
    corrupt: bool,
    /// Manifest GETs are answered with these bytes.
    manifest: Option<Vec<u8>>,
}

/// A loopback HTTP proxy in front of a registry: one request per connection (it answers
/// `Connection: close`), each logged as `METHOD PATH [Range]`.
struct Proxy {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    tamper: Arc<Mutex<Tamper>>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let tamper = Arc::new(Mutex::new(Tamper::default()));
        let (l, t, up) = (log.clone(), tamper.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (l, t, up) = (l.clone(), t.clone(), up.clone());
                std::thread::spawn(move || relay(conn, &up, &l, &t));
            }
        });
        Self { addr, log, tamper }
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn set(&self, t: Tamper) {
        *self.tamper.lock().unwrap() = t;
    }
}

/// Reads an HTTP head (request or status line, headers) up to the blank line.
fn read_head(r: &mut impl std::io::BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            return Some((first.trim_end().to_owned(), headers));
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn write_head(w: &mut impl std::io::Write, first: &str, headers: &[(String, String)]) -> std::io::Result<()> {
    let mut s = format!("{first}\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("connection")) {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("Connection: close\r\n\r\n");
    w.write_all(s.as_bytes())
}

fn relay(client: TcpStream, upstream: &str, log: &Mutex<Vec<String>>, tamper: &Mutex<Tamper>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let Some((line, headers)) = read_head(&mut reader) else { return };
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let len: usize = header(&headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let range = header(&headers, "range").map(|r| format!(" {r}")).unwrap_or_default();
    log.lock().unwrap().push(format!("{method} {}{range}", path.split('?').next().unwrap_or("")));
    let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
    let fake = tamper.lock().unwrap().manifest.clone();
    if method == "GET"
        && path.contains("/manifests/")
        && let Some(m) = fake
    {
        let h = vec![
            ("Content-Type".to_owned(), MANIFEST_TYPE.to_owned()),
            ("Content-Length".to_owned(), m.len().to_string()),
        ];
        let _ = write_head(&mut client, "HTTP/1.1 200 OK", &h).and_then(|()| client.write_all(&m));
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    if write_head(&mut up, &line, &headers).and_then(|()| up.write_all(&body)).is_err() {
        return;
    }
    let mut ur = BufReader::new(up);
    let Some((status, rheaders)) = read_head(&mut ur) else { return };
    let mut rbody = Vec::new();
    if method != "HEAD" {
        let _ = ur.read_to_end(&mut rbody);
    }
    let ok = status.contains(" 200") || status.contains(" 206");
    let mut send = rbody.len();
    if is_blob_get && ok {
        let start: u64 = header(&rheaders, "content-range")
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next()?.parse().ok())
            .unwrap_or(0);
        let t = tamper.lock().unwrap();
        if t.corrupt && !rbody.is_empty() {
            let mid = rbody.len() / 2;
            rbody[mid] ^= 0x5a;
        }
        if let Some(cut) = t.cut_at {
            send = usize::try_from(cut.saturating_sub(start)).unwrap().min(rbody.len());
        }
    }
    let _ = write_head(&mut client, &status, &rheaders).and_then(|()| client.write_all(&rbody[..send]));
    let _ = client.flush();
}

/// A kiln server whose environment holds exactly `env` of the registry settings (no docker
/// config from the machine).
fn kiln(env: &[(&str, &str)]) -> TestServer {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models"]).arg(models.path());
    cmd.env_remove("KILN_REGISTRY_USER").env_remove("KILN_REGISTRY_PASSWORD");
    cmd.env("DOCKER_CONFIG", models.path().join("no-docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    TestServer::spawn(cmd, models)
}

/// Creates `name` from the tiny llama with a template, system prompt and parameters (four
/// layers and a config).
fn create_model(srv: &TestServer, name: &str) {
    let d = srv.upload(&tiny_llama());
    srv.create_ok(&json!({"model": name, "files": {"tiny.gguf": d}, "template": "{{ .Prompt }}",
        "system": "be brief", "parameters": {"temperature": 0.5}}));
}

/// `<host>/<ns>/<model>:<tag>` → its manifest file's bytes in the store.
fn manifest_bytes(srv: &TestServer, name: &str) -> Vec<u8> {
    let (rest, tag) = name.rsplit_once(':').unwrap();
    let p = srv.models.path().join("manifests").join(rest).join(tag);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every digest a manifest names: layers, then the config.
fn digests(manifest: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(manifest).unwrap();
    let mut out: Vec<String> =
        v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect();
    out.push(v["config"]["digest"].as_str().unwrap().to_owned());
    out
}

fn transfer(srv: &TestServer, what: &str, name: &str) -> Resp {
    srv.post(&format!("/api/{what}"), &json!({"model": name, "insecure": true}))
}

/// The files under `blobs/` (names only).
fn blob_files(srv: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(srv.models.path().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn push_then_pull_back_and_into_an_empty_store_byte_identical() {
    let reg = Registry::start(None);
    let a = kiln(&[]);
    let name = format!("{}/ns/tiny:v1", reg.addr);
    create_model(&a, &name);
    let manifest = manifest_bytes(&a, &name);

    let r = transfer(&a, "push", &name);
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.statuses();
    assert_eq!(s.first().map(String::as_str), Some("retrieving manifest"), "{s:?}");
    assert_eq!(&s[s.len() - 2..], ["pushing manifest", "success"], "{s:?}");
    for d in digests(&manifest) {
        let status = format!("pushing {}", &d[7..19]);
        let lines: Vec<Value> = r.lines().into_iter().filter(|l| l["status"] == status.as_str()).collect();
        let last = lines.last().unwrap_or_else(|| panic!("no {status} line: {s:?}"));
        assert_eq!(last["digest"], d.as_str());
        assert_eq!(last["completed"], last["total"], "{last}");
        // The registry holds each blob byte for byte (plain GETs).
        assert_eq!(digest(&reg.blob("ns/tiny", &d, None)), d);
    }
    // An independent OCI client reads back kiln's manifest, byte for byte.
    assert_eq!(skopeo_manifest(&format!("{}/ns/tiny:v1", reg.addr), None), manifest);

    // Deleted here, pulled back: the same manifest bytes and blobs.
    let blobs_before: Vec<(String, Vec<u8>)> =
        digests(&manifest).into_iter().map(|d| (d.clone(), a.blob(&d))).collect();
    assert_eq!(a.delete(&json!({"model": name})).status, 200);
    assert!(!a.models.path().join("blobs").join(digests(&manifest)[0].replace(':', "-")).exists());
    let r = transfer(&a, "pull", &name);
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.statuses();
    assert_eq!(s.first().map(String::as_str), Some("pulling manifest"), "{s:?}");
    assert_eq!(&s[s.len() - 3..], ["verifying sha256 digest", "writing manifest", "success"], "{s:?}");
    assert_eq!(manifest_bytes(&a, &name), manifest);
    for (d, bytes) in &blobs_before {
        assert_eq!(&a.blob(d), bytes, "{d}");
    }
    assert!(a.fsck().0, "{}", a.fsck().1);

    // A second kiln with an empty store.
    let b = kiln(&[]);
    let r = b.post("/api/pull", &json!({"model": name, "insecure": true, "stream": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"status": "success"}));
    assert_eq!(manifest_bytes(&b, &name), manifest);
    for (d, bytes) in &blobs_before {
        assert_eq!(&b.blob(d), bytes, "{d}");
    }
    assert_eq!(b.post("/api/show", &json!({"model": name})).json()["system"], "be brief");
    assert!(b.fsck().0, "{}", b.fsck().1);
    // Pulling again downloads nothing: each blob one line, already complete.
    let r = transfer(&b, "pull", &name);
    let pulling: Vec<Value> = r
        .lines()
        .into_iter()
        .filter(|l| l["status"].as_str().is_some_and(|s| s.starts_with("pulling ") && s != "pulling manifest"))
        .collect();
    assert_eq!(pulling.len(), blobs_before.len(), "{}", r.body);
    assert!(pulling.iter().all(|l| l["completed"] == l["total"]), "{}", r.body);
}

#[test]
fn a_second_push_uploads_nothing_and_the_cli_shows_push_and_pull() {
    let reg = Registry::start(None);
    let proxy = Proxy::start(&reg.addr);
    let a = kiln(&[]);
    let name = format!("{}/ns/tiny:v1", proxy.addr);
    create_model(&a, &name);
    let cwd = tempfile::tempdir().unwrap();
    let out = a.cli(cwd.path(), &["push", &name, "--insecure"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("retrieving manifest\n") && out.stderr.ends_with("pushing manifest\nsuccess\n"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, format!("\nYou can find your model at:\n\n\t{name}\n\n"));
    let first = proxy.take_log();
    assert!(first.iter().any(|l| l.starts_with("POST ") && l.ends_with("/blobs/uploads/")), "{first:?}");

    let r = transfer(&a, "push", &name);
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);
    let second = proxy.take_log();
    let manifest = manifest_bytes(&a, &name);
    // Only a HEAD per blob and the manifest PUT: no upload started.
    assert_eq!(second.len(), digests(&manifest).len() + 1, "{second:?}");
    assert!(second.iter().all(|l| l.starts_with("HEAD ") || l == "PUT /v2/ns/tiny/manifests/v1"), "{second:?}");

    // `kiln pull` into another kiln.
    let b = kiln(&[]);
    let out = b.cli(cwd.path(), &["pull", &name, "--insecure"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.starts_with("pulling manifest\n"), "{}", out.stderr);
    assert!(out.stderr.ends_with("verifying sha256 digest\nwriting manifest\nsuccess\n"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("pulling {}\n", &digests(&manifest)[0][7..19])), "{}", out.stderr);
    assert_eq!(manifest_bytes(&b, &name), manifest);
    // A missing model: Ollama's words, which its CLI matches.
    let out = b.cli(cwd.path(), &["pull", &format!("{}/ns/nothing:v1", proxy.addr), "--insecure"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("pull model manifest: file does not exist"), "{}", out.stderr);
}

#[test]
fn an_interrupted_pull_resumes_with_a_range_request() {
    let reg = Registry::start(None);
    let a = kiln(&[]);
    let direct = format!("{}/ns/tiny:v1", reg.addr);
    create_model(&a, &direct);
    assert_eq!(transfer(&a, "push", &direct).statuses().last().map(String::as_str), Some("success"));
    let manifest = manifest_bytes(&a, &direct);
    let model = digests(&manifest)[0].clone();
    let size = tiny_llama().len() as u64;

    let proxy = Proxy::start(&reg.addr);
    let name = format!("{}/ns/tiny:v1", proxy.addr);
    let cut = size / 2 + 12_345;
    proxy.set(Tamper { cut_at: Some(cut), ..Tamper::default() });
    let b = kiln(&[]);
    let r = transfer(&b, "pull", &name);
    assert_eq!(r.status, 200, "{}", r.body);
    let last = r.lines().last().cloned().unwrap();
    assert!(
        last["error"].as_str().is_some_and(|e| e.contains(&format!("broke off after {cut} of {size} bytes"))),
        "{}",
        r.body
    );
    // The partial stays (named by its digest), nothing is published, no manifest.
    let partial = format!(".kiln-tmp-partial-{}", model.replace(':', "-"));
    assert_eq!(blob_files(&b), std::slice::from_ref(&partial));
    assert_eq!(std::fs::metadata(b.models.path().join("blobs").join(&partial)).unwrap().len(), cut);
    assert!(!b.models.path().join("manifests").join(&proxy.addr).exists());
    // Within the pull it already retried from where it stopped.
    let log = proxy.take_log();
    assert!(log.contains(&format!("GET /v2/ns/tiny/blobs/{model} bytes={cut}-")), "{log:?}");

    proxy.set(Tamper::default());
    let r = transfer(&b, "pull", &name);
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);
    let log = proxy.take_log();
    let model_gets: Vec<&String> =
        log.iter().filter(|l| l.starts_with(&format!("GET /v2/ns/tiny/blobs/{model}"))).collect();
    assert_eq!(model_gets, [&format!("GET /v2/ns/tiny/blobs/{model} bytes={cut}-")], "{log:?}");
    assert_eq!(manifest_bytes(&b, &name), manifest);
    assert_eq!(b.blob(&model), tiny_llama());
    assert!(b.fsck().0, "{}", b.fsck().1);
}

#[test]
fn a_wrong_blob_fails_the_pull_and_leaves_nothing() {
    let reg = Registry::start(None);
    let a = kiln(&[]);
    let direct = format!("{}/ns/tiny:v1", reg.addr);
    create_model(&a, &direct);
    assert_eq!(transfer(&a, "push", &direct).statuses().last().map(String::as_str), Some("success"));
    let model = digests(&manifest_bytes(&a, &direct))[0].clone();

    let proxy = Proxy::start(&reg.addr);
    proxy.set(Tamper { corrupt: true, ..Tamper::default() });
    let b = kiln(&[]);
    let name = format!("{}/ns/tiny:v1", proxy.addr);
    let r = b.post("/api/pull", &json!({"model": name, "insecure": true, "stream": false}));
    assert_eq!(r.status, 500, "{}", r.body);
    let e = r.error();
    assert!(
        e.starts_with(&format!("digest mismatch, file must be downloaded again: want {model}, got sha256:")),
        "{e}"
    );
    assert_eq!(blob_files(&b), Vec::<String>::new(), "no partial, no blob");
    assert!(!b.models.path().join("manifests").join(&proxy.addr).exists());
    assert!(b.fsck().0, "{}", b.fsck().1);
}

#[test]
fn hostile_manifests_are_refused_and_nothing_is_written() {
    let reg = Registry::start(None);
    let proxy = Proxy::start(&reg.addr);
    let b = kiln(&[]);
    let name = format!("{}/ns/evil:v1", proxy.addr);
    let good = format!("sha256:{}", "a".repeat(64));
    let layer = |d: &str, media: &str| json!({"mediaType": media, "digest": d, "size": 3});
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": layer(&good, "application/vnd.docker.container.image.v1+json"),
                "layers": [layer("sha256:../../../../etc/passwd", "application/vnd.ollama.image.model")]})
            .to_string()
            .into_bytes(),
            "pull model manifest: ",
        ),
        (
            json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": layer(&good, "application/vnd.docker.container.image.v1+json"),
                "layers": [layer(&good, "application/vnd.docker.image.rootfs.diff.tar.gzip")]})
            .to_string()
            .into_bytes(),
            "not an Ollama model",
        ),
        (vec![b' '; 5 << 20], "larger than"),
        (b"{\"schemaVersion\": 2".to_vec(), "pull model manifest: "),
    ];
    for (bytes, want) in cases {
        proxy.set(Tamper { manifest: Some(bytes), ..Tamper::default() });
        let r = transfer(&b, "pull", &name);
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(r.error().contains(want), "{} vs {want}", r.error());
        assert_eq!(b.files(), Vec::<String>::new(), "nothing written");
    }
}

#[test]
fn credentials_from_the_environment_and_docker_config_and_a_clear_401() {
    let (user, password) = ("kiln", "s3cret-pass");
    let reg = Registry::start(Some((user, password)));
    let name = format!("{}/ns/tiny:v1", reg.addr);

    let none = kiln(&[]);
    create_model(&none, &name);
    let r = transfer(&none, "push", &name);
    assert_eq!(r.status, 500, "{}", r.body);
    let e = r.error();
    assert!(e.contains("401") && e.contains("requires credentials") && e.contains("KILN_REGISTRY_USER"), "{e}");

    let wrong = kiln(&[("KILN_REGISTRY_USER", user), ("KILN_REGISTRY_PASSWORD", "wrong")]);
    create_model(&wrong, &name);
    let r = transfer(&wrong, "push", &name);
    assert_eq!(r.status, 500, "{}", r.body);
    let e = r.error();
    assert!(e.contains("401") && e.contains("refused the credentials"), "{e}");
    assert!(!e.contains("wrong"), "the password never shows: {e}");
    let r = transfer(&wrong, "pull", &name);
    assert!(r.status == 500 && r.error().contains("refused the credentials"), "{}", r.body);

    let right = kiln(&[("KILN_REGISTRY_USER", user), ("KILN_REGISTRY_PASSWORD", password)]);
    create_model(&right, &name);
    let r = transfer(&right, "push", &name);
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);
    let manifest = manifest_bytes(&right, &name);
    assert_eq!(skopeo_manifest(&name, Some(&format!("{user}:{password}"))), manifest);
    let d = digests(&manifest)[0].clone();
    assert_eq!(digest(&reg.blob("ns/tiny", &d, Some((user, password)))), d);

    // docker's config.json, per host.
    let docker = tempfile::tempdir().unwrap();
    let entry = base64_encode(&format!("{user}:{password}"));
    std::fs::write(
        docker.path().join("config.json"),
        json!({"auths": {reg.addr.clone(): {"auth": entry}}}).to_string(),
    )
    .unwrap();
    let other = kiln_with_docker_config(docker.path());
    let r = transfer(&other, "pull", &name);
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);
    assert_eq!(manifest_bytes(&other, &name), manifest);
}

fn kiln_with_docker_config(dir: &Path) -> TestServer {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models"]).arg(models.path());
    cmd.env_remove("KILN_REGISTRY_USER").env_remove("KILN_REGISTRY_PASSWORD").env("DOCKER_CONFIG", dir);
    TestServer::spawn(cmd, models)
}

#[test]
fn errors_before_streaming_are_http_statuses() {
    let a = kiln(&[]);
    let absent = format!("127.0.0.1:{}/ns/absent:v1", free_port());
    let r = transfer(&a, "push", &absent);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error(), format!("model \"{absent}\" not found"));
    assert_eq!(a.post("/api/pull", &json!({})).error(), "model is required");
    assert_eq!(a.post("/api/push", &json!({"model": "h/../m"})).error(), "invalid model name");
    // Nobody listens: a 500 naming the registry, before any line.
    let port = free_port();
    let r = transfer(&a, "pull", &format!("127.0.0.1:{port}/ns/m:v1"));
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.error().contains(&format!("127.0.0.1:{port}")), "{}", r.error());
    assert_eq!(a.files(), Vec::<String>::new(), "nothing written");
}

/// A valid GGUF with one F32 tensor of `rows` × 4096 values (seeded noise), written to `path`
/// without holding it in memory; its digest.
fn write_big_gguf(path: &Path, rows: u64) -> String {
    use sha2::Digest as _;
    fn s(b: &mut Vec<u8>, v: &str) {
        b.extend_from_slice(&(v.len() as u64).to_le_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    let mut h = b"GGUF".to_vec();
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&1u64.to_le_bytes());
    h.extend_from_slice(&1u64.to_le_bytes());
    s(&mut h, "general.architecture");
    h.extend_from_slice(&8u32.to_le_bytes());
    s(&mut h, "llama");
    s(&mut h, "token_embd.weight");
    h.extend_from_slice(&2u32.to_le_bytes());
    h.extend_from_slice(&4096u64.to_le_bytes());
    h.extend_from_slice(&rows.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.resize(h.len().div_ceil(32) * 32, 0);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = sha2::Sha256::new();
    f.write_all(&h).unwrap();
    hasher.update(&h);
    let mut rng = crate::util::Rng::new(7);
    let mut row = vec![0u8; 4096 * 4];
    for _ in 0..rows {
        for c in row.chunks_mut(8) {
            c.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        f.write_all(&row).unwrap();
        hasher.update(&row);
    }
    f.flush().unwrap();
    format!("sha256:{}", kiln_core::Digest::from_bytes(&hasher.finalize().into()).hex())
}

/// Push and pull throughput on loopback for a 537 MB model (`cargo test --release -p kiln-tests
/// --test e2e registry::bench -- --ignored --nocapture`): about 1.6 GB of disk, so not in the
/// default run.
#[test]
#[ignore = "benchmark: 537 MB through a local registry; run it with --ignored"]
fn bench_push_and_pull_a_537_mb_model() {
    let reg = Registry::start(None);
    let a = kiln(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.gguf");
    let d = write_big_gguf(&file, 32_768);
    let size = std::fs::metadata(&file).unwrap().len();
    let r = ureq::post(&format!("{}/api/blobs/{d}", a.url))
        .set("Content-Length", &size.to_string())
        .send(std::fs::File::open(&file).unwrap())
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(file);
    let name = format!("{}/ns/big:f32", reg.addr);
    a.create_ok(&json!({"model": name, "files": {"big.gguf": d}}));
    let total: u64 = {
        let m: Value = serde_json::from_slice(&manifest_bytes(&a, &name)).unwrap();
        m["layers"].as_array().unwrap().iter().map(|l| l["size"].as_u64().unwrap()).sum::<u64>()
            + m["config"]["size"].as_u64().unwrap()
    };
    let mb = total as f64 / 1e6;

    let t = Instant::now();
    let r = transfer(&a, "push", &name);
    let push = t.elapsed().as_secs_f64();
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);

    let b = kiln(&[]);
    let t = Instant::now();
    let r = transfer(&b, "pull", &name);
    let pull = t.elapsed().as_secs_f64();
    assert_eq!(r.statuses().last().map(String::as_str), Some("success"), "{}", r.body);
    assert_eq!(manifest_bytes(&b, &name), manifest_bytes(&a, &name));
    assert_eq!(std::fs::metadata(b.models.path().join("blobs").join(d.replace(':', "-"))).unwrap().len(), size);
    println!("push: {mb:.0} MB in {push:.2} s = {:.0} MB/s", mb / push);
    println!("pull: {mb:.0} MB in {pull:.2} s = {:.0} MB/s", mb / pull);
}
