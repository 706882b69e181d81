//! Hugging Face import through the real server: every fault of an uploaded folder is a `400`
//! that names the file and the fault, before anything is written (the store is unchanged); a
//! good folder still converts afterwards. Faulty folders are the llama fixture with one thing
//! broken: a file dropped, a JSON file garbled, a shard rebuilt with a lying header.

use serde_json::{Value, json};

use crate::util::{TestServer, hf_fixture};

/// A safetensors header's entries, in order: name → `{dtype, shape, data_offsets}`.
type Entries = Vec<(String, Value)>;

/// A safetensors file: (name, dtype, shape, bytes) in order, packed, with an optional header
/// rewrite.
struct Shard {
    tensors: Vec<(String, String, Vec<u64>, Vec<u8>)>,
}

impl Shard {
    /// Reads a safetensors file into its tensors (the test's own reader: trusted input).
    fn read(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        let mut tensors: Vec<_> = header
            .into_iter()
            .filter(|(k, _)| k != "__metadata__")
            .map(|(k, v)| {
                let off: Vec<usize> =
                    v["data_offsets"].as_array().unwrap().iter().map(|o| o.as_u64().unwrap() as usize).collect();
                let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
                (k, v["dtype"].as_str().unwrap().to_owned(), shape, data[off[0]..off[1]].to_vec())
            })
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Self { tensors }
    }

    /// The header entries (name → dtype, shape, data_offsets) of the packed file.
    fn header(&self) -> Entries {
        let mut at = 0;
        self.tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                let e = json!({"dtype": dtype, "shape": shape, "data_offsets": [at, at + data.len()]});
                at += data.len();
                (name.clone(), e)
            })
            .collect()
    }

    /// Packs the file; `edit` may change the header's JSON text (to write duplicates).
    fn write(&self, entries: &Entries, edit: impl Fn(String) -> String) -> Vec<u8> {
        let body: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{v}", Value::from(k.as_str()))).collect();
        let text = edit(format!("{{{}}}", body.join(",")));
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        for (_, _, _, d) in &self.tensors {
            out.extend_from_slice(d);
        }
        out
    }
}

fn upload_dir(s: &TestServer, name: &str) -> serde_json::Map<String, Value> {
    let mut files = serde_json::Map::new();
    for e in std::fs::read_dir(hf_fixture(name)).unwrap() {
        let p = e.unwrap().path();
        let key = p.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(key, s.upload(&std::fs::read(&p).unwrap()).into());
    }
    files
}

#[test]
fn every_fault_of_a_folder_is_a_400_naming_the_file_before_anything_is_written() {
    let s = TestServer::start();
    let llama = upload_dir(&s, "llama");
    let sharded = upload_dir(&s, "llama-sharded");
    let weights = std::fs::read(hf_fixture("llama").join("model.safetensors")).unwrap();
    let shard = Shard::read(&weights);
    let entries = shard.header();
    let find = |name: &str| entries.iter().position(|(k, _)| k == name).unwrap();
    let k = find("model.layers.0.self_attn.k_proj.weight");

    let with = |key: &str, bytes: &[u8]| {
        let mut f = llama.clone();
        f.insert(key.to_owned(), s.upload(bytes).into());
        f
    };
    let without = |files: &serde_json::Map<String, Value>, key: &str| {
        let mut f = files.clone();
        f.remove(key);
        f
    };
    let header_edit = |edit: &dyn Fn(&mut Entries)| {
        let mut e = entries.clone();
        edit(&mut e);
        with("model.safetensors", &shard.write(&e, |t| t))
    };
    let missing_tensor = {
        let mut fewer = Shard { tensors: shard.tensors.clone() };
        fewer.tensors.retain(|t| t.0 != "model.layers.1.mlp.down_proj.weight");
        let e = fewer.header();
        with("model.safetensors", &fewer.write(&e, |t| t))
    };
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(hf_fixture("llama").join("config.json")).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("architectures");
    let no_arch = with("config.json", config.to_string().as_bytes());
    let falcon = with("config.json", br#"{"architectures": ["FalconForCausalLM"], "vocab_size": 100}"#);

    let cases: Vec<(&str, serde_json::Map<String, Value>, &[&str])> = vec![
        ("no config.json", without(&llama, "config.json"), &["config.json"]),
        ("config.json not JSON", with("config.json", b"{\"architectures\": ["), &["config.json"]),
        ("config.json without architectures", no_arch, &["config.json", "architectures"]),
        ("unsupported architecture", falcon, &["FalconForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM"]),
        (
            "a shard the index lists is missing",
            without(&sharded, "model-00002-of-00002.safetensors"),
            &["model-00002-of-00002.safetensors"],
        ),
        ("a tensor is missing", missing_tensor, &["model.layers.1.mlp.down_proj.weight", "missing"]),
        (
            "a shape disagrees with config.json",
            header_edit(&|e| {
                let shape = e[k].1["shape"].as_array().unwrap().clone();
                e[k].1["shape"] = json!([shape[1], shape[0]]);
            }),
            &["k_proj"],
        ),
        (
            "data past the end of the file",
            header_edit(&|e| {
                let last = e.len() - 1;
                let end = e[last].1["data_offsets"][1].as_u64().unwrap();
                e[last].1["data_offsets"][1] = json!(end + 2);
                e[last].1["shape"] = json!([e[last].1["shape"][0].as_u64().unwrap() + 1]);
            }),
            &["model.safetensors"],
        ),
        (
            "overlapping tensors",
            header_edit(&|e| {
                let first = e[0].1["data_offsets"].clone();
                e[1].1["data_offsets"] = json!([first[0], first[1]]);
                e[1].1["shape"] = e[0].1["shape"].clone();
            }),
            &["model.safetensors"],
        ),
        ("an unknown dtype", header_edit(&|e| e[k].1["dtype"] = json!("Q9")), &["model.safetensors", "Q9"]),
        (
            "a duplicate tensor name",
            with(
                "model.safetensors",
                &shard.write(&entries, |t| {
                    let dup = format!("{}:{}", Value::from(entries[0].0.as_str()), entries[0].1);
                    t.replacen('{', &format!("{{{dup},"), 1)
                }),
            ),
            &["model.safetensors"],
        ),
        ("tokenizer.json not JSON", with("tokenizer.json", b"[1, 2"), &["tokenizer.json"]),
    ];
    let before = s.files();
    for (what, files, names) in cases {
        let r = s.post("/api/create", &json!({"model": "bad", "files": files, "quantize": "q8_0"}));
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        let e = r.error();
        eprintln!("{what}: {e}");
        for n in names {
            assert!(e.contains(n), "{what}: the error does not name {n:?}: {e}");
        }
        assert_eq!(s.files(), before, "{what}: the store changed");
    }
    // The good folder still converts. The uploads stay unreferenced (the model holds the
    // converted GGUF), as in Ollama, until the start-up prune.
    s.create_ok(&json!({"model": "good", "files": llama}));
    let (ok, out) = s.fsck_allowing_orphans();
    assert!(ok, "{out}");
}
