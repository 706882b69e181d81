//! The bucket behind `--models s3://bucket/prefix`: the `object_store` client (S3-compatible;
//! endpoint and credentials from the standard `AWS_*` variables), the store's keys in it —
//! Ollama's layout under the prefix, `blobs/sha256-<hex>` and
//! `manifests/<host>/<namespace>/<model>/<tag>` — and the transfers: blobs uploaded from a file
//! (multipart, a few parts in memory at a time), streamed into the local cache with their
//! SHA-256 checked on the way, manifests written with conditional puts.
//!
//! The store's API is synchronous and is called from blocking threads and from async handlers
//! alike, so every call runs on this module's own small runtime while the caller waits on a std
//! channel: `block_on` inside the server's runtime would panic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kiln_core::{Digest, ModelName};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion, WriteMultipart,
};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

/// Size of a multipart upload's parts (S3 wants at least 5 MiB); a blob up to this size goes up
/// in one PUT.
const PART: usize = 8 << 20;
/// Parts in flight at once: an upload holds about this many parts in memory, whatever the
/// blob's size.
const IN_FLIGHT: usize = 4;
/// A request's total deadline, unless `AWS_TIMEOUT` sets one: whole blobs stream through single
/// GETs, so it is long; a connection that stalls fails sooner, after [`READ_TIMEOUT`].
const TIMEOUT: &str = "6h";
/// How long a response may send nothing, unless `AWS_READ_TIMEOUT` says otherwise.
const READ_TIMEOUT: &str = "60s";
/// The largest manifest read back (Ollama's are a few KiB).
const MAX_MANIFEST: u64 = 4 << 20;

/// A `--models` value that names a bucket: `s3://bucket[/prefix]`.
#[must_use]
pub fn parse_url(models: &str) -> Option<(&str, &str)> {
    let rest = models.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket, prefix.trim_matches('/'))).filter(|(b, _)| !b.is_empty())
}

fn other(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

/// An object-store error as an I/O error; "not found" keeps its kind.
fn io_err(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { path, .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("{path} is not in the bucket"))
        }
        e => std::io::Error::other(e.to_string()),
    }
}

/// How a conditional manifest write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The bytes are the manifest now.
    Done,
    /// Another writer got there first (the name was created, or changed since it was read).
    Conflict,
}

/// A manifest as stored in the bucket: its bytes and the object's metadata (e-tag, mtime).
#[derive(Debug)]
pub struct RemoteManifest {
    /// Raw bytes.
    pub bytes: Vec<u8>,
    /// Last modified, e-tag and version.
    pub meta: ObjectMeta,
}

