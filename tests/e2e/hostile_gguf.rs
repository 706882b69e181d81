//! Crafted GGUF files (the shapes of CVE-2024-39720, CVE-2025-0312 and CVE-2025-0317 among them)
//! uploaded and used in a create: each is refused with a 400 that says what is wrong, before
//! anything is allocated for it, and the store is unchanged.

use serde_json::json;

use crate::bad_input::check;
use crate::util::TestServer;

/// A GGUF v3 file written field by field, so that any field can be made wrong.
#[derive(Clone)]
struct Gguf {
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kvs: Vec<Vec<u8>>,
    tensors: Vec<Vec<u8>>,
    data: Vec<u8>,
    alignment: usize,
}

fn str_bytes(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

impl Gguf {
    /// A valid two-layer llama with F16 tensors: quantizes to Q8_0.
    fn llama() -> Self {
        let mut g = Self { n_tensors: None, n_kv: None, kvs: vec![], tensors: vec![], data: vec![], alignment: 32 };
        g.kv_str("general.architecture", "llama");
        g.kv_u32("llama.block_count", 2);
        g.kv_u32("llama.attention.head_count", 4);
        g.kv_u32("llama.attention.head_count_kv", 2);
        let names = ["token_embd.weight", "blk.0.attn_v.weight", "blk.1.attn_v.weight"];
        for (i, name) in names.iter().enumerate() {
            g.tensor(name, &[32, 4], 1, (i * 256) as u64);
        }
        g.data = (0..3 * 128u16).flat_map(|i| (0x3000 + i).to_le_bytes()).collect();
        g
    }

    fn kv_raw(&mut self, key: &str, ty: u32, value: &[u8]) {
        let mut b = str_bytes(key);
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(value);
        self.kvs.push(b);
    }

    fn kv_str(&mut self, key: &str, v: &str) {
        self.kv_raw(key, 8, &str_bytes(v));
    }

    fn kv_u32(&mut self, key: &str, v: u32) {
        self.kv_raw(key, 4, &v.to_le_bytes());
    }

    /// Replaces the u32 value of `key`.
    fn set_u32(mut self, key: &str, v: u32) -> Self {
        let prefix = str_bytes(key);
        self.kvs.retain(|k| !k.starts_with(&prefix));
        self.kv_u32(key, v);
        self
    }

    fn tensor_raw(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64, n_dims: u32) {
        let mut b = str_bytes(name);
        b.extend_from_slice(&n_dims.to_le_bytes());
        dims.iter().for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        self.tensors.push(b);
    }

    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) {
        self.tensor_raw(name, dims, ty, offset, dims.len() as u32);
    }

    /// Replaces tensor `i`.
    fn with_tensor(mut self, i: usize, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let old = std::mem::take(&mut self.tensors);
        for (j, t) in old.into_iter().enumerate() {
            if j == i {
                self.tensor(name, dims, ty, offset);
            } else {
                self.tensors.push(t);
            }
        }
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&self.n_tensors.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        self.kvs.iter().chain(&self.tensors).for_each(|x| b.extend_from_slice(x));
        b.resize(b.len().div_ceil(self.alignment) * self.alignment, 0);
        b.extend_from_slice(&self.data);
        b
    }
}

