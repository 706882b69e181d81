//! The store in an S3-compatible bucket (`--models s3://bucket/prefix`): `moto` in server mode on
//! a free loopback port (from `.venv`, installed by `scripts/setup` from
//! `tests/client/requirements.txt`; `KILN_MOTO_SERVER` names another binary), and kiln servers
//! over one bucket, each with its own cache. The bucket is read back with plain HTTP (moto
//! checks no signatures), so what is asserted is what another S3 client would see.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Rng, TestServer, digest, hex, kiln_bin, tiny_llama};

/// A moto S3 server on 127.0.0.1, killed on drop.
struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    endpoint: String,
    agent: ureq::Agent,
}

fn moto_bin() -> PathBuf {
    let bin = std::env::var_os("KILN_MOTO_SERVER")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"), PathBuf::from);
    assert!(
        bin.is_file(),
        "{} is missing: scripts/setup installs moto[server] from tests/client/requirements.txt into .venv \
         (or set KILN_MOTO_SERVER)",
        bin.display()
    );
    bin
}

impl Moto {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        let moto = Self { child, endpoint, agent };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.agent.get(&format!("{}/", moto.endpoint)).call().is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer on {} within 60 s", moto.endpoint);
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// A request as any S3 client's: moto wants an `Authorization` header, and checks nothing in it.
    fn req(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}/{path}", self.endpoint))
            .set("Authorization", "AWS kiln-test:unchecked")
            .set("Content-Type", "application/octet-stream")
    }

    /// Creates a bucket (object_store cannot).
    fn bucket(&self, name: &str) -> String {
        let r = self.req("PUT", name).call().expect("create bucket");
        assert_eq!(r.status(), 200);
        format!("s3://{name}/models")
    }

    /// An object's bytes, `None` when it does not exist.
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        match self.req("GET", &key_path(url)).call() {
            Ok(r) => {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut b).expect("object body");
                Some(b)
            }
            Err(ureq::Error::Status(404, _)) => None,
            Err(e) => panic!("GET {url}: {e}"),
        }
    }

    fn put(&self, url: &str, bytes: &[u8]) {
        self.req("PUT", &key_path(url)).send_bytes(bytes).expect("put object");
    }

    /// Every key under `s3://bucket/prefix/` (one listing page: the tests stay far below 1000).
    fn keys(&self, url: &str) -> Vec<String> {
        let path = key_path(url);
        let (bucket, prefix) = path.split_once('/').unwrap_or((&path, ""));
        let r = self.req("GET", bucket).query("list-type", "2").query("prefix", &format!("{prefix}/")).call().unwrap();
        let xml = r.into_string().unwrap();
        assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "listing truncated");
        let mut keys: Vec<String> =
            xml.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_owned).collect();
        keys.sort();
        keys
    }

    /// The environment a kiln process needs to reach this server (static test credentials, so
    /// that object_store never looks for instance credentials off the machine).
    fn env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "kiln-test")
            .env("AWS_SECRET_ACCESS_KEY", "kiln-test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true");
    }

    /// `kiln serve` on the bucket `url` with a fresh cache (`TestServer::models` is the cache).
    fn serve(&self, url: &str) -> TestServer {
        let cache = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(kiln_bin());
        cmd.args(["serve", "--host", "127.0.0.1:0", "--device", "cpu", "--models", url, "--cache"]).arg(cache.path());
        self.env(&mut cmd);
        TestServer::spawn(cmd, cache)
    }

    /// `kiln fsck --models <url> <flags>`: (exit success, output).
    fn fsck(&self, url: &str, flags: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(kiln_bin());
        cmd.args(["fsck", "--models", url]).args(flags);
        self.env(&mut cmd);
        let out = cmd.output().expect("run kiln fsck");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bucket/key` of `s3://bucket/key`.
fn key_path(url: &str) -> String {
    url.strip_prefix("s3://").expect("s3 url").to_owned()
}

fn manifest_url(url: &str, model: &str) -> String {
    format!("{url}/manifests/registry.ollama.ai/library/{model}/latest")
}

fn blob_url(url: &str, d: &str) -> String {
    format!("{url}/blobs/{}", d.replace(':', "-"))
}

/// The digests (config first) a manifest names.
fn digests(manifest: &Value) -> Vec<String> {
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn names(s: &TestServer) -> Vec<String> {
    let tags = s.get("/api/tags").json();
    let mut v: Vec<String> =
        tags["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

/// Prints past the test harness's capture, so that the figures show in `.ci/run`'s output.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn two_servers_share_one_bucket() {
    let moto = Moto::start();
    let url = moto.bucket("shared");
    let (a, b) = (moto.serve(&url), moto.serve(&url));
    let gguf = tiny_llama();
    let d = a.upload(&gguf);
    assert_eq!(moto.get(&blob_url(&url, &d)).as_deref(), Some(gguf.as_slice()), "uploaded into the bucket");
    assert_eq!(b.request("HEAD", &format!("/api/blobs/{d}"), None).status, 200, "the other server sees it");
    a.create_ok(&json!({"model": "tiny", "files": {"tiny.gguf": d}, "system": "shared"}));

    // The same layout as on disk, byte for byte: a disk store given the same create.
    let disk = TestServer::start_with(&["--device", "cpu"]);
    disk.upload(&gguf);
    disk.create_ok(&json!({"model": "tiny", "files": {"tiny.gguf": d}, "system": "shared"}));
    let on_disk = std::fs::read(disk.models.path().join("manifests/registry.ollama.ai/library/tiny/latest")).unwrap();
    let in_bucket = moto.get(&manifest_url(&url, "tiny")).expect("manifest in the bucket");
    assert_eq!(in_bucket, on_disk, "the bucket's manifest is the disk store's");
    let manifest: Value = serde_json::from_slice(&in_bucket).unwrap();
    for dg in digests(&manifest) {
        assert_eq!(moto.get(&blob_url(&url, &dg)).map(|b| digest(&b)), Some(dg.clone()), "blob {dg}");
    }

    // The other server lists, shows and quantizes it.
    assert_eq!(names(&b), ["tiny:latest"]);
    let tags = b.get("/api/tags").json();
    assert_eq!(tags["models"][0]["digest"], hex(&in_bucket));
    let show = b.post("/api/show", &json!({"model": "tiny"}));
    assert_eq!(show.status, 200, "{}", show.body);
    assert_eq!(show.json()["system"], "shared");
    assert_eq!(show.json()["model_info"]["general.architecture"], "llama");
    b.create_ok(&json!({"model": "tiny-q8", "from": "tiny", "quantize": "q8_0"}));
    disk.create_ok(&json!({"model": "tiny-q8", "from": "tiny", "quantize": "q8_0"}));
    let q8_disk =
        std::fs::read(disk.models.path().join("manifests/registry.ollama.ai/library/tiny-q8/latest")).unwrap();
    assert_eq!(moto.get(&manifest_url(&url, "tiny-q8")), Some(q8_disk), "the same q8_0 model as on disk");
    assert_eq!(names(&a), ["tiny-q8:latest", "tiny:latest"]);
    let show = a.post("/api/show", &json!({"model": "tiny-q8"}));
    assert_eq!(show.status, 200, "{}", show.body);
    assert_eq!(show.json()["details"]["quantization_level"], "Q8_0");

    // A delete on one is seen by the other.
    assert_eq!(a.delete(&json!({"model": "tiny-q8"})).status, 200);
    assert_eq!(names(&b), ["tiny:latest"]);
    assert_eq!(b.post("/api/show", &json!({"model": "tiny-q8"})).status, 404);
    assert_eq!(moto.get(&manifest_url(&url, "tiny-q8")), None);
    let (ok, out) = moto.fsck(&url, &["--allow-orphans"]);
    assert!(ok, "{out}");
    assert!(out.contains("fsck: 1 manifests"), "{out}");
}

#[test]
fn concurrent_creates_of_one_name_end_as_one_whole_manifest() {
    let moto = Moto::start();
    let url = moto.bucket("race");
    let servers = Arc::new([moto.serve(&url), moto.serve(&url)]);
    let d = servers[0].upload(&tiny_llama());
    for round in 0..4 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (servers, barrier, d) = (servers.clone(), barrier.clone(), d.clone());
                std::thread::spawn(move || {
                    // Different layers each: the manifest must be one writer's, never a mix.
                    let req = json!({"model": "race", "files": {"m.gguf": d}, "system": format!("server {i} round {round}"),
                        "parameters": {"seed": i}});
                    barrier.wait();
                    servers[i].create_ok(&req);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("create thread");
        }
        let bytes = moto.get(&manifest_url(&url, "race")).expect("manifest");
        let manifest: Value = serde_json::from_slice(&bytes).expect("a whole manifest");
        for dg in digests(&manifest) {
            assert!(moto.get(&blob_url(&url, &dg)).is_some(), "round {round}: blob {dg} of the manifest is missing");
        }
        let shows: Vec<Value> = servers.iter().map(|s| s.post("/api/show", &json!({"model": "race"})).json()).collect();
        let system = shows[0]["system"].as_str().unwrap().to_owned();
        assert!(system == format!("server 0 round {round}") || system == format!("server 1 round {round}"), "{system}");
        let winner: usize = system[7..8].parse().unwrap();
        assert_eq!(shows[0]["parameters"], format!("{:<30} {winner}", "seed"), "one writer's layers");
        assert_eq!(shows[1]["system"], shows[0]["system"], "both servers see the same manifest");
        for s in servers.iter() {
            assert_eq!(s.get("/api/tags").json()["models"][0]["digest"], hex(&bytes));
        }
    }
    let (ok, out) = moto.fsck(&url, &["--allow-orphans"]);
    assert!(ok, "{out}");
}

#[test]
fn a_restart_with_an_empty_cache_serves_everything() {
    let moto = Moto::start();
    let url = moto.bucket("restart");
    let mut a = moto.serve(&url);
    let d = a.upload(&tiny_llama());
    a.create_ok(&json!({"model": "tiny", "files": {"m.gguf": d}, "template": "{{ .Prompt }}"}));
    // `show` less its Modelfile, which names the blob's path in this server's cache.
    let show = |s: &TestServer| {
        let mut v = s.post("/api/show", &json!({"model": "tiny"})).json();
        v.as_object_mut().unwrap().remove("modelfile").expect("a modelfile");
        v
    };
    let before = show(&a);
    // A clean shutdown drops the store, and its bucket runtime, inside the server's runtime.
    let (status, _) = a.terminate(Duration::from_secs(30)).expect("SIGTERM ends the server");
    assert!(status.success(), "{status}");
    drop(a.stop());

    // OLLAMA_MODELS as Ollama's variable, and a cache that starts empty.
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--device", "cpu", "--cache"]).arg(cache.path());
    cmd.env("OLLAMA_MODELS", &url);
    moto.env(&mut cmd);
    let a = TestServer::spawn(cmd, cache);
    assert_eq!(names(&a), ["tiny:latest"]);
    assert_eq!(show(&a), before);
    a.create_ok(&json!({"model": "tiny-q8", "from": "tiny", "quantize": "q8_0"}));
    assert!(a.models.path().join("blobs").join(d.replace(':', "-")).is_file(), "downloaded into the cache");

    // A blob in the bucket whose bytes are not its digest is refused, never cached.
    let mut evil = tiny_llama();
    let n = evil.len();
    evil[n - 1] ^= 1;
    moto.put(&blob_url(&url, &d), &evil);
    let c = moto.serve(&url);
    let r = c.post("/api/show", &json!({"model": "tiny"}));
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(!c.models.path().join("blobs").join(d.replace(':', "-")).exists(), "a bad download is not cached");
    let (ok, out) = moto.fsck(&url, &["--quick"]);
    assert!(ok, "sizes still match: {out}");
    let (ok, out) = moto.fsck(&url, &[]);
    assert!(!ok && out.contains(&format!("error: blob {d} holds the bytes of")), "{out}");
}

#[test]
fn fsck_checks_the_bucket_and_repairs_old_orphans_only() {
    let moto = Moto::start();
    let url = moto.bucket("fsck");
    let a = moto.serve(&url);
    let d = a.upload(&tiny_llama());
    a.create_ok(&json!({"model": "tiny", "files": {"m.gguf": d}}));
    let (ok, out) = moto.fsck(&url, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("fsck: 1 manifests, 2 blobs checked, 0 orphans, 0 temp files, 0 errors"), "{out}");

    let orphan = b"nothing references this".as_slice();
    let orphan_url = blob_url(&url, &digest(orphan));
    moto.put(&orphan_url, orphan);
    moto.put(&format!("{url}/blobs/stray"), b"x");
    let (ok, out) = moto.fsck(&url, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("orphan: {orphan_url}")), "{out}");
    assert!(out.contains(&format!("temp: {url}/blobs/stray")), "{out}");
    assert!(moto.fsck(&url, &["--allow-orphans"]).1.contains("1 orphans"));

    // Young orphans may be another server's create in flight: kept.
    let (_, out) = moto.fsck(&url, &["--repair"]);
    assert!(out.contains("kept (written 0 min ago, under --min-age 60)"), "{out}");
    assert!(moto.get(&orphan_url).is_some());
    let (ok, out) = moto.fsck(&url, &["--repair", "--min-age", "0"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("removed {orphan_url}")), "{out}");
    assert_eq!(moto.get(&orphan_url), None);
    assert!(moto.fsck(&url, &[]).0);
    let keys = moto.keys(&url);
    assert_eq!(keys.len(), 3, "{keys:?}");

    // The start-up prune of a bucket store prunes only its cache.
    moto.put(&orphan_url, orphan);
    drop(a.stop());
    let a = moto.serve(&url);
    assert!(moto.get(&orphan_url).is_some(), "the start-up prune left the bucket alone");
    assert_eq!(names(&a), ["tiny:latest"]);

    // A cache belongs to one server: a second one on it refuses to start.
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models", &url, "--cache"]).arg(a.models.path());
    moto.env(&mut cmd);
    let (ok, err) = run_to_exit(cmd);
    assert!(!ok && err.contains("in use by another kiln server"), "{err}");
    // So does one whose bucket does not exist.
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models", "s3://no-such-bucket/m", "--cache"]).arg(cache.path());
    moto.env(&mut cmd);
    let (ok, err) = run_to_exit(cmd);
    assert!(!ok && err.contains("cannot list s3://no-such-bucket/m"), "{err}");
}

/// Runs a `kiln serve` that must fail to start (killed after 60 s): (exit success, stderr).
fn run_to_exit(mut cmd: Command) -> (bool, String) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln serve started where it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.success(), err)
}

