//! The importance-matrix reader on arbitrary bytes (both formats: GGUF first, then the legacy
//! `.dat`): it must answer Ok or Err, never panic or allocate beyond the input's size. A matrix
//! it accepts has finite values and answers `weights_for` and `metadata` without panicking.
#![no_main]

use kiln_core::imatrix;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = imatrix::parse(data) else { return };
    assert!(m.entries.values().flatten().all(|v| v.is_finite()));
    for (name, v) in &m.entries {
        let _ = m.weights_for(name, v.len() as u64, 1);
        let _ = m.weights_for(name, 1, v.len() as u64 + 1);
    }
    let _ = m.metadata("x.imatrix");
});
