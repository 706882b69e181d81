//! `POST /api/pull` (§5, with §9's improvements): the manifest fetched (bounded, checked by
//! `Manifest::decode` as every stored manifest is, digests typed so none names a path), then each
//! missing blob streamed into `blobs/.kiln-tmp-partial-sha256-<hex>` while SHA-256 runs over it.
//! A blob `GET` answered `200` is used as is and a redirect is followed (kiln needs none). An
//! interrupted download keeps its partial file, and the next attempt (a retry here, or the next
//! pull while the server runs; start-up sweeps temp files) asks for the rest with `Range`. A
//! digest mismatch deletes the partial. Verified partials are published through the store's
//! atomic publish only once every blob is in, then the registry's manifest bytes are written
//! (atomically, last), so a failed pull leaves no blob no manifest references.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kiln_core::Digest;
use kiln_core::event::ProgressEvent;
use kiln_core::request::RegistryTarget;
use sha2::{Digest as _, Sha256};
use tempfile::{NamedTempFile, TempPath};

use super::client::{Body, Client};
use super::{RegistryError, Sink, Ticker};
use crate::store::blobs::finish;
use crate::store::{Layer, Manifest, Store, TEMP_PREFIX, media};

/// The largest manifest read (Distribution's own limit).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Retries of an interrupted blob download within one pull (each resumes where the last
/// stopped), after 1 s, then 2 s.
const RETRIES: u32 = 2;
/// Read and write unit of a download.
const BUF: usize = 1 << 20;

/// Partial files being written, by path: one download per partial at a time.
static BUSY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static FREED: Condvar = Condvar::new();

/// Runs a pull on the calling (blocking) thread; its outcome goes to `sink`.
pub fn run(store: &Arc<Store>, target: &RegistryTarget, sink: &Sink) {
    if let Err(e) = pull(store, target, sink) {
        sink.fail(e);
    }
}

/// The temp file a download of `d` grows in; its name derives from the digest, so the next
/// pull finds it.
#[must_use]
pub fn partial_path(store: &Store, d: &Digest) -> PathBuf {
    store.blobs_dir().join(format!("{TEMP_PREFIX}partial-{}", d.file_name()))
}

/// Exclusive use of some partial files, released on drop.
struct Claim(Vec<PathBuf>);

impl Claim {
    /// Waits until no other pull writes any of `paths`, then takes them all at once (so two
    /// pulls sharing blobs in different orders cannot deadlock).
    fn take(paths: Vec<PathBuf>, sink: &Sink) -> Result<Self, RegistryError> {
        let mut busy = BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while paths.iter().any(|p| busy.contains(p)) {
            if sink.is_closed() {
                return Err(RegistryError::Cancelled);
            }
            busy = FREED
                .wait_timeout(busy, Duration::from_millis(200))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        busy.extend(paths.iter().cloned());
        Ok(Self(paths))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.retain(|p| !self.0.contains(p));
        FREED.notify_all();
    }
}

/// Fetches and checks the manifest: its raw bytes and parsed form.
fn fetch_manifest(client: &mut Client) -> Result<(Vec<u8>, Manifest), RegistryError> {
    let url = client.remote.manifest_url();
    let accept = format!("{}, application/vnd.oci.image.manifest.v1+json", media::MANIFEST);
    let r = match client.send("GET", &url, &[("Accept", &accept)], Body::Empty) {
        Ok(r) => r,
        Err(RegistryError::Status { code: 404, .. }) => return Err(RegistryError::ManifestNotFound),
        Err(e) => return Err(e),
    };
    let declared = r.header("docker-content-digest").map(str::to_owned);
    let mut bytes = Vec::new();
    r.into_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Transport(format!("{}: reading the manifest: {e}", client.remote.host)))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(RegistryError::BadManifest(format!("larger than {MAX_MANIFEST} bytes")));
    }
    if let Some(declared) = declared.filter(|d| d.starts_with("sha256:")) {
        let got = crate::store::blobs::digest_of(&bytes).to_string();
        if declared != got {
            return Err(RegistryError::BadManifest(format!("its bytes are {got}, the registry says {declared}")));
        }
    }
    let manifest = Manifest::decode(&bytes).map_err(RegistryError::BadManifest)?;
    check(&manifest)?;
    Ok((bytes, manifest))
}

/// What kiln refuses to store even when it parses: another schema, or layers that are not an
/// Ollama model's (a container image).
fn check(m: &Manifest) -> Result<(), RegistryError> {
    if m.schema_version != 2 {
        return Err(RegistryError::BadManifest(format!("schemaVersion {} (kiln reads 2)", m.schema_version)));
    }
    if let Some(l) = m.layers.iter().find(|l| !l.media_type.starts_with("application/vnd.ollama.image.")) {
        return Err(RegistryError::BadManifest(format!(
            "layer {} has media type {}: not an Ollama model",
            l.digest,
            kiln_core::error::clip(&l.media_type)
        )));
    }
    Ok(())
}

/// The layers then the config, each digest once (a manifest may name one twice).
fn unique(m: &Manifest) -> Result<Vec<Layer>, RegistryError> {
    let mut out: Vec<Layer> = Vec::new();
    for l in m.layers.iter().chain(std::iter::once(&m.config)) {
        match out.iter().find(|o| o.digest == l.digest) {
            Some(o) if o.size != l.size => {
                return Err(RegistryError::BadManifest(format!("{} is listed with two sizes", l.digest)));
            }
            Some(_) => {}
            None => out.push(l.clone()),
        }
    }
    Ok(out)
}