#[test]
#[expect(clippy::too_many_lines, reason = "one table of hostile files, each with the reason it must be refused")]
fn hostile_gguf_files_are_refused_with_the_reason() {
    let s = TestServer::start();
    let base = Gguf::llama();
    // The unmodified file is good: every case below fails because of its one change.
    let good = s.upload(&base.bytes());
    s.create_ok(&json!({"model": "good", "files": {"m.gguf": good}, "quantize": "q8_0"}));

    let huge = u64::MAX / 2;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut g = base.clone();
    g.n_kv = Some(huge);
    cases.push(("absurd key/value count", g.bytes(), "key/values cannot fit in a file of"));
    let mut g = base.clone();
    g.n_tensors = Some(huge);
    cases.push(("absurd tensor count", g.bytes(), "tensors cannot fit in a file of"));
    let mut g = base.clone();
    g.kv_raw("general.name", 8, &huge.to_le_bytes());
    cases.push(("string length beyond the file", g.bytes(), "runs past the end of the file"));
    let mut g = base.clone();
    let mut arr = 4u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(1u64 << 40).to_le_bytes());
    g.kv_raw("general.tags", 9, &arr);
    cases.push(("array length beyond the file", g.bytes(), "cannot fit in the"));
    let mut g = base.clone();
    g.kv_raw("general.x", 99, &[0; 8]);
    cases.push(("unknown value type", g.bytes(), "has unknown value type 99"));
    cases.push((
        "unknown tensor type",
        base.clone().with_tensor(0, "token_embd.weight", &[32, 4], 77, 0).bytes(),
        "unknown type id 77",
    ));
    let mut g = base.clone();
    g.tensor("extra", &[32, 1, 1, 1, 1], 1, 768);
    cases.push(("five dimensions", g.bytes(), "5 dimensions (1 to 4 allowed)"));
    let mut g = base.clone();
    g.tensor_raw("extra", &[32], 1, 768, 9_999_999);
    cases.push(("absurd dimension count", g.bytes(), "9999999 dimensions"));
    cases.push((
        "element count overflow",
        base.clone().with_tensor(0, "token_embd.weight", &[1 << 32, 1 << 32, 1 << 32], 1, 0).bytes(),
        "element count overflows",
    ));
    cases.push((
        "zero dimension",
        base.clone().with_tensor(0, "token_embd.weight", &[32, 0], 1, 0).bytes(),
        "dimension 0 is not positive",
    ));
    cases.push((
        "negative dimension",
        base.clone().with_tensor(0, "token_embd.weight", &[32, (-4i64) as u64], 1, 0).bytes(),
        "dimension -4 is not positive",
    ));
    cases.push((
        "data offset outside the file",
        base.clone().with_tensor(2, "blk.1.attn_v.weight", &[32, 4], 1, 1 << 40).bytes(),
        "lies outside the file's 768-byte data section",
    ));
    cases.push((
        "offset + size wrapping around",
        base.clone().with_tensor(2, "blk.1.attn_v.weight", &[32, 4], 1, u64::MAX - 31).bytes(),
        "lies outside",
    ));
    cases.push((
        "overlapping tensors",
        base.clone().with_tensor(2, "blk.1.attn_v.weight", &[32, 4], 1, 128).bytes(),
        "data overlaps tensor",
    ));
    cases.push((
        "misaligned offset",
        base.clone().with_tensor(2, "blk.1.attn_v.weight", &[32, 4], 1, 520).bytes(),
        "offset 520 is not a multiple of the alignment 32",
    ));
    let mut g = base.clone();
    g.kv_u32("general.alignment", 0);
    cases.push((
        "alignment 0 (CVE-2025-0317's division by zero)",
        g.bytes(),
        "general.alignment must be a power-of-two",
    ));
    let mut g = base.clone();
    g.data.truncate(700);
    cases.push(("truncated tensor data", g.bytes(), "lies outside the file's"));
    let full = base.bytes();
    cases.push(("header cut after 60 bytes", full[..60].to_vec(), "4 key/values cannot fit in a file of 60 bytes"));
    cases.push(("header cut inside the tensor infos", full[..full.len() - 800].to_vec(), "GGUF file is truncated"));
    cases.push(("magic only (CVE-2024-39720's shape)", b"GGUF".to_vec(), "GGUF file is truncated"));
    cases.push((
        "row not a multiple of the block",
        base.clone().with_tensor(0, "token_embd.weight", &[33, 4], 8, 0).bytes(),
        "is not a multiple of the Q8_0 block size 32",
    ));
    let mut g2 = base.clone();
    let mut name = 2u64.to_le_bytes().to_vec();
    name.extend_from_slice(&[0xff, 0xfe]);
    name.extend_from_slice(&8u32.to_le_bytes());
    name.extend_from_slice(&str_bytes("x"));
    g2.kvs.push(name);
    cases.push(("key that is not UTF-8", g2.bytes(), "key is not UTF-8"));
    let mut g = base.clone();
    g.kv_u32("llama.block_count", 5);
    cases.push(("duplicate key", g.bytes(), "duplicate key \"llama.block_count\""));
    let mut g = base.clone();
    g.tensor("token_embd.weight", &[32, 4], 1, 768);
    g.data.extend_from_slice(&[0; 256]);
    cases.push(("duplicate tensor name", g.bytes(), "duplicate tensor name"));

    let uploaded: Vec<(&str, String, &str)> =
        cases.into_iter().map(|(what, b, msg)| (what, s.upload(&b), msg)).collect();
    for (what, d, message) in &uploaded {
        eprintln!("hostile GGUF: {what}");
        let req = json!({"model": "bad", "files": {"m.gguf": d}});
        check(&s, "/api/create", req.to_string().as_bytes(), 400, message);
    }

    // Header values the per-tensor rules divide by or index with: refused when quantizing.
    let quantize_cases = [
        (
            base.clone().set_u32("llama.block_count", 0),
            "llama.block_count is 0 but tensor \"blk.1.attn_v.weight\" is in layer 1",
        ),
        (base.clone().set_u32("llama.block_count", 1), "llama.block_count is 1 but tensor"),
        (base.clone().set_u32("llama.attention.head_count", 0), "llama.attention.head_count is 0"),
        (base.clone().set_u32("llama.attention.head_count_kv", 0), "llama.attention.head_count_kv is 0"),
    ];
    for (g, message) in &quantize_cases {
        let d = s.upload(&g.bytes());
        let req = json!({"model": "bad", "files": {"m.gguf": d}, "quantize": "q4_K_M"});
        check(&s, "/api/create", req.to_string().as_bytes(), 400, message);
    }
    // The refused uploads stay, unreferenced, until the start-up prune (as in Ollama).
    let (ok, report) = s.fsck_allowing_orphans();
    assert!(ok, "{report}");
    assert_eq!(s.get("/api/tags").json()["models"].as_array().unwrap().len(), 1, "only the good model exists");
    eprintln!("hostile GGUF: {} malformed files and {} bad headers refused", uploaded.len(), quantize_cases.len());
}
