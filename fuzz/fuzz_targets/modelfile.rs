//! The Modelfile parser on arbitrary text, then validation of what it produced: errors are
//! fine, panics and hangs are not; an error always names a line and column inside the text.
#![no_main]

use kiln_core::modelfile::parse_modelfile;
use kiln_core::validate::validate_create;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_modelfile(text) {
        Ok(mut req) => {
            req.model = Some("fuzz".into());
            let _ = validate_create(&req);
        }
        Err(e) => {
            let lines = text.split('\n').count().max(1);
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            assert!(e.column >= 1);
        }
    }
});