fn pull(store: &Arc<Store>, target: &RegistryTarget, sink: &Sink) -> Result<(), RegistryError> {
    let mut client = Client::new(&target.name, target.insecure);
    // Before the first line: an unreachable registry, refused credentials or a missing or
    // hostile manifest is an HTTP status.
    let (bytes, manifest) = fetch_manifest(&mut client)?;
    let blobs = unique(&manifest)?;
    // Pinned before any existence check, as a create pins: a delete meanwhile keeps them.
    let mut pin = store.pin(blobs.iter().map(|l| l.digest.clone()));
    sink.status("pulling manifest")?;
    let missing: Vec<&Layer> = blobs.iter().filter(|l| !store.has_blob(&l.digest)).collect();
    let _claim = Claim::take(missing.iter().map(|l| partial_path(store, &l.digest)).collect(), sink)?;
    let mut fetched = Vec::new();
    for l in &blobs {
        // Checked again under the claim: a pull that held it may have published the blob.
        if store.has_blob(&l.digest) {
            store.touch(&l.digest);
            let status = format!("pulling {}", &l.digest.hex()[..12]);
            sink.send(ProgressEvent::progress(status, l.digest.to_string(), l.size, l.size))?;
            continue;
        }
        fetched.push((l.digest.clone(), download(&mut client, store, l, sink)?));
    }
    sink.status("verifying sha256 digest")?;
    let published = (|| {
        for (d, file) in fetched {
            let tmp = NamedTempFile::from_parts(file, TempPath::try_from_path(partial_path(store, &d))?);
            if store.publish_blob(tmp, &d)? == crate::store::blobs::Published::Created {
                pin.wrote(d);
            }
        }
        sink.status("writing manifest")?;
        store.write_manifest(&target.name, &bytes)?;
        Ok::<_, RegistryError>(())
    })();
    match published {
        Ok(()) => {
            drop(pin);
            sink.status("success")
        }
        Err(e) => {
            store.collect(pin.release(true));
            Err(e)
        }
    }
}

/// Hashes the first `len` bytes of `file` (the part a previous attempt wrote).
fn hash_prefix(file: &mut File, len: u64) -> std::io::Result<Sha256> {
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0; BUF];
    let mut r = (&mut *file).take(len);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher)
}

/// Downloads one blob into its partial file, resuming what is there; the verified, fsynced
/// file (not yet published).
fn download(client: &mut Client, store: &Store, layer: &Layer, sink: &Sink) -> Result<File, RegistryError> {
    let d = &layer.digest;
    let path = partial_path(store, d);
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(&path)?;
    let mut have = file.metadata()?.len();
    if have > layer.size {
        file.set_len(0)?;
        have = 0;
    }
    let mut hasher = hash_prefix(&mut file, have)?;
    let mut ticker = Ticker::new("pulling", d, layer.size);
    let mut attempt = 0;
    while have < layer.size {
        ticker.tick(sink, have)?;
        match fetch_rest(client, layer, &mut file, &mut hasher, &mut have, &mut ticker, sink) {
            Ok(()) => {}
            Err(RegistryError::Transport(e)) if attempt < RETRIES => {
                attempt += 1;
                tracing::warn!(digest = %d, have, "blob download interrupted ({e}); resuming");
                std::thread::sleep(Duration::from_secs(u64::from(attempt)));
            }
            Err(e) => return Err(e),
        }
    }
    ticker.tick(sink, have)?;
    let got = finish(hasher);
    if &got != d {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(RegistryError::DigestMismatch { want: d.to_string(), got: got.to_string() });
    }
    file.sync_all()?;
    Ok(file)
}

/// One `GET` of what is missing (`Range` when part is there), appended and hashed. A short
/// body is a [`RegistryError::Transport`] (the caller resumes); bytes past the manifest's size
/// are never read.
fn fetch_rest(
    client: &mut Client,
    layer: &Layer,
    file: &mut File,
    hasher: &mut Sha256,
    have: &mut u64,
    ticker: &mut Ticker,
    sink: &Sink,
) -> Result<(), RegistryError> {
    let url = client.remote.blob_url(&layer.digest);
    let range = format!("bytes={have}-");
    let ranged = [("Range", range.as_str())];
    let headers: &[(&str, &str)] = if *have > 0 { &ranged } else { &[] };
    let r = client.send("GET", &url, headers, Body::Empty)?;
    let resumed = r.status() == 206;
    if resumed {
        let start = r
            .header("content-range")
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split_once('-'))
            .and_then(|(s, _)| s.parse::<u64>().ok());
        if start != Some(*have) {
            return Err(RegistryError::Transport(format!(
                "{}: the registry answered the range {have}- with {}",
                client.remote.host,
                kiln_core::error::clip(r.header("content-range").unwrap_or("no Content-Range"))
            )));
        }
    } else if *have > 0 {
        // The whole blob came back: start over.
        file.set_len(0)?;
        *have = 0;
        *hasher = Sha256::new();
    }
    file.seek(SeekFrom::Start(*have))?;
    let mut body = r.into_reader().take(layer.size - *have);
    let mut buf = vec![0; BUF];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush()?;
                return Err(RegistryError::Transport(format!(
                    "{}: the blob {} broke off after {have} of {} bytes: {e}",
                    client.remote.host, layer.digest, layer.size
                )));
            }
        };
        file.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        *have += n as u64;
        ticker.tick(sink, *have)?;
    }
    file.flush()?;
    if *have < layer.size {
        return Err(RegistryError::Transport(format!(
            "{}: the blob {} broke off after {have} of {} bytes",
            client.remote.host, layer.digest, layer.size
        )));
    }
    Ok(())
}
