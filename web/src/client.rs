//! HTTP from the browser: JSON calls and the create call read as a live NDJSON stream (gloo-net's
//! fetch, the body through wasm-streams, cancellable through an AbortSignal) and blob upload with
//! progress (hashing is `hasher.rs`'s worker).

use gloo_net::http::{Method, Request, RequestBuilder, Response};
use js_sys::{Promise, Uint8Array};
use kiln_core::event::ProgressEvent;
use kiln_core::request::CreateRequest;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, File, XmlHttpRequest};

/// A JavaScript exception's message (an aborted fetch is a DOMException, which is an Error).
fn js_err(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "request failed".into())
}

#[expect(clippy::needless_pass_by_value, reason = "a `map_err` adapter: takes what `map_err` hands it")]
fn net_err(e: gloo_net::Error) -> String {
    e.to_string()
}

/// The response when it is a success; otherwise the `error` of its JSON body, or the status.
async fn checked(resp: Result<Response, gloo_net::Error>) -> Result<Response, String> {
    let resp = resp.map_err(net_err)?;
    if resp.ok() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(error_of(&body).unwrap_or_else(|| format!("HTTP {}: {body}", resp.status())))
}

/// The `error` field of a JSON error body.
fn error_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| v["error"].as_str().map(str::to_owned))
}

/// GET a JSON document.
pub(crate) async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    checked(Request::get(path).send().await).await?.json().await.map_err(net_err)
}

/// A JSON call; the response body parsed as JSON when there is one.
pub(crate) async fn call(method: Method, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
    let req = RequestBuilder::new(path).method(method).json(body).map_err(net_err)?;
    let text = checked(req.send().await).await?.text().await.map_err(net_err)?;
    if text.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Whether the server already has a blob.
pub(crate) async fn has_blob(digest: &str) -> Result<bool, String> {
    let resp = RequestBuilder::new(&format!("/api/blobs/{digest}")).method(Method::HEAD).send().await;
    match resp.map_err(net_err)?.status() {
        200 => Ok(true),
        404 => Ok(false),
        s => Err(format!("HEAD /api/blobs answered {s}")),
    }
}

/// Uploads a file as a blob; `progress(sent, total)` as it goes; aborting `signal` stops it.
///
/// XMLHttpRequest rather than fetch: fetch reports no upload progress, and the bar needs it.
pub(crate) async fn upload_blob(
    file: &File,
    digest: &str,
    signal: &AbortSignal,
    progress: impl Fn(f64, f64) + 'static,
) -> Result<(), String> {
    if signal.aborted() {
        return Err("cancelled".into());
    }
    let xhr = XmlHttpRequest::new().map_err(|e| js_err(&e))?;
    xhr.open("POST", &format!("/api/blobs/{digest}")).map_err(|e| js_err(&e))?;
    let on_progress = Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
        progress(e.loaded(), e.total());
    });
    xhr.upload().map_err(|e| js_err(&e))?.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let xhr2 = xhr.clone();
    let done = Promise::new(&mut |resolve, reject| {
        let ok = resolve.clone();
        xhr2.set_onload(Some(Closure::once_into_js(move || ok.call0(&JsValue::NULL)).unchecked_ref()));
        let err = reject.clone();
        xhr2.set_onerror(Some(
            Closure::once_into_js(move || err.call1(&JsValue::NULL, &"upload failed".into())).unchecked_ref(),
        ));
        let err = reject.clone();
        xhr2.set_onabort(Some(
            Closure::once_into_js(move || err.call1(&JsValue::NULL, &"cancelled".into())).unchecked_ref(),
        ));
    });
    let xhr3 = xhr.clone();
    let on_abort = Closure::<dyn Fn()>::new(move || {
        let _ = xhr3.abort();
    });
    let listener: &js_sys::Function = on_abort.as_ref().unchecked_ref();
    signal.add_event_listener_with_callback("abort", listener).map_err(|e| js_err(&e))?;
    xhr.send_with_opt_blob(Some(file)).map_err(|e| js_err(&e))?;
    let sent = JsFuture::from(done).await.map_err(|e| js_err(&e));
    let _ = signal.remove_event_listener_with_callback("abort", listener);
    sent?;
    // The closures must outlive the upload: the browser calls them until the load event.
    drop((on_progress, on_abort));
    if matches!(xhr.status().map_err(|e| js_err(&e))?, 200 | 201) {
        return Ok(());
    }
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    Err(error_of(&body).unwrap_or_else(|| "upload failed".into()))
}

/// POSTs a create and feeds each NDJSON line to `on_event` as it arrives; aborting `signal`
/// ends the request, which cancels the create on the server.
pub(crate) async fn create_stream(
    req: &CreateRequest,
    signal: &AbortSignal,
    on_event: impl FnMut(ProgressEvent),
) -> Result<(), String> {
    let req = Request::post("/api/create").abort_signal(Some(signal)).json(req).map_err(net_err)?;
    events(req, on_event).await
}

/// POSTs a push or a pull (`/api/push`, `/api/pull`) and feeds each NDJSON line to `on_event`.
pub(crate) async fn transfer_stream(
    path: &str,
    body: &serde_json::Value,
    on_event: impl FnMut(ProgressEvent),
) -> Result<(), String> {
    events(Request::post(path).json(body).map_err(net_err)?, on_event).await
}

/// Sends `req` and reads its NDJSON answer line by line into `on_event`; an `{"error"}` line
/// ends it as the failure.
async fn events(req: Request, mut on_event: impl FnMut(ProgressEvent)) -> Result<(), String> {
    let resp = checked(req.send().await).await?;
    let mut body = wasm_streams::ReadableStream::from_raw(resp.body().ok_or("empty response")?);
    let mut reader = body.get_reader();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = reader.read().await.map_err(|e| js_err(&e))? {
        buf.extend(Uint8Array::new(&chunk).to_vec());
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            on_event(event(&line)?);
        }
    }
    if buf.iter().any(|b| !b.is_ascii_whitespace()) {
        on_event(event(&buf)?);
    }
    Ok(())
}

/// One NDJSON line as a progress event; an `{"error"}` line is the create's failure.
fn event(line: &[u8]) -> Result<ProgressEvent, String> {
    let ev: ProgressEvent = serde_json::from_slice(line.trim_ascii()).map_err(|e| e.to_string())?;
    if ev.error.is_empty() { Ok(ev) } else { Err(ev.error) }
}
