//! Request validation on arbitrary JSON: `CreateRequest` decoding, then `validate_create`, and
//! the name and digest parsers on the raw text. Errors are fine; panics are not.
#![no_main]

use kiln_core::request::CreateRequest;
use kiln_core::validate::validate_create;
use kiln_core::{Digest, ModelName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(n) = ModelName::parse(text) {
            // A valid name never holds a path separator or a dot-dot segment.
            for part in n.parts() {
                assert!(!part.contains('/') && !part.contains('\\') && part != ".." && part != ".", "{part:?}");
            }
        }
        if let Ok(d) = Digest::parse(text) {
            assert!(d.hex().len() == 64 && d.hex().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    if let Ok(req) = serde_json::from_slice::<CreateRequest>(data) {
        let _ = validate_create(&req);
    }
});
