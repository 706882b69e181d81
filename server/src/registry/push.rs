//! `POST /api/push` (§6): each layer, then the config, `HEAD`ed on the registry; the missing ones
//! uploaded (`POST` an upload, then one streamed `PUT ?digest=` for a small blob, or `PATCH`
//! chunks with `Content-Range` and a final `PUT` for a large one; never whole in memory); then
//! the stored manifest's own bytes `PUT` with its media type, so the registry holds the model
//! byte for byte. The blobs stay pinned while they upload.

use std::sync::Arc;

use kiln_core::Digest;
use kiln_core::event::ProgressEvent;
use kiln_core::request::RegistryTarget;

use super::client::{Body, Client};
use super::{RegistryError, Sink, Ticker};
use crate::store::{Layer, Store};

/// Blobs up to this size go in one `PUT`; larger ones in `PATCH` chunks of this size.
pub const CHUNK: u64 = 64 << 20;

/// Runs a push on the calling (blocking) thread; its outcome goes to `sink`.
pub fn run(store: &Arc<Store>, target: &RegistryTarget, sink: &Sink) {
    if let Err(e) = push(store, target, sink) {
        sink.fail(e);
    }
}

/// The layers then the config, each digest once.
fn blobs(layers: &[Layer], config: &Layer) -> Vec<Layer> {
    let mut out: Vec<Layer> = Vec::new();
    for l in layers.iter().chain(std::iter::once(config)) {
        if !out.iter().any(|o| o.digest == l.digest) {
            out.push(l.clone());
        }
    }
    out
}

fn push(store: &Arc<Store>, target: &RegistryTarget, sink: &Sink) -> Result<(), RegistryError> {
    let name = store.resolve(&target.name);
    let stored = store.read_manifest(&name)?.ok_or_else(|| RegistryError::ModelNotFound(target.name.short()))?;
    let blobs = blobs(&stored.manifest.layers, &stored.manifest.config);
    // Held until the push ends: a delete meanwhile cannot take a blob from under its upload.
    let _pin = store.pin(blobs.iter().map(|l| l.digest.clone()));
    let mut client = Client::new(&target.name, target.insecure);
    // The registry is asked before the first line, so an unreachable one or refused credentials
    // is an HTTP status, not a line of a stream already under way.
    let mut present = Vec::with_capacity(blobs.len());
    for l in &blobs {
        present.push(has_blob(&mut client, &l.digest)?);
    }
    sink.status("retrieving manifest")?;
    for (l, there) in blobs.iter().zip(present) {
        if there {
            sink.send(ProgressEvent::progress(ticker_status(&l.digest), l.digest.to_string(), l.size, l.size))?;
        } else {
            upload(&mut client, store, l, sink)?;
        }
    }
    sink.status("pushing manifest")?;
    let media = if stored.manifest.media_type.is_empty() {
        crate::store::media::MANIFEST
    } else {
        stored.manifest.media_type.as_str()
    };
    let url = client.remote.manifest_url();
    client.send("PUT", &url, &[], Body::Bytes(&stored.bytes, media))?;
    sink.status("success")
}

fn ticker_status(d: &Digest) -> String {
    format!("pushing {}", &d.hex()[..12])
}

/// `HEAD` the blob: 2xx/3xx there, 404 missing.
fn has_blob(client: &mut Client, d: &Digest) -> Result<bool, RegistryError> {
    let url = client.remote.blob_url(d);
    match client.send("HEAD", &url, &[], Body::Empty) {
        Ok(_) => Ok(true),
        Err(RegistryError::Status { code: 404, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The upload URL of the `Location` a step answered.
fn next_location(client: &Client, r: &ureq::Response) -> Result<url::Url, RegistryError> {
    let loc = r.header("docker-upload-location").or_else(|| r.header("location")).ok_or_else(|| {
        RegistryError::Transport(format!("{}: an upload step answered no Location", client.remote.host))
    })?;
    client.resolve(loc)
}

/// Uploads one stored blob: `POST`, then `PUT` (small) or `PATCH`es and a `PUT` (large).
fn upload(client: &mut Client, store: &Store, layer: &Layer, sink: &Sink) -> Result<(), RegistryError> {
    let d = &layer.digest;
    let file = std::fs::File::open(store.blob_path(d))?;
    let size = file.metadata()?.len();
    if size != layer.size {
        return Err(RegistryError::Io(std::io::Error::other(format!(
            "blob {d} is {size} bytes but the manifest says {}: run kiln fsck",
            layer.size
        ))));
    }
    let mut ticker = Ticker::new("pushing", d, size);
    ticker.tick(sink, 0)?;
    let start = client.remote.uploads_url();
    let r = client.send("POST", &start, &[], Body::Empty)?;
    let mut location = next_location(client, &r)?;
    let mut cancelled = false;
    let mut offset = 0;
    while size - offset > CHUNK {
        let len = CHUNK;
        let range = format!("{offset}-{}", offset + len - 1);
        let mut progress = |sent: u64| {
            cancelled = ticker.tick(sink, offset + sent).is_err();
            !cancelled
        };
        let body = Body::File { file: &file, offset, len, progress: &mut progress };
        let r = client.send("PATCH", location.as_str(), &[("Content-Range", range.as_str())], body);
        let r = r.map_err(|e| if cancelled { RegistryError::Cancelled } else { e })?;
        location = next_location(client, &r)?;
        offset += len;
    }
    location.query_pairs_mut().append_pair("digest", &d.to_string());
    let mut progress = |sent: u64| {
        cancelled = ticker.tick(sink, offset + sent).is_err();
        !cancelled
    };
    let body = Body::File { file: &file, offset, len: size - offset, progress: &mut progress };
    client
        .send("PUT", location.as_str(), &[], body)
        .map_err(|e| if cancelled { RegistryError::Cancelled } else { e })?;
    ticker.tick(sink, size)
}
