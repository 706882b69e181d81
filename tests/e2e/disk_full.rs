//! A store on a full disk: the server runs in its own mount namespace over a 16 MiB tmpfs
//! (`unshare --user --map-root-user --mount`, no privileges needed), so writes fail with a real
//! ENOSPC. Uploads and quantizing creates that do not fit answer 507 with a clear message and
//! leave no temp file behind: the space they took is free again for the next request.

use std::process::Command;

use serde_json::json;

use crate::util::{Rng, TestServer, digest, kiln_bin, tiny_llama};

const TMPFS_BYTES: usize = 16 << 20;

fn start_on_tmpfs() -> TestServer {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={TMPFS_BYTES} tmpfs \"$1\" && exec \"$2\" serve --host 127.0.0.1:0 --models \"$1\""
        ))
        .arg("sh")
        .arg(models.path())
        .arg(kiln_bin());
    TestServer::spawn(cmd, models)
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn a_full_disk_gives_507_and_leaves_no_temp_file() {
    let s = start_on_tmpfs();
    // Larger than the disk: each upload fails part-way with ENOSPC.
    for round in 0..3 {
        let big = noise(TMPFS_BYTES + (1 << 20), round);
        let r = s.post_raw(&format!("/api/blobs/{}", digest(&big)), &big);
        assert_eq!(r.status, 507, "round {round}: {}", r.body);
        assert_eq!(r.error(), "no space left on the device that holds the model store");
    }
    // Their partial files are gone, or the 9.5 MiB model would not fit now.
    let tiny = tiny_llama();
    let d = s.upload(&tiny);
    s.create_ok(&json!({"model": "base", "files": {"t.gguf": d}}));
    let filler = noise(4 << 20, 7);
    s.upload(&filler);
    let page = |n: usize| n.div_ceil(4096) * 4096;
    let free = TMPFS_BYTES - page(tiny.len()) - page(filler.len()) - 3 * 4096;
    // About 2.4 MiB are left: the Q8_0 copy (about 5 MiB) runs out of space while it is written.
    for stream in [false, true] {
        let r = s.post("/api/create", &json!({"model": "q", "from": "base", "quantize": "q8_0", "stream": stream}));
        if stream {
            assert_eq!(r.status, 200);
            let last = r.lines().last().cloned().unwrap();
            assert_eq!(last["error"], "no space left on the device that holds the model store", "{}", r.body);
        } else {
            assert_eq!(r.status, 507, "{}", r.body);
            assert_eq!(r.error(), "no space left on the device that holds the model store");
        }
    }
    // The half-written output is gone: a blob taking nearly all the free space still fits.
    let probe = noise(free - (256 << 10), 8);
    assert_eq!(s.post_raw(&format!("/api/blobs/{}", digest(&probe)), &probe).status, 201);
    let names: Vec<String> = s.get("/api/tags").json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["base:latest"], "no partial model");
    assert_eq!(s.post("/api/show", &json!({"model": "base"})).status, 200);
    eprintln!("disk full: 3 oversize uploads and 2 quantizing creates refused with ENOSPC -> 507; all space reclaimed");
}
