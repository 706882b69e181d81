//! One create, start to end: hash the chosen file or the folder's files (in the worker), upload
//! the blobs the server lacks, then send the request and follow its NDJSON stream, every step
//! shown in the progress area.

use std::collections::BTreeMap;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, File};

use super::progress::Progress;
use crate::form::FormState;
use crate::{client, hasher};

/// A folder's files a create sends: (`files` key, file), sorted by key.
pub(super) type FolderFiles = Vec<(String, File)>;

/// Hashes `file` and makes sure the server has it as a blob; its digest.
async fn ensure_blob(file: &File, signal: &AbortSignal, progress: Progress) -> Result<String, String> {
    progress.set_bar("hash", "hashing the file", 0.0, file.size());
    let digest = hasher::sha256(file, move |d, t| progress.set_bar("hash", "hashing the file", d, t)).await?;
    if client::has_blob(&digest).await? {
        progress.log(&format!("the server already has {digest}"));
    } else {
        let (key, label) = (format!("upload {digest}"), format!("uploading {}", file.name()));
        client::upload_blob(file, &digest, signal, move |d, t| progress.set_bar(&key, &label, d, t)).await?;
        progress.log(&format!("uploaded {digest}"));
    }
    Ok(digest)
}

/// A file size for its detail line.
fn size(bytes: f64) -> String {
    if bytes < 1e6 { format!("{:.1} kB", bytes / 1e3) } else { format!("{:.1} MB", bytes / 1e6) }
}

/// A digest cut to what a person compares at a glance (the full one is in the log).
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Hashes every file of a folder, then uploads those the server lacks: one bar for all the bytes
/// of each step, a detail line per file. The `files` map of the create.
async fn ensure_folder(
    files: &FolderFiles,
    signal: &AbortSignal,
    progress: Progress,
) -> Result<BTreeMap<String, String>, String> {
    let total: f64 = files.iter().map(|(_, f)| f.size()).sum();
    let label = format!("hashing {} files", files.len());
    progress.set_bar("hash", &label, 0.0, total);
    for (key, f) in files {
        progress.file_line(key, &format!("{}, waiting", size(f.size())));
    }
    let mut digests = BTreeMap::new();
    let mut base = 0.0;
    for (key, f) in files {
        progress.file_line(key, &format!("{}, hashing", size(f.size())));
        let l = label.clone();
        let digest = hasher::sha256(f, move |d, _| progress.set_bar("hash", &l, base + d, total)).await?;
        base += f.size();
        progress.file_line(key, &format!("{}, {}…", size(f.size()), short(&digest)));
        digests.insert(key.clone(), digest);
    }
    let mut missing = Vec::new();
    for (key, f) in files {
        let digest = &digests[key];
        if client::has_blob(digest).await? {
            progress.file_line(key, &format!("{}, {}…, already on the server", size(f.size()), short(digest)));
            progress.log(&format!("the server already has {key} as {digest}"));
        } else {
            missing.push((key, f, digest));
        }
    }
    let total: f64 = missing.iter().map(|(_, f, _)| f.size()).sum();
    let label = format!("uploading {} of {} files", missing.len(), files.len());
    if !missing.is_empty() {
        progress.set_bar("upload", &label, 0.0, total);
    }
    let mut base = 0.0;
    for (key, f, digest) in missing {
        progress.file_line(key, &format!("{}, {}…, uploading", size(f.size()), short(digest)));
        let l = label.clone();
        client::upload_blob(f, digest, signal, move |d, _| progress.set_bar("upload", &l, base + d, total)).await?;
        base += f.size();
        progress.file_line(key, &format!("{}, {}…, uploaded", size(f.size()), short(digest)));
        progress.log(&format!("uploaded {key} as {digest}"));
    }
    progress.log(&format!("{} files on the server", files.len()));
    Ok(digests)
}

/// Runs the create the form describes; the name of the model made. Cancelling (`signal`) stops
/// the hashing, the upload or the create, whichever is running.
pub(super) async fn run_create(
    form: RwSignal<FormState>,
    file: Option<File>,
    folder: Option<FolderFiles>,
    imatrix: Option<File>,
    signal: AbortSignal,
    progress: Progress,
) -> Result<String, String> {
    let on_abort = Closure::<dyn Fn()>::new(hasher::cancel);
    let listener: &js_sys::Function = on_abort.as_ref().unchecked_ref();
    let _ = signal.add_event_listener_with_callback("abort", listener);
    let result = send(form, Sources { file, folder, imatrix }, &signal, progress).await;
    let _ = signal.remove_event_listener_with_callback("abort", listener);
    drop(on_abort);
    result
}

/// The files a create may upload.
struct Sources {
    file: Option<File>,
    folder: Option<FolderFiles>,
    imatrix: Option<File>,
}

async fn send(
    form: RwSignal<FormState>,
    sources: Sources,
    signal: &AbortSignal,
    progress: Progress,
) -> Result<String, String> {
    let Sources { file, folder, imatrix } = sources;
    // Files are only sent when no existing model was chosen as the source.
    if form.with_untracked(|s| s.from.is_empty()) {
        if let Some(files) = folder.filter(|_| form.with_untracked(|s| s.folder.is_some())) {
            let digests = ensure_folder(&files, signal, progress).await?;
            form.update(|s| s.folder = Some(digests));
        } else if let Some(f) = file {
            let digest = ensure_blob(&f, signal, progress).await?;
            form.update(|s| s.file_digest = Some(digest));
        }
    }
    if let Some(f) = imatrix.filter(|_| form.with_untracked(|s| s.imatrix_name.is_some())) {
        let digest = ensure_blob(&f, signal, progress).await?;
        form.update(|s| s.imatrix_digest = Some(digest));
    }
    let req = form.get_untracked().to_request().map_err(|(_, e)| e)?;
    client::create_stream(&req, signal, move |ev| {
        if ev.total > 0 {
            progress.set_bar(&ev.digest, &ev.status, ev.completed as f64, ev.total as f64);
        }
        progress.log(&ev.status);
    })
    .await?;
    Ok(req.model.unwrap_or_default())
}
