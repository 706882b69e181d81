//! The planner's and `config.json` reader's refusals, each naming the file, tensor or field, and
//! the part list rules, on small synthetic models.

use kiln_core::ggml_type::GgmlType;
use kiln_core::hf::arch::SUPPORTED;
use kiln_core::hf::config::{self, HfConfig};
use kiln_core::hf::plan::{self, Conversion, OutType, PlanError, Segment};
use kiln_core::hf::safetensors::{Dtype, Header, StTensor};
use kiln_core::hf::vocab::Vocab;

/// A header of `tensors` laid out back to back from offset 100.
fn header(tensors: &[(&str, Dtype, Vec<u64>)]) -> Header {
    let mut at = 100;
    let mut v: Vec<StTensor> = tensors
        .iter()
        .map(|(n, d, s)| {
            let bytes = d.bytes_for(s.iter().product()).expect("size");
            let t = StTensor { name: (*n).to_owned(), dtype: *d, shape: s.clone(), start: at, end: at + bytes };
            at += bytes;
            t
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Header { tensors: v, metadata: Vec::new(), data_start: 100 }
}

const LLAMA: &str = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":16,
    "num_attention_heads":2,"num_key_value_heads":1,"num_hidden_layers":1,"vocab_size":10,
    "tie_word_embeddings":false}"#;

/// A complete one-layer llama (hidden 8, 2 heads of 4, 1 kv head, ff 16, vocab 10).
fn llama_tensors() -> Vec<(&'static str, Dtype, Vec<u64>)> {
    let b = Dtype::BF16;
    vec![
        ("model.embed_tokens.weight", b, vec![10, 8]),
        ("lm_head.weight", b, vec![10, 8]),
        ("model.norm.weight", b, vec![8]),
        ("model.layers.0.input_layernorm.weight", b, vec![8]),
        ("model.layers.0.post_attention_layernorm.weight", b, vec![8]),
        ("model.layers.0.self_attn.q_proj.weight", b, vec![8, 8]),
        ("model.layers.0.self_attn.k_proj.weight", b, vec![4, 8]),
        ("model.layers.0.self_attn.v_proj.weight", b, vec![4, 8]),
        ("model.layers.0.self_attn.o_proj.weight", b, vec![8, 8]),
        ("model.layers.0.mlp.gate_proj.weight", b, vec![16, 8]),
        ("model.layers.0.mlp.up_proj.weight", b, vec![16, 8]),
        ("model.layers.0.mlp.down_proj.weight", b, vec![8, 16]),
        ("model.layers.0.self_attn.rotary_emb.inv_freq", Dtype::F32, vec![2]),
    ]
}

fn run(cfg: &str, tensors: &[(&str, Dtype, Vec<u64>)], vocab: &Vocab) -> Result<Conversion, PlanError> {
    let cfg: HfConfig = config::parse(cfg.as_bytes()).expect("config");
    let h = header(tensors);
    plan::plan(&cfg, &[("model.safetensors", &h)], vocab, OutType::Auto, "Model")
}

fn plan_err(cfg: &str, tensors: &[(&str, Dtype, Vec<u64>)]) -> String {
    run(cfg, tensors, &Vocab::default()).expect_err("must be refused").to_string()
}

#[test]
fn synthetic_llama_plans() {
    let c = run(LLAMA, &llama_tensors(), &Vocab::default()).expect("plans");
    let names: Vec<&str> = c.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[0], "output.weight");
    assert!(!names.iter().any(|n| n.contains("rotary")), "inv_freq is dropped: {names:?}");
    let q = c.tensors.iter().find(|t| t.name == "blk.0.attn_q.weight").expect("q");
    assert_eq!((q.ty, q.dims.as_slice()), (GgmlType::BF16, &[8, 8][..]));
    let q0 = header(&llama_tensors()).get("model.layers.0.self_attn.q_proj.weight").expect("q").start;
    // 2 heads of 4 rows: output rows come from source rows 0,2,1,3, 4,6,5,7.
    let rows: Vec<u64> = q
        .segments
        .iter()
        .map(|s| match s {
            Segment::Source { offset, elems: 8, .. } => (offset - q0) / 16,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(rows, [0, 2, 1, 3, 4, 6, 5, 7]);
    // 760 parameters: Python prints round(0.76) = 1 digit, so one decimal.
    let label = c.kvs.iter().find(|(k, _)| k == "general.size_label").map(|(_, v)| v.as_str());
    assert_eq!(label, Some(Some("0.8K")));
}

#[test]
fn missing_tensor() {
    let t: Vec<_> = llama_tensors().into_iter().filter(|(n, ..)| *n != "model.layers.0.mlp.down_proj.weight").collect();
    let e = plan_err(LLAMA, &t);
    assert!(e.contains("model.layers.0.mlp.down_proj.weight") && e.contains("missing"), "{e}");
    let t: Vec<_> = llama_tensors().into_iter().filter(|(n, ..)| *n != "lm_head.weight").collect();
    let e = plan_err(LLAMA, &t);
    assert!(e.contains("lm_head.weight") && e.contains("tie_word_embeddings"), "{e}");
    // Tied: no lm_head, no output.
    let tied = LLAMA.replace("\"tie_word_embeddings\":false", "\"tie_word_embeddings\":true");
    let c = run(&tied, &t, &Vocab::default()).expect("tied plans");
    assert!(!c.tensors.iter().any(|t| t.name == "output.weight"));
}

#[test]
fn shape_disagrees_with_config() {
    let mut t = llama_tensors();
    t[6].2 = vec![8, 8];
    let e = plan_err(LLAMA, &t);
    assert!(
        e.contains("model.safetensors")
            && e.contains("model.layers.0.self_attn.k_proj.weight")
            && e.contains("[8, 8]")
            && e.contains("[4, 8]")
            && e.contains("num_key_value_heads"),
        "{e}"
    );
}

#[test]
fn unmapped_name() {
    let mut t = llama_tensors();
    t.push(("model.layers.0.mystery.weight", Dtype::BF16, vec![8]));
    let e = plan_err(LLAMA, &t);
    assert!(e.contains("model.layers.0.mystery.weight") && e.contains("LlamaForCausalLM"), "{e}");
    let mut t = llama_tensors();
    t.push(("model.layers.1.input_layernorm.weight", Dtype::BF16, vec![8]));
    let e = plan_err(LLAMA, &t);
    assert!(e.contains("layer 1") && e.contains("num_hidden_layers"), "{e}");
}

#[test]
fn unsupported_dtype() {
    let mut t = llama_tensors();
    t[2].1 = Dtype::I8;
    let e = plan_err(LLAMA, &t);
    assert!(e.contains("model.norm.weight") && e.contains("I8") && e.contains("F32, F16 and BF16"), "{e}");
}

#[test]
fn auto_outtype() {
    let f16: Vec<_> = llama_tensors().into_iter().map(|(n, _, s)| (n, Dtype::F16, s)).collect();
    let c = run(LLAMA, &f16, &Vocab::default()).expect("plans");
    assert!(c.kvs.iter().any(|(k, v)| k == "general.file_type" && v.as_u64() == Some(1)));
    let f32s: Vec<_> = llama_tensors().into_iter().map(|(n, _, s)| (n, Dtype::F32, s)).collect();
    let c = run(LLAMA, &f32s, &Vocab::default()).expect("plans");
    assert!(c.kvs.iter().any(|(k, v)| k == "general.file_type" && v.as_u64() == Some(1)));
    assert!(c.tensors.iter().all(|t| t.ty == GgmlType::F32 || t.ty == GgmlType::F16));
}

#[test]
fn gemma3_cuts_the_embedding_to_the_vocabulary() {
    let cfg = r#"{"architectures":["Gemma3ForCausalLM"],"hidden_size":8,"intermediate_size":16,
        "num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"num_hidden_layers":1,"vocab_size":10}"#;
    let b = Dtype::BF16;
    let t = vec![
        ("model.embed_tokens.weight", b, vec![10, 8]),
        ("model.norm.weight", b, vec![8]),
        ("model.layers.0.input_layernorm.weight", b, vec![8]),
        ("model.layers.0.post_attention_layernorm.weight", b, vec![8]),
        ("model.layers.0.pre_feedforward_layernorm.weight", b, vec![8]),
        ("model.layers.0.post_feedforward_layernorm.weight", b, vec![8]),
        ("model.layers.0.self_attn.q_proj.weight", b, vec![8, 8]),
        ("model.layers.0.self_attn.k_proj.weight", b, vec![4, 8]),
        ("model.layers.0.self_attn.v_proj.weight", b, vec![4, 8]),
        ("model.layers.0.self_attn.o_proj.weight", b, vec![8, 8]),
        ("model.layers.0.self_attn.q_norm.weight", b, vec![4]),
        ("model.layers.0.self_attn.k_norm.weight", b, vec![4]),
        ("model.layers.0.mlp.gate_proj.weight", b, vec![16, 8]),
        ("model.layers.0.mlp.up_proj.weight", b, vec![16, 8]),
        ("model.layers.0.mlp.down_proj.weight", b, vec![8, 16]),
    ];
    let vocab = Vocab { n_tokens: 7, ..Vocab::default() };
    let c = run(cfg, &t, &vocab).expect("plans");
    let e = c.tensors.iter().find(|t| t.name == "token_embd.weight").expect("embd");
    assert_eq!(e.dims, [8, 7]);
    assert!(matches!(e.segments.as_slice(), [Segment::Source { elems: 56, .. }]));
    let norms = c.tensors.iter().filter(|t| t.name.ends_with("norm.weight"));
    assert!(norms.clone().count() == 7 && norms.into_iter().all(|t| t.op == plan::Op::AddOne && t.ty == GgmlType::F32));
    let q = c.tensors.iter().find(|t| t.name == "blk.0.attn_q.weight").expect("q");
    assert_eq!(q.segments.len(), 1, "gemma3 is not permuted");
}

#[test]
fn shard_names() {
    let files =
        ["config.json", "model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors", "x.safetensors"];
    assert_eq!(
        plan::shard_names(&files, None).expect("glob"),
        ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    );
    let index = br#"{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}"#;
    assert_eq!(
        plan::shard_names(&files, Some(index)).expect("index"),
        ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    );
    let index = br#"{"weight_map":{"a":"model-00003-of-00003.safetensors"}}"#;
    let e = plan::shard_names(&files, Some(index)).expect_err("absent").to_string();
    assert!(e.contains("model-00003-of-00003.safetensors"), "{e}");
    let e = plan::shard_names(&["config.json"], None).expect_err("none").to_string();
    assert!(e.contains("safetensors"), "{e}");
}

#[test]
fn config_errors() {
    let e = config::parse(br#"{"architectures":["BertModel"]}"#).expect_err("unsupported").to_string();
    assert!(e.contains("config.json") && e.contains("BertModel"), "{e}");
    assert!(SUPPORTED.iter().all(|c| e.contains(c)), "{e}");
    let e = config::parse(br#"{"hidden_size":8}"#).expect_err("no class").to_string();
    assert!(e.contains("config.json") && e.contains("architectures"), "{e}");
    let e = config::parse(b"nope").expect_err("not json").to_string();
    assert!(e.contains("config.json"), "{e}");
    let e = config::parse(br#"{"architectures":["LlamaForCausalLM"],"hidden_size":"big"}"#)
        .expect_err("mistyped")
        .to_string();
    assert!(e.contains("config.json") && e.contains("hidden_size") && e.contains("integer"), "{e}");
    // Class defaults: LlamaConfig's head_dim and num_key_value_heads.
    let c = config::parse(br#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4}"#)
        .expect("defaults");
    assert_eq!((c.head_dim, c.n_head_kv, c.block_count, c.vocab_size), (16, 4, 32, 32000));
    assert_eq!(c.uint("head_dim").expect("uint"), Some(16));
    // text_config is merged into the top level.
    let c =
        config::parse(br#"{"architectures":["Qwen3ForCausalLM"],"text_config":{"hidden_size":32}}"#).expect("merged");
    assert_eq!((c.n_embd, c.head_dim), (32, 128));
}

#[test]
fn index_must_match_the_shards() {
    let a = header(&[("a", Dtype::F32, vec![1])]);
    let b = header(&[("b", Dtype::F32, vec![1])]);
    let shards = [("model-1.safetensors", &a), ("model-2.safetensors", &b)];
    plan::check_index(br#"{"weight_map":{"a":"model-1.safetensors","b":"model-2.safetensors"}}"#, &shards)
        .expect("consistent");
    let e = plan::check_index(br#"{"weight_map":{"a":"model-2.safetensors","b":"model-2.safetensors"}}"#, &shards)
        .expect_err("wrong shard")
        .to_string();
    assert!(e.contains("\"a\"") && e.contains("model-2.safetensors"), "{e}");
    let e =
        plan::check_index(br#"{"weight_map":{"a":"model-1.safetensors"}}"#, &shards).expect_err("unlisted").to_string();
    assert!(e.contains("\"b\"") && e.contains("not listed"), "{e}");
}

#[test]
fn language_model_prefix_is_dropped() {
    let t: Vec<_> = llama_tensors()
        .into_iter()
        .map(|(n, d, s)| {
            (
                if n.starts_with("model.") { n.replacen("model.", "language_model.model.", 1) } else { n.to_owned() },
                d,
                s,
            )
        })
        .collect();
    let refs: Vec<(&str, Dtype, Vec<u64>)> = t.iter().map(|(n, d, s)| (n.as_str(), *d, s.clone())).collect();
    let c = run(LLAMA, &refs, &Vocab::default()).expect("plans");
    assert!(c.tensors.iter().any(|t| t.name == "token_embd.weight"));
}