/// The bucket: client, key prefix and the runtime its calls run on.
pub struct Bucket {
    client: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix`, for messages.
    url: String,
    prefix: Key,
    handle: tokio::runtime::Handle,
    /// Shut down without waiting when the store goes, which may be inside the server's runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Bucket {
    /// Connects to `s3://bucket/prefix` with the `AWS_*` environment (`AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, …) and
    /// lists the prefix once, so a missing bucket or wrong credentials fail at start-up.
    ///
    /// # Errors
    /// A malformed URL, a client that cannot be built, or a bucket that cannot be listed.
    pub fn open(url: &str) -> std::io::Result<Self> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{url} is not s3://bucket[/prefix]"))
        })?;
        let prefix = Key::parse(prefix).map_err(|e| other(url, e))?;
        // A few quick retries: a server that cannot reach its bucket should say so, not hang.
        let retry = RetryConfig { max_retries: 4, retry_timeout: Duration::from_secs(30), ..RetryConfig::default() };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry);
        for (var, key, value) in [
            ("AWS_TIMEOUT", ClientConfigKey::Timeout, TIMEOUT),
            ("AWS_READ_TIMEOUT", ClientConfigKey::ReadTimeout, READ_TIMEOUT),
        ] {
            if std::env::var_os(var).is_none() {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
        }
        let client = builder.build().map_err(|e| other(url, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kiln-s3")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let b = Self {
            client: Arc::new(client),
            url: url.trim_end_matches('/').to_owned(),
            prefix,
            handle,
            runtime: Some(runtime),
        };
        let (client, prefix) = (b.client.clone(), b.prefix.clone());
        b.call(async move { client.list_with_delimiter(Some(&prefix)).await.map_err(io_err) })
            .map_err(|e| other(&format!("cannot list {}", b.url), e))?;
        Ok(b)
    }

    /// `s3://bucket/prefix`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `fut` on the bucket's runtime and waits for it on this thread (any thread: a
    /// blocking one, or an async worker of another runtime).
    fn call<T: Send + 'static>(
        &self,
        fut: impl Future<Output = std::io::Result<T>> + Send + 'static,
    ) -> std::io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let wait = move || {
            rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the object-store task ended without an answer")))
        };
        // Handlers call the store on the server's async workers too: there, hand the worker's
        // other tasks to another thread while this one waits (a current-thread runtime cannot).
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    fn key(&self, parts: &[&str]) -> Key {
        parts.iter().fold(self.prefix.clone(), |k, p| k.join(*p))
    }

    /// `<prefix>/blobs/sha256-<hex>`.
    #[must_use]
    pub fn blob_key(&self, d: &Digest) -> Key {
        self.key(&["blobs", &d.file_name()])
    }

    /// `<prefix>/manifests/<host>/<namespace>/<model>/<tag>`.
    #[must_use]
    pub fn manifest_key(&self, name: &ModelName) -> Key {
        let [h, n, m, t] = name.parts();
        self.key(&["manifests", h, n, m, t])
    }

    /// `s3://bucket/<key>`, for messages.
    #[must_use]
    pub fn display(&self, key: &Key) -> String {
        let bucket = self.url.strip_prefix("s3://").and_then(|r| r.split('/').next()).unwrap_or_default();
        format!("s3://{bucket}/{key}")
    }

    /// The object's metadata, `None` when it does not exist.
    ///
    /// # Errors
    /// Any other object-store error.
    pub fn head(&self, key: &Key) -> std::io::Result<Option<ObjectMeta>> {
        let (client, key) = (self.client.clone(), key.clone());
        self.call(async move {
            match client.head(&key).await {
                Ok(m) => Ok(Some(m)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// Every object under `<prefix>/<dir>/`, with its path below it split into parts.
    ///
    /// # Errors
    /// When the listing fails.
    pub fn list(&self, dir: &str) -> std::io::Result<Vec<(Vec<String>, ObjectMeta)>> {
        let (client, base) = (self.client.clone(), self.key(&[dir]));
        let base2 = base.clone();
        let metas = self.call(async move {
            let items: Vec<_> = client.list(Some(&base2)).collect().await;
            items.into_iter().collect::<Result<Vec<_>, _>>().map_err(io_err)
        })?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let rel: Vec<String> = m.location.prefix_match(&base)?.map(|p| p.as_ref().to_owned()).collect();
                Some((rel, m))
            })
            .collect())
    }

    /// Deletes an object; one already gone is fine.
    ///
    /// # Errors
    /// Any other object-store error.
    pub fn delete(&self, key: &Key) -> std::io::Result<()> {
        let (client, key) = (self.client.clone(), key.clone());
        self.call(async move {
            match client.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// Uploads the file `file` (read from its start) as the blob `d`: one PUT when small,
    /// else a multipart upload of [`PART`]-sized parts, at most [`IN_FLIGHT`] at once, aborted
    /// on failure. The blob appears in the bucket whole or not at all.
    ///
    /// # Errors
    /// Read or object-store errors.
    pub fn upload_blob(&self, d: &Digest, file: std::fs::File) -> std::io::Result<()> {
        let (client, key) = (self.client.clone(), self.blob_key(d));
        let len = file.metadata()?.len();
        self.call(async move {
            let mut file = tokio::fs::File::from_std(file);
            if len <= PART as u64 {
                let mut bytes = Vec::with_capacity(len as usize);
                tokio::io::AsyncReadExt::read_to_end(&mut file, &mut bytes).await?;
                client.put(&key, PutPayload::from(bytes)).await.map_err(io_err)?;
                return Ok(());
            }
            let upload = client.put_multipart(&key).await.map_err(io_err)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0_u8; PART];
            let copied = async {
                loop {
                    writer.wait_for_capacity(IN_FLIGHT).await.map_err(io_err)?;
                    let n = read_full(&mut file, &mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    writer.write(&buf[..n]);
                }
            }
            .await;
            match copied {
                Ok(()) => writer.finish().await.map(|_| ()).map_err(io_err),
                Err(e) => {
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })
    }

    /// Streams the object `key` (one GET), hashing it and, with `sink`, writing it there: its
    /// SHA-256 and length.
    fn fetch(&self, key: &Key, sink: Option<std::fs::File>) -> std::io::Result<(Digest, u64)> {
        let (client, key) = (self.client.clone(), key.clone());
        self.call(async move {
            let mut body = client.get(&key).await.map_err(io_err)?.into_stream();
            let mut sink = sink.map(tokio::fs::File::from_std);
            let (mut hasher, mut len) = (Sha256::new(), 0_u64);
            while let Some(bytes) = body.next().await {
                let bytes = bytes.map_err(io_err)?;
                hasher.update(&bytes);
                len += bytes.len() as u64;
                if let Some(f) = &mut sink {
                    f.write_all(&bytes).await?;
                }
            }
            if let Some(f) = &mut sink {
                f.flush().await?;
            }
            Ok((super::blobs::finish(hasher), len))
        })
    }

    fn missing(&self, key: &Key) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is not in the bucket", self.display(key)))
    }

    /// Downloads the blob `d` into `tmp` (one streamed GET) and checks its SHA-256 on the way: a bucket object that
    /// does not hold `d`'s bytes is refused, so the caller only ever publishes a verified copy.
    ///
    /// # Errors
    /// A missing blob (`NotFound`), a digest mismatch (`InvalidData`), transfer and write errors.
    pub fn download_blob(&self, d: &Digest, tmp: &NamedTempFile) -> std::io::Result<()> {
        let key = self.blob_key(d);
        let (got, _) = self
            .fetch(&key, Some(tmp.as_file().try_clone()?))
            .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { self.missing(&key) } else { e })?;
        if got != *d {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds the bytes of {got}", self.display(&key)),
            ));
        }
        Ok(())
    }

    /// SHA-256 and length of the object `key`, streamed (`kiln fsck`).
    ///
    /// # Errors
    /// Transfer errors.
    pub fn hash(&self, key: &Key) -> std::io::Result<(Digest, u64)> {
        self.fetch(key, None)
    }

    /// The manifest stored under exactly `name`, `None` when there is none.
    ///
    /// # Errors
    /// Object-store errors, and a manifest larger than any real one.
    pub fn get_manifest(&self, name: &ModelName) -> std::io::Result<Option<RemoteManifest>> {
        let (client, key) = (self.client.clone(), self.manifest_key(name));
        let shown = self.display(&key);
        self.call(async move {
            let r = match client.get(&key).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(io_err(e)),
            };
            if r.meta.size > MAX_MANIFEST {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{shown} is {} bytes, more than any manifest", r.meta.size),
                ));
            }
            let meta = r.meta.clone();
            let bytes = r.bytes().await.map_err(io_err)?.to_vec();
            Ok(Some(RemoteManifest { bytes, meta }))
        })
    }

    /// Writes `bytes` as the manifest of `name` with a conditional put: only if there is none
    /// (`replacing` is `None`), or only if it is still the object `replacing` describes (its
    /// e-tag). S3 puts are atomic, so a reader sees one writer's whole bytes; the condition
    /// tells a writer that another changed the name since it looked.
    ///
    /// # Errors
    /// Object-store errors other than the condition failing.
    pub fn put_manifest(
        &self,
        name: &ModelName,
        bytes: Vec<u8>,
        replacing: Option<&ObjectMeta>,
    ) -> std::io::Result<Written> {
        let mode = match replacing {
            None => PutMode::Create,
            Some(m) => PutMode::Update(UpdateVersion { e_tag: m.e_tag.clone(), version: m.version.clone() }),
        };
        let (client, key) = (self.client.clone(), self.manifest_key(name));
        self.call(async move {
            match client.put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode)).await {
                Ok(_) => Ok(Written::Done),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    Ok(Written::Conflict)
                }
                Err(e) => Err(io_err(e)),
            }
        })
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = tokio::io::AsyncReadExt::read(file, &mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn bucket_urls() {
        assert_eq!(parse_url("s3://models"), Some(("models", "")));
        assert_eq!(parse_url("s3://models/"), Some(("models", "")));
        assert_eq!(parse_url("s3://models/team/a/"), Some(("models", "team/a")));
        assert_eq!(parse_url("s3:///prefix"), None, "no bucket");
        assert_eq!(parse_url("/srv/models"), None, "a folder");
        assert_eq!(parse_url("S3://models"), None, "the scheme is lowercase, as object_store's");
    }
}
