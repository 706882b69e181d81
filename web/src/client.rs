//! HTTP from the browser: JSON calls, blob hashing (sha2 in wasm, read in slices) and upload
//! with progress (XMLHttpRequest: fetch has no upload progress), and the create call read as a
//! live NDJSON stream (fetch + ReadableStream), cancellable through an AbortController.

use js_sys::{Promise, Uint8Array};
use kiln_core::event::ProgressEvent;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, File, Request, RequestInit, Response, XmlHttpRequest};

fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "request failed".into())
}

async fn fetch(method: &str, path: &str, body: Option<&str>, signal: Option<&AbortSignal>) -> Result<Response, String> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
    }
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    let req = Request::new_with_str_and_init(path, &init).map_err(js_err)?;
    if body.is_some() {
        req.headers().set("Content-Type", "application/json").map_err(js_err)?;
    }
    let resp = JsFuture::from(window().fetch_with_request(&req)).await.map_err(js_err)?;
    resp.dyn_into::<Response>().map_err(js_err)
}

async fn text(resp: &Response) -> Result<String, String> {
    let t = JsFuture::from(resp.text().map_err(js_err)?).await.map_err(js_err)?;
    Ok(t.as_string().unwrap_or_default())
}

/// The `error` of a JSON error body, or the status.
async fn failure(resp: &Response) -> String {
    let body = text(resp).await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {}: {body}", resp.status()))
}

/// GET a JSON document.
pub(crate) async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let resp = fetch("GET", path, None, None).await?;
    if !resp.ok() {
        return Err(failure(&resp).await);
    }
    serde_json::from_str(&text(&resp).await?).map_err(|e| e.to_string())
}

/// A JSON call; the response body parsed as JSON when there is one.
pub(crate) async fn call(method: &str, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
    let resp = fetch(method, path, Some(&body.to_string()), None).await?;
    if !resp.ok() {
        return Err(failure(&resp).await);
    }
    let t = text(&resp).await?;
    Ok(if t.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&t).map_err(|e| e.to_string())? })
}

/// SHA-256 of a file, read in 8 MiB slices; `progress(done, total)` after each.
pub(crate) async fn sha256_file(file: &File, progress: impl Fn(f64, f64)) -> Result<String, String> {
    const SLICE: f64 = 8.0 * 1024.0 * 1024.0;
    let total = file.size();
    let mut hasher = Sha256::new();
    let mut at = 0.0;
    while at < total {
        let end = (at + SLICE).min(total);
        let blob = file.slice_with_f64_and_f64(at, end).map_err(js_err)?;
        let buf = JsFuture::from(blob.array_buffer()).await.map_err(js_err)?;
        hasher.update(Uint8Array::new(&buf).to_vec());
        at = end;
        progress(at, total);
    }
    Ok(format!("sha256:{}", hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Whether the server already has a blob.
pub(crate) async fn has_blob(digest: &str) -> Result<bool, String> {
    let resp = fetch("HEAD", &format!("/api/blobs/{digest}"), None, None).await?;
    match resp.status() {
        200 => Ok(true),
        404 => Ok(false),
        s => Err(format!("HEAD /api/blobs answered {s}")),
    }
}

/// Uploads a file as a blob; `progress(sent, total)` as it goes.
pub(crate) async fn upload_blob(
    file: &File,
    digest: &str,
    progress: impl Fn(f64, f64) + 'static,
) -> Result<(), String> {
    let xhr = XmlHttpRequest::new().map_err(js_err)?;
    xhr.open("POST", &format!("/api/blobs/{digest}")).map_err(js_err)?;
    let on_progress = Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
        progress(e.loaded(), e.total());
    });
    xhr.upload().map_err(js_err)?.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let xhr2 = xhr.clone();
    let done = Promise::new(&mut |resolve, reject| {
        let ok = resolve.clone();
        xhr2.set_onload(Some(Closure::once_into_js(move || ok.call0(&JsValue::NULL)).unchecked_ref()));
        let err = reject.clone();
        xhr2.set_onerror(Some(
            Closure::once_into_js(move || err.call1(&JsValue::NULL, &"upload failed".into())).unchecked_ref(),
        ));
    });
    xhr.send_with_opt_blob(Some(file)).map_err(js_err)?;
    JsFuture::from(done).await.map_err(js_err)?;
    drop(on_progress);
    match xhr.status().map_err(js_err)? {
        200 | 201 => Ok(()),
        _ => Err(serde_json::from_str::<serde_json::Value>(&xhr.response_text().ok().flatten().unwrap_or_default())
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| "upload failed".into())),
    }
}

/// POSTs a create and feeds each NDJSON line to `on_event` as it arrives.
pub(crate) async fn create_stream(
    body: &str,
    signal: &AbortSignal,
    mut on_event: impl FnMut(ProgressEvent),
) -> Result<(), String> {
    let resp = fetch("POST", "/api/create", Some(body), Some(signal)).await?;
    if !resp.ok() {
        return Err(failure(&resp).await);
    }
    let stream = resp.body().ok_or("empty response")?;
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_err)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(js_err)?.as_bool().unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_err)?;
        buf.extend(Uint8Array::new(&value).to_vec());
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let ev: ProgressEvent = serde_json::from_slice(&line[..line.len() - 1]).map_err(|e| e.to_string())?;
            if !ev.error.is_empty() {
                return Err(ev.error);
            }
            on_event(ev);
        }
    }
    Ok(())
}