/// The same create (an uploaded F16 GGUF quantized to Q8_0) on a disk store and on a bucket:
/// wall time of each, printed; then a larger upload, the multipart path's throughput.
#[test]
fn create_time_bucket_vs_disk() {
    let moto = Moto::start();
    let url = moto.bucket("timing");
    let (disk, bucket) = (TestServer::start_with(&["--device", "cpu"]), moto.serve(&url));
    let gguf = tiny_llama();
    let mut rng = Rng::new(7);
    let big: Vec<u8> = (0..(96 << 20) / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    let mut times = Vec::new();
    for s in [&disk, &bucket] {
        let d = s.upload(&gguf);
        // The first create writes (and, on the bucket, uploads) the Q8_0 blob; a repeat finds it.
        let t0 = Instant::now();
        s.create_ok(&json!({"model": "q8", "files": {"m.gguf": d}, "quantize": "q8_0"}));
        let first = t0.elapsed();
        let t0 = Instant::now();
        s.create_ok(&json!({"model": "q8-again", "files": {"m.gguf": d}, "quantize": "q8_0"}));
        let again = t0.elapsed();
        let t0 = Instant::now();
        s.upload(&big);
        times.push([first, again, t0.elapsed()]);
    }
    assert_eq!(names(&disk), names(&bucket));
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    report(&format!(
        "s3 store timing (moto on loopback): create tiny-llama q8_0: disk {}, bucket {} (repeat: disk {}, bucket {}); \
         96 MiB blob upload: disk {}, bucket {} ({:.0} MB/s into the bucket)",
        ms(times[0][0]),
        ms(times[1][0]),
        ms(times[0][1]),
        ms(times[1][1]),
        ms(times[0][2]),
        ms(times[1][2]),
        f64::from(96 << 20) / times[1][2].as_secs_f64() / 1e6
    ));
    assert_eq!(moto.get(&blob_url(&url, &digest(&big))).map(|b| b.len()), Some(big.len()), "multipart upload whole");
    let (ok, out) = moto.fsck(&url, &["--allow-orphans"]);
    assert!(ok, "{out}");
}
