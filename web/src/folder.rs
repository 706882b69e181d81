//! A Hugging Face model folder chosen in the browser: its `files` keys, which of its files a
//! create sends (the CLI's choice, Ollama's `filesForModel`), and what is wrong with it — told
//! before anything is uploaded. Pure: the page reads `config.json` and the shard index and hands
//! their bytes here; tested natively.

use std::collections::BTreeSet;

/// The shard index a sharded checkpoint carries.
pub const INDEX: &str = "model.safetensors.index.json";

/// The `files` key of a file picked with its folder: its `webkitRelativePath` without the
/// folder's own name (`model/sub/a.json` → `sub/a.json`), `/`-separated.
#[must_use]
pub fn key_of(relative_path: &str) -> String {
    let path = relative_path.replace('\\', "/");
    match path.split_once('/') {
        Some((_, rest)) if !rest.is_empty() => rest.to_owned(),
        _ => path,
    }
}

/// How deep a key sits: 0 in the folder itself, 1 in a subfolder of it.
fn depth(key: &str) -> usize {
    key.matches('/').count()
}

/// The key's file name.
fn base(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Keys named `prefix…suffix`, at the top or also one folder down.
fn matching<'k>(keys: &[&'k str], prefix: &str, suffix: &str, nested: bool) -> Vec<&'k str> {
    keys.iter()
        .copied()
        .filter(|k| depth(k) == 0 || (nested && depth(k) == 1))
        .filter(|k| base(k).starts_with(prefix) && base(k).ends_with(suffix))
        .collect()
}

/// The keys a create sends, sorted, as the CLI picks them from a folder: the first weights group
/// that matches (here it must be safetensors), every `*.json`, `chat_template.jinja` and the
/// SentencePiece `tokenizer.model`; other files (READMEs, `original/*.pth`) stay behind.
///
/// # Errors
/// The folder has no safetensors weights; what it has instead, and what to do.
pub fn pick<'k>(keys: &[&'k str]) -> Result<Vec<&'k str>, String> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let groups: [(&str, &str, bool); 6] = [
        ("model", ".safetensors", true),
        ("consolidated", ".safetensors", false),
        ("pytorch_model", ".bin", false),
        ("consolidated", ".pth", false),
        ("", ".gguf", false),
        ("", ".bin", false),
    ];
    let weights =
        groups.iter().map(|&(p, s, n)| matching(&sorted, p, s, n)).find(|g| !g.is_empty()).unwrap_or_default();
    match weights.first() {
        None => return Err("no .safetensors weights in this folder".into()),
        Some(w) if w.ends_with(".gguf") => {
            return Err(format!("this folder holds a GGUF file ({w}): choose it as the GGUF file instead"));
        }
        Some(w) if !w.ends_with(".safetensors") => {
            return Err(format!(
                "no .safetensors weights in this folder, only PyTorch weights ({w}): convert them to \
                 safetensors, or download the model's safetensors version"
            ));
        }
        Some(_) => {}
    }
    let mut out = weights;
    out.extend(matching(&sorted, "", ".json", true));
    out.extend(matching(&sorted, "chat_template.jinja", "chat_template.jinja", false));
    out.extend(matching(&sorted, "tokenizer.model", "tokenizer.model", true).into_iter().take(1));
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The shard files `model.safetensors.index.json` lists (its `weight_map` values).
///
/// # Errors
/// The index is not JSON or has no `weight_map` object of file names.
pub fn index_shards(index: &[u8]) -> Result<BTreeSet<String>, String> {
    let v: serde_json::Value = serde_json::from_slice(index).map_err(|e| format!("{INDEX}: {e}"))?;
    let map = v.get("weight_map").and_then(serde_json::Value::as_object);
    let map = map.ok_or_else(|| format!("{INDEX}: no weight_map"))?;
    map.values()
        .map(|f| f.as_str().map(str::to_owned).ok_or_else(|| format!("{INDEX}: weight_map values must be file names")))
        .collect()
}

/// Checks `config.json`: JSON, with an `architectures[0]` kiln imports.
///
/// # Errors
/// What is wrong, naming the field, or the architecture with the supported ones.
pub fn check_config(bytes: &[u8]) -> Result<(), String> {
    kiln_core::hf::config::parse(bytes).map(|_| ()).map_err(|e| e.to_string())
}

