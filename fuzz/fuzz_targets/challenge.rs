//! `WWW-Authenticate` challenges as a hostile registry might send them: any text parses, without
//! panics or hangs, into a scheme and parameters whose keys are non-empty, trimmed and free of
//! the separators; values are never longer than the text.
#![no_main]

use kiln_core::challenge::Challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let c = Challenge::parse(text);
    assert!(!c.scheme.contains(' '));
    assert!(c.params.len() <= text.len());
    for (k, v) in &c.params {
        assert!(!k.is_empty() && k.trim() == k && !k.contains(['=', ',']), "key {k:?}");
        assert!(v.len() <= text.len());
        assert!(c.param(k).is_some());
    }
});
