//! The GGUF header parser on arbitrary bytes: it must answer Ok or Err, never panic, loop or
//! allocate beyond the input's size. A header it accepts must re-encode to one that parses to
//! the same thing, and the per-tensor policy must run on it for every target.
#![no_main]

use kiln_core::file_type::TARGETS;
use kiln_core::gguf;
use kiln_core::tensor_policy::{ModelFacts, Policy, check_header_facts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut src = data;
    let Ok(h) = gguf::parse(&mut src, data.len() as u64) else { return };
    let arch = h.architecture().unwrap_or("");
    let key = |k: &str| h.get_u64(&format!("{arch}.{k}"));
    let names = || h.tensors.iter().map(|t| t.name.as_str());
    let encoded = gguf::encode_header(&h.kvs, &h.tensors, h.alignment);
    let mut again = encoded.as_slice();
    // The re-encoded header has no data section; only the infos are compared.
    if let Ok(h2) =
        gguf::parse(&mut again, encoded.len() as u64 + h.tensors.iter().map(|t| t.offset + t.size()).max().unwrap_or(0))
    {
        // Bytes, not values: NaN metadata must round-trip too (and no huge Debug dumps).
        assert!(gguf::encode_header(&h2.kvs, &h2.tensors, h2.alignment) == encoded, "re-encoded header differs");
    }
    if check_header_facts(
        arch,
        key("block_count"),
        key("attention.head_count"),
        key("attention.head_count_kv"),
        names(),
    )
    .is_err()
    {
        return;
    }
    // One target per input (chosen by its length) keeps executions fast; the corpus covers all.
    {
        let target = TARGETS[data.len() % TARGETS.len()];
        let facts = ModelFacts::new(
            arch,
            key("block_count").unwrap_or(0),
            key("expert_count").unwrap_or(0),
            key("attention.head_count").unwrap_or(0),
            key("attention.head_count_kv").unwrap_or(0),
            names(),
        );
        let mut policy = Policy::new(target, facts);
        for t in &h.tensors {
            let _ = policy.next(&t.name, &t.dims);
        }
    }
});
