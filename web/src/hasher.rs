//! SHA-256 of files off the page's thread: the `kiln-hash` Web Worker (`hash_worker.rs`), started
//! on first use and kept; each file is a job with its own progress callback. Cancelling
//! terminates the worker (its loop reads synchronously and hears nothing else); the next job
//! starts a fresh one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, MessageEvent, Worker};

/// The worker's loader, next to the page (trunk's `data-loader-shim` for the `kiln-hash` bin).
const WORKER_URL: &str = "kiln-hash_loader.js";

/// One file being hashed: where its progress goes and how its promise settles.
struct Job {
    progress: Box<dyn Fn(f64, f64)>,
    resolve: Function,
    reject: Function,
}

type Jobs = Rc<RefCell<HashMap<u32, Job>>>;

/// The running worker.
struct Hasher {
    worker: Worker,
    /// Settles when the worker says it listens (or fails to load).
    ready: Promise,
    jobs: Jobs,
    /// Set when the worker failed: the next job starts a fresh one.
    broken: Rc<Cell<bool>>,
    next_id: u32,
    _on_message: Closure<dyn Fn(MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

thread_local! {
    static HASHER: RefCell<Option<Hasher>> = const { RefCell::new(None) };
}

fn js_err(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "hashing failed".into())
}

fn field(data: &JsValue, name: &str) -> JsValue {
    Reflect::get(data, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Rejects every job with `why`.
fn fail_all(jobs: &Jobs, why: &str) {
    let drained: Vec<Job> = jobs.borrow_mut().drain().map(|(_, j)| j).collect();
    for job in drained {
        let _ = job.reject.call1(&JsValue::NULL, &why.into());
    }
}

fn start() -> Result<Hasher, String> {
    let worker = Worker::new(WORKER_URL).map_err(|e| js_err(&e))?;
    let jobs: Jobs = Rc::default();
    let mut settle = None;
    let ready = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let (ready_ok, ready_err) = settle.ok_or("no promise")?;
    let on_jobs = Rc::clone(&jobs);
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
        let data = ev.data();
        if field(&data, "ready").is_truthy() {
            let _ = ready_ok.call0(&JsValue::NULL);
            return;
        }
        let Some(id) = field(&data, "id").as_f64() else { return };
        let id = id as u32;
        let (digest, error) = (field(&data, "digest"), field(&data, "error"));
        if digest.is_undefined() && error.is_undefined() {
            if let Some(job) = on_jobs.borrow().get(&id) {
                (job.progress)(
                    field(&data, "done").as_f64().unwrap_or(0.0),
                    field(&data, "total").as_f64().unwrap_or(0.0),
                );
            }
            return;
        }
        let Some(job) = on_jobs.borrow_mut().remove(&id) else { return };
        let _ = if digest.is_undefined() {
            job.reject.call1(&JsValue::NULL, &error)
        } else {
            job.resolve.call1(&JsValue::NULL, &digest)
        };
    });
    let err_jobs = Rc::clone(&jobs);
    let broken = Rc::new(Cell::new(false));
    let is_broken = Rc::clone(&broken);
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |ev: web_sys::Event| {
        ev.prevent_default();
        let why = "the hashing worker failed to start or crashed";
        let _ = ready_err.call1(&JsValue::NULL, &why.into());
        fail_all(&err_jobs, why);
        is_broken.set(true);
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(Hasher { worker, ready, jobs, broken, next_id: 0, _on_message: on_message, _on_error: on_error })
}

/// Starts the worker ahead of the first file, so its wasm loads while the user fills the form.
pub(crate) fn warm() {
    HASHER.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_none() {
            *h = start().ok();
        }
    });
}

/// SHA-256 of `file` as `sha256:<hex>`, computed in the worker; `progress(done, total)` as it
/// goes.
pub(crate) async fn sha256(file: &File, progress: impl Fn(f64, f64) + 'static) -> Result<String, String> {
    let (worker, ready, jobs, id) = HASHER.with(|h| {
        let mut h = h.borrow_mut();
        if h.as_ref().is_none_or(|h| h.broken.get()) {
            if let Some(old) = h.take() {
                old.worker.terminate();
            }
            *h = Some(start()?);
        }
        let h = h.as_mut().ok_or("no worker")?;
        h.next_id = h.next_id.wrapping_add(1);
        Ok::<_, String>((h.worker.clone(), h.ready.clone(), Rc::clone(&h.jobs), h.next_id))
    })?;
    JsFuture::from(ready).await.map_err(|e| js_err(&e))?;
    let mut progress: Option<Box<dyn Fn(f64, f64)>> = Some(Box::new(progress));
    let done = Promise::new(&mut |resolve, reject| {
        if let Some(progress) = progress.take() {
            jobs.borrow_mut().insert(id, Job { progress, resolve, reject });
        }
    });
    let msg = Object::new();
    let _ = Reflect::set(&msg, &"id".into(), &id.into());
    let _ = Reflect::set(&msg, &"file".into(), file);
    if let Err(e) = worker.post_message(&msg) {
        jobs.borrow_mut().remove(&id);
        return Err(js_err(&e));
    }
    let digest = JsFuture::from(done).await.map_err(|e| js_err(&e))?;
    digest.as_string().ok_or_else(|| "the worker sent no digest".into())
}

/// Stops all hashing: the worker is terminated and every job fails with "cancelled".
pub(crate) fn cancel() {
    if let Some(h) = HASHER.with(|h| h.borrow_mut().take()) {
        h.worker.terminate();
        fail_all(&h.jobs, "cancelled");
    }
}
