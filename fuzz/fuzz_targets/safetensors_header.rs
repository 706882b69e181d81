//! The safetensors header and index readers on arbitrary bytes: they must answer Ok or Err,
//! never panic or allocate beyond the input's size. A header they accept must be consistent:
//! sorted unique names, every tensor inside the data section, no two overlapping.
#![no_main]

use kiln_core::hf::safetensors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = safetensors::parse_index(data);
    // The first 8 bytes say the file's length beyond the input (so data sections can be large
    // without the input being), the rest is a file: 8-byte length, JSON, data.
    let Some((len_bytes, file)) = data.split_first_chunk::<8>() else { return };
    let file_len = (file.len() as u64).saturating_add(u64::from_le_bytes(*len_bytes) % (1 << 40));
    let Some((prefix, rest)) = file.split_first_chunk::<8>() else { return };
    let Ok(n) = safetensors::header_len(*prefix, file_len) else { return };
    let Some(json) = rest.get(..n as usize) else { return };
    let Ok(h) = safetensors::parse(json, file_len) else { return };
    assert_eq!(h.data_start, 8 + n);
    assert!(h.tensors.windows(2).all(|w| w[0].name < w[1].name), "names sorted and unique");
    let mut spans: Vec<(u64, u64)> = h.tensors.iter().filter(|t| t.end > t.start).map(|t| (t.start, t.end)).collect();
    spans.sort_unstable();
    for t in &h.tensors {
        assert!(h.data_start <= t.start && t.start <= t.end && t.end <= file_len, "{t:?} outside the data section");
        assert!(t.dtype.bytes_for(t.elements()) == Some(t.end - t.start), "{t:?} size");
    }
    assert!(spans.windows(2).all(|w| w[1].0 >= w[0].1), "overlap");
});
