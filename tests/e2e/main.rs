#![expect(
    unreachable_pub,
    clippy::unwrap_used,
    reason = "helpers shared across the test modules; a test fails loudly on the first surprise"
)]
//! End-to-end tests: the real `kiln` binary on a loopback port with a temporary store, driven
//! over HTTP. One binary, one module per area.

mod util; // TestServer: spawn, HTTP helpers, NDJSON reader, store inspection

mod bad_input; // every bad request: status, message, store unchanged
mod blobs; // upload, dedup, HEAD, digest mismatch
mod cli; // kiln create/list/show/cp/rm against the server: output, HEAD-skip, Ctrl-C
mod concurrency; // 32 uploads + 32 creates + deletes at once
mod consistency; // disconnects and races leave no orphan; long and case-variant names
mod crash; // SIGKILL at random points, then kiln fsck
mod create; // create from files and from models: event order, layers, config
mod disk_full; // ENOSPC on a small tmpfs: 507, nothing left behind
mod gpu; // --device auto/gpu/cpu: self-test fallback, no driver, /api/kiln/info
mod hf_import; // Hugging Face folders: every fault a 400 naming the file, store unchanged
mod hostile_gguf; // crafted GGUF files: each refused with its reason
mod limits; // slow and hostile clients: body cap, timeouts, fd limit, shutdown deadline
mod models; // tags, show, copy, delete and blob collection
mod network; // Host guard, CORS, dropped uploads
mod paths; // traversal names and digests, manifests pointing outside, device files
mod registry; // push/pull against docker-registry: round trip, skopeo, resume, wrong blob, auth
mod s3; // the store in an S3-compatible bucket (moto): two servers, races, restart, fsck, timing
mod store; // golden bytes: Ollama's digests for blobs, config and manifest
