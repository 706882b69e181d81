//! One create, start to end: hash the chosen file, upload it unless the server has it, then send
//! the request and follow its NDJSON stream, every step shown in the progress area.

use leptos::prelude::*;
use web_sys::{AbortSignal, File};

use super::progress::Progress;
use crate::client;
use crate::form::FormState;

/// Hashes `file` and makes sure the server has it as a blob; its digest.
async fn ensure_blob(file: &File, progress: Progress) -> Result<String, String> {
    let digest = client::sha256_file(file, move |d, t| progress.set_bar("hash", "hashing the file", d, t)).await?;
    if client::has_blob(&digest).await? {
        progress.log(&format!("the server already has {digest}"));
    } else {
        let (key, label) = (format!("upload {digest}"), format!("uploading {}", file.name()));
        client::upload_blob(file, &digest, move |d, t| progress.set_bar(&key, &label, d, t)).await?;
        progress.log(&format!("uploaded {digest}"));
    }
    Ok(digest)
}

/// Runs the create the form describes; the name of the model made.
pub(super) async fn run_create(
    form: RwSignal<FormState>,
    file: Option<File>,
    signal: AbortSignal,
    progress: Progress,
) -> Result<String, String> {
    // A file is only sent when no existing model was chosen as the source.
    if let Some(f) = file.filter(|_| form.with_untracked(|s| s.from.is_empty())) {
        let digest = ensure_blob(&f, progress).await?;
        form.update(|s| s.file_digest = Some(digest));
    }
    let req = form.get_untracked().to_request().map_err(|(_, e)| e)?;
    client::create_stream(&req, &signal, move |ev| {
        if ev.total > 0 {
            progress.set_bar(&ev.digest, &ev.status, ev.completed as f64, ev.total as f64);
        }
        progress.log(&ev.status);
    })
    .await?;
    Ok(req.model.unwrap_or_default())
}