/// Everything missing from or wrong in the picked files, before any upload: no `config.json`,
/// no tokenizer, shards the index lists but the folder lacks, a config kiln cannot import.
/// `config` and `index` are those files' bytes where the folder has them.
#[must_use]
pub fn problems(picked: &[&str], config: Option<&[u8]>, index: Option<&[u8]>) -> Vec<String> {
    let mut out = Vec::new();
    match config {
        None => out.push("no config.json".to_owned()),
        Some(bytes) => out.extend(check_config(bytes).err()),
    }
    if !picked.iter().any(|k| matches!(*k, "tokenizer.json" | "tokenizer.model")) {
        out.push("no tokenizer (tokenizer.json or tokenizer.model)".to_owned());
    }
    if let Some(index) = index {
        match index_shards(index) {
            Ok(shards) => {
                let missing: Vec<&str> = shards.iter().map(String::as_str).filter(|s| !picked.contains(s)).collect();
                if !missing.is_empty() {
                    out.push(format!("missing {} (listed in {INDEX})", missing.join(", ")));
                }
            }
            Err(e) => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN: &[u8] = br#"{"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64}"#;

    #[test]
    fn keys_drop_the_folder_name() {
        assert_eq!(key_of("model/config.json"), "config.json");
        assert_eq!(key_of("model/sub/a.json"), "sub/a.json");
        assert_eq!(key_of("config.json"), "config.json");
        assert_eq!(key_of("model\\tokenizer.json"), "tokenizer.json");
    }

    #[test]
    fn pick_sends_the_weights_and_the_small_files_only() {
        let keys = [
            "README.md",
            "config.json",
            "model-00002-of-00002.safetensors",
            "model-00001-of-00002.safetensors",
            INDEX,
            "tokenizer.json",
            "original/consolidated.00.pth",
            "original/params.json",
            "deep/er/x.json",
            "chat_template.jinja",
            ".gitattributes",
        ];
        assert_eq!(
            pick(&keys).unwrap(),
            [
                "chat_template.jinja",
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                INDEX,
                "original/params.json",
                "tokenizer.json",
            ]
        );
    }

    #[test]
    fn pick_refuses_folders_without_safetensors() {
        let e = pick(&["config.json", "pytorch_model.bin", "tokenizer.json"]).unwrap_err();
        assert!(e.contains("pytorch_model.bin") && e.contains("convert"), "{e}");
        assert!(pick(&["config.json", "m.gguf"]).unwrap_err().contains("GGUF file"));
        assert_eq!(pick(&["config.json"]).unwrap_err(), "no .safetensors weights in this folder");
        assert_eq!(pick(&["consolidated.safetensors"]).unwrap(), ["consolidated.safetensors"]);
    }

    #[test]
    fn a_complete_folder_has_no_problems() {
        let picked = ["config.json", "model.safetensors", "tokenizer.json"];
        assert_eq!(problems(&picked, Some(QWEN), None), Vec::<String>::new());
        let picked = ["config.json", "model.safetensors", "tokenizer.model"];
        assert!(problems(&picked, Some(QWEN), None).is_empty());
    }

    #[test]
    fn problems_name_what_is_missing() {
        let p = problems(&["model.safetensors"], None, None);
        assert_eq!(p, ["no config.json", "no tokenizer (tokenizer.json or tokenizer.model)"]);
        let index = br#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}"#;
        let picked = ["config.json", "model-00001-of-00002.safetensors", INDEX, "tokenizer.json"];
        assert_eq!(
            problems(&picked, Some(QWEN), Some(index)),
            [format!("missing model-00002-of-00002.safetensors (listed in {INDEX})")]
        );
        assert!(problems(&picked, Some(QWEN), Some(b"{}"))[0].contains("weight_map"));
    }

    #[test]
    fn config_names_the_architecture_and_the_supported_ones() {
        assert_eq!(check_config(QWEN), Ok(()));
        let e = check_config(br#"{"architectures": ["FalconForCausalLM"]}"#).unwrap_err();
        assert!(e.contains("FalconForCausalLM") && e.contains("LlamaForCausalLM, MistralForCausalLM"), "{e}");
        assert!(check_config(b"{}").unwrap_err().contains("architectures"));
        assert!(check_config(b"not json").unwrap_err().starts_with("config.json: "));
    }
}
