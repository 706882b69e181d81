//! An uploaded Hugging Face directory → a [`Converted`] GGUF, checked whole before anything is
//! written: the small files are read from the store (bounded), every shard's header is read and
//! checked, the tokenizer and the plan come from `kiln_core::hf`. Only the shards' headers are
//! read here; their data is read once, later, by whoever reads the [`Converted`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;

use kiln_core::Digest;
use kiln_core::hf::plan::OutType;
use kiln_core::hf::{HfError, TextFiles, config, plan, safetensors, vocab};

use super::pre;
use super::source::Converted;
use crate::store::Store;

/// The most bytes of one small file (`tokenizer.json` of large vocabularies is ~30 MB).
pub const MAX_TEXT_FILE: u64 = 64 << 20;

/// Why an uploaded directory cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The directory breaks a rule `kiln_core::hf` checks; the message names the file.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// No `config.json` among the files.
    #[error("config.json: missing: a Hugging Face import needs the folder's config.json")]
    NoConfig,
    /// A file named in `files` that is not in the store.
    #[error("{file}: blob {digest} not found: upload it first")]
    BlobMissing {
        /// Its name in the directory.
        file: String,
        /// The digest the request gave.
        digest: Digest,
    },
    /// A small file over [`MAX_TEXT_FILE`].
    #[error("{file}: {size} bytes is more than the {MAX_TEXT_FILE} kiln reads for this file")]
    TooLarge {
        /// Its name.
        file: String,
        /// Its size.
        size: u64,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The directory's files by name (only the directory's top level: subfolders such as
/// `original/` hold other formats the reference ignores).
fn top_level(files: &[(String, Digest)]) -> BTreeMap<&str, &Digest> {
    files.iter().filter(|(k, _)| !k.contains('/')).map(|(k, d)| (k.as_str(), d)).collect()
}

/// Reads a small file of the directory, if the request has it.
fn small(store: &Store, files: &BTreeMap<&str, &Digest>, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
    let Some(d) = files.get(name) else { return Ok(None) };
    if !store.has_blob(d) {
        return Err(ImportError::BlobMissing { file: name.to_owned(), digest: (*d).clone() });
    }
    let size = store.blob_size(d)?;
    if size > MAX_TEXT_FILE {
        return Err(ImportError::TooLarge { file: name.to_owned(), size });
    }
    Ok(Some(std::fs::read(store.blob_path(d))?))
}

/// Reads and checks one shard's header.
fn shard_header(store: &Store, name: &str, d: &Digest) -> Result<(File, safetensors::Header), ImportError> {
    if !store.has_blob(d) {
        return Err(ImportError::BlobMissing { file: name.to_owned(), digest: d.clone() });
    }
    let shard = |e: safetensors::SafetensorsError| ImportError::Hf(e.in_file(name).into());
    let mut f = File::open(store.blob_path(d))?;
    let len = f.metadata()?.len();
    let mut prefix = [0u8; 8];
    if len >= 8 {
        f.read_exact(&mut prefix)?;
    }
    let n = safetensors::header_len(prefix, len).map_err(shard)?;
    let mut json = vec![0u8; usize::try_from(n).map_err(std::io::Error::other)?];
    f.read_exact(&mut json)?;
    let header = safetensors::parse(&json, len).map_err(shard)?;
    Ok((f, header))
}

/// Plans the conversion of the uploaded directory `files` to `out`, its `general.name` being
/// `name`.
///
/// # Errors
/// [`ImportError`]: every fault of the directory, before anything is written.
pub fn prepare(store: &Store, files: &[(String, Digest)], out: OutType, name: &str) -> Result<Converted, ImportError> {
    let dir = top_level(files);
    let texts: BTreeMap<&str, Vec<u8>> = TextFiles::NAMES
        .iter()
        .filter_map(|n| small(store, &dir, n).transpose().map(|r| r.map(|b| (*n, b))))
        .collect::<Result<_, _>>()?;
    let get = |n: &str| texts.get(n).map(Vec::as_slice);
    let text = TextFiles {
        config: get("config.json").ok_or(ImportError::NoConfig)?,
        tokenizer_json: get("tokenizer.json"),
        tokenizer_config: get("tokenizer_config.json"),
        tokenizer_model: get("tokenizer.model"),
        generation_config: get("generation_config.json"),
        added_tokens: get("added_tokens.json"),
        special_tokens_map: get("special_tokens_map.json"),
        chat_template_jinja: get("chat_template.jinja"),
        chat_template_json: get("chat_template.json"),
    };
    let cfg = config::parse(text.config).map_err(HfError::from)?;
    let mut detect = |json: &[u8]| pre::detect(json);
    let vocab = vocab::vocab(&text, cfg.arch.gguf_name(), &cfg.class, Some(cfg.vocab_size), &mut detect)
        .map_err(HfError::from)?;
    let index = small(store, &dir, "model.safetensors.index.json")?;
    let names: Vec<&str> = dir.keys().copied().collect();
    let shard_names = plan::shard_names(&names, index.as_deref()).map_err(HfError::from)?;
    let mut opened = Vec::with_capacity(shard_names.len());
    let mut headers = Vec::with_capacity(shard_names.len());
    for n in &shard_names {
        let d = dir.get(n.as_str()).ok_or_else(|| HfError::from(plan::PlanError::ShardMissing(n.clone())))?;
        let (f, h) = shard_header(store, n, d)?;
        opened.push(f);
        headers.push((n.as_str(), h));
    }
    let shards: Vec<(&str, &safetensors::Header)> = headers.iter().map(|(n, h)| (*n, h)).collect();
    if let Some(index) = &index {
        plan::check_index(index, &shards).map_err(HfError::from)?;
    }
    let conv = plan::plan(&cfg, &shards, &vocab, out, name).map_err(HfError::from)?;
    Ok(Converted::new(conv, opened)?)
}
