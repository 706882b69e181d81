//! The safetensors header and index readers: what they accept, and each rejection naming its
//! fault and tensor.

use kiln_core::hf::safetensors::{self, Dtype, Header, SafetensorsError};

/// A file of `json` padded by nothing, then `data` zero bytes; parsed as a server would.
fn parse_file(json: &str, data: usize) -> Result<Header, SafetensorsError> {
    let mut f = (json.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(json.as_bytes());
    f.resize(f.len() + data, 0);
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&f[..8]);
    let n = safetensors::header_len(prefix, f.len() as u64)?;
    safetensors::parse(&f[8..8 + usize::try_from(n).expect("usize")], f.len() as u64)
}

fn err(json: &str, data: usize) -> String {
    parse_file(json, data).expect_err("must be rejected").to_string()
}

#[test]
fn accepts_and_sorts_by_name() {
    let json = r#"{"__metadata__":{"format":"pt"},
        "model.layers.2.w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},
        "model.layers.10.w":{"dtype":"F32","shape":[3],"data_offsets":[12,24]},
        "a":{"dtype":"F16","shape":[],"data_offsets":[24,26]},
        "empty":{"dtype":"F32","shape":[0,4],"data_offsets":[26,26]}}   "#;
    let h = parse_file(json, 26).expect("valid");
    let names: Vec<&str> = h.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "empty", "model.layers.10.w", "model.layers.2.w"]);
    assert_eq!(h.metadata, [("format".to_owned(), "pt".to_owned())]);
    let start = 8 + json.len() as u64;
    assert_eq!(h.data_start, start);
    let t = h.get("model.layers.2.w").expect("present");
    assert_eq!((t.dtype, t.shape.as_slice(), t.start, t.end), (Dtype::BF16, &[2, 3][..], start, start + 12));
    assert_eq!(h.get("a").map(safetensors::StTensor::elements), Some(1));
}

#[test]
fn header_len_is_bounded() {
    assert!(matches!(safetensors::header_len([0; 8], 7), Err(SafetensorsError::TooShort { len: 7 })));
    assert!(matches!(
        safetensors::header_len(100u64.to_le_bytes(), 50),
        Err(SafetensorsError::HeaderLen { len: 100, limit: 42 })
    ));
    let huge = safetensors::header_len((200u64 << 20).to_le_bytes(), 1 << 40).expect_err("over 100 MiB");
    assert!(huge.to_string().contains("100 MiB"), "{huge}");
    assert_eq!(safetensors::header_len(42u64.to_le_bytes(), 50).expect("fits"), 42);
}

#[test]
fn rejects_non_json_and_non_object() {
    assert!(err("{not json", 0).contains("not valid safetensors JSON"));
    assert!(err("[1,2]", 0).contains("not a JSON object"));
    assert!(err("\"x\"", 0).contains("not a JSON object"));
}

#[test]
fn rejects_malformed_entries_naming_the_tensor() {
    let e = err(r#"{"w":[1]}"#, 0);
    assert!(e.contains("\"w\"") && e.contains("not an object"), "{e}");
    let e = err(r#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, 4);
    assert!(e.contains("\"w\"") && e.contains("dtype"), "{e}");
    let e = err(r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4);
    assert!(e.contains("\"w\"") && e.contains("shape"), "{e}");
    let e = err(r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, 4);
    assert!(e.contains("\"w\"") && e.contains("[begin, end]"), "{e}");
}

#[test]
fn rejects_unknown_dtype() {
    let e = err(r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, 16);
    assert!(e.contains("\"w\"") && e.contains("unknown dtype \"F128\"") && e.contains("BF16"), "{e}");
    // Known to the format, refused later by the planner.
    let h = parse_file(r#"{"w":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}"#, 4).expect("I8 is a dtype");
    assert_eq!(h.tensors[0].dtype, Dtype::I8);
    let h = parse_file(r#"{"w":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}"#, 2).expect("F4 packs 2 a byte");
    assert_eq!(h.tensors[0].dtype.bits(), 4);
}

#[test]
fn rejects_data_past_the_file_end() {
    let e = err(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 12);
    assert!(e.contains("\"w\"") && e.contains("outside the data section of 12 bytes"), "{e}");
}

#[test]
fn rejects_reversed_offsets() {
    let e = err(r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, 12);
    assert!(e.contains("\"w\"") && e.contains("[8, 4]"), "{e}");
}

#[test]
fn rejects_size_mismatch() {
    let e = err(r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, 12);
    assert!(e.contains("\"w\"") && e.contains("12 data bytes") && e.contains("needs 16"), "{e}");
    let e = err(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, 4);
    assert!(e.contains("more than 2^64"), "{e}");
}

#[test]
fn rejects_unaligned() {
    let e = err(r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, 8);
    assert!(e.contains("\"w\"") && e.contains("not a multiple of the F32 element size 4"), "{e}");
}

#[test]
fn rejects_overlap() {
    let e = err(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        12,
    );
    assert!(e.contains("\"a\"") && e.contains("\"b\"") && e.contains("overlap"), "{e}");
}

#[test]
fn rejects_duplicate_names() {
    let e = err(
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        8,
    );
    assert!(e.contains("\"a\" appears twice"), "{e}");
    let e = err(r#"{"__metadata__":{},"__metadata__":{}}"#, 0);
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn metadata_must_be_strings() {
    assert!(err(r#"{"__metadata__":{"format":1}}"#, 0).contains("__metadata__"));
    assert!(err(r#"{"__metadata__":[]}"#, 0).contains("__metadata__"));
    assert!(parse_file(r#"{"__metadata__":{}}"#, 0).expect("empty").tensors.is_empty());
}

#[test]
fn errors_name_the_file() {
    let e = parse_file("[]", 0).expect_err("array").in_file("model-00002-of-00002.safetensors");
    assert_eq!(e.to_string(), "model-00002-of-00002.safetensors: header is not a JSON object");
}

#[test]
fn index() {
    let idx = safetensors::parse_index(
        br#"{"metadata":{"total_size":8},"weight_map":{"b":"model-2.safetensors","a":"model-1.safetensors","c":"model-2.safetensors"}}"#,
    )
    .expect("valid");
    assert_eq!(idx.weight_map[0], ("b".to_owned(), "model-2.safetensors".to_owned()));
    assert_eq!(idx.files(), ["model-1.safetensors", "model-2.safetensors"]);
    let e = |j: &[u8]| safetensors::parse_index(j).expect_err("invalid").to_string();
    assert!(e(br#"{"weight_map":{"a":"x","a":"y"}}"#).contains("\"a\" twice"));
    assert!(e(br#"{"metadata":{}}"#).contains("no \"weight_map\""));
    assert!(e(br#"{"weight_map":{"a":1}}"#).contains("\"a\""));
    assert!(e(b"[]").contains("model.safetensors.index.json"));
}
