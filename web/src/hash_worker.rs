//! The hashing Web Worker (trunk builds it as the `kiln-hash` worker bin): SHA-256 of the files
//! the page posts, off the page's thread so it stays responsive. Messages in: `{id, file}`;
//! out: `{ready: true}` once listening, `{id, done, total}` after each slice, then `{id, digest}`
//! or `{id, error}`. Natively an empty program.

fn main() {
    #[cfg(target_arch = "wasm32")]
    worker::listen();
}

#[cfg(target_arch = "wasm32")]
mod worker {
    use js_sys::{Object, Reflect, Uint8Array};
    use sha2::{Digest as _, Sha256};
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use web_sys::{DedicatedWorkerGlobalScope, File, FileReaderSync, MessageEvent};

    /// Bytes read per slice: big enough that the copies cost little, small enough for smooth
    /// progress.
    const SLICE: usize = 8 << 20;

    /// A message of `(key, value)` pairs.
    fn message(pairs: &[(&str, JsValue)]) -> JsValue {
        let o = Object::new();
        for (k, v) in pairs {
            // Setting a property of a fresh plain object cannot fail.
            let _ = Reflect::set(&o, &JsValue::from_str(k), v);
        }
        o.into()
    }

    fn js_err(e: &JsValue) -> String {
        e.dyn_ref::<js_sys::Error>().map_or_else(|| format!("{e:?}"), |e| String::from(e.message()))
    }

    /// SHA-256 of `file` as `sha256:<hex>`, posting `{id, done, total}` after each slice.
    fn hash(scope: &DedicatedWorkerGlobalScope, id: &JsValue, file: &File) -> Result<String, String> {
        let reader = FileReaderSync::new().map_err(|e| js_err(&e))?;
        let total = file.size();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; SLICE];
        let mut at = 0.0;
        while at < total {
            let end = (at + SLICE as f64).min(total);
            let blob = file.slice_with_f64_and_f64(at, end).map_err(|e| js_err(&e))?;
            let buffer = reader.read_as_array_buffer(&blob).map_err(|e| js_err(&e))?;
            let bytes = Uint8Array::new(&buffer);
            let n = bytes.length() as usize;
            bytes.copy_to(&mut buf[..n]);
            hasher.update(&buf[..n]);
            at = end;
            let progress = message(&[("id", id.clone()), ("done", at.into()), ("total", total.into())]);
            scope.post_message(&progress).map_err(|e| js_err(&e))?;
        }
        Ok(kiln_core::Digest::from_bytes(&hasher.finalize().into()).to_string())
    }

    /// Answers every `{id, file}` posted to this worker, then says it is ready: messages sent
    /// before the wasm loaded were dropped, so the page waits for that.
    pub(super) fn listen() {
        let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        let this = scope.clone();
        let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            let id = Reflect::get(&data, &"id".into()).unwrap_or(JsValue::NULL);
            let reply = match Reflect::get(&data, &"file".into()).map(JsCast::dyn_into::<File>) {
                Ok(Ok(file)) => match hash(&this, &id, &file) {
                    Ok(digest) => message(&[("id", id), ("digest", digest.into())]),
                    Err(e) => message(&[("id", id), ("error", e.into())]),
                },
                _ => message(&[("id", id), ("error", "not a file".into())]),
            };
            // The page is gone when this fails: nobody to tell.
            let _ = this.post_message(&reply);
        });
        scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // The handler lives as long as the worker.
        on_message.forget();
        let _ = scope.post_message(&message(&[("ready", true.into())]));
    }
}
