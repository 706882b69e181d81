//! Tokenizer files → the `tokenizer.*` and `general.sampling.*` keys, as llama.cpp's
//! `convert_hf_to_gguf.py` writes them (its model classes' `set_vocab`, gguf-py's `SpecialVocab`
//! and `LlamaHfVocab`, and `Metadata.load` for the sampling keys).
//!
//! Routes, per GGUF architecture, as the reference picks them:
//!
//! | arch | route |
//! |---|---|
//! | `llama` | SentencePiece (`tokenizer.model`), else Llama-2 style `tokenizer.json` (`LlamaHfVocab`), else BPE |
//! | `qwen2`, `qwen3` | SentencePiece, else BPE |
//! | `qwen3moe` | BPE |
//! | `gemma3` | SentencePiece + `add_space_prefix = false`, else BPE |
//! | `phi3` | BPE for a `GPT2Tokenizer`, else Phi-3's own SentencePiece reading |
//!
//! `tokenizer.json` can be ~30 MB (Gemma 3's); its vocabulary, merges and added tokens are read
//! into typed vectors, and only the small parts (post-processor, normalizer, decoder) as JSON
//! values.
//!
//! Known differences from the reference (none affects the fixtures):
//! - BPE route: the reference re-normalizes added tokens that are not `normalized` through
//!   transformers (`decode(encode(t))`); here they are taken as written, which is the same for
//!   the usual `<|…|>`-style and ASCII tokens under a ByteLevel decoder.
//! - BPE route: only `tokenizer.json`'s tokens; transformers can add special tokens named by
//!   `tokenizer_config.json` that `tokenizer.json` lacks. Slow tokenizers (`vocab.json` +
//!   `merges.txt`) are not read.
//! - Llama-2 style `tokenizer.json`: transformers' `all_special_tokens` is taken to be the
//!   special-token attributes and `additional_special_tokens` of `tokenizer_config.json`, with
//!   `special_tokens_map.json` over them.
//! - A list of named chat templates: `tokenizer.chat_templates` keeps the list's order (the
//!   reference writes a Python set, whose order is not fixed).
//! - Where the reference crashes on a malformed file (a missing key, a wrongly typed value),
//!   this module returns an error, or reads on where the value is not needed.

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use super::spm::{self, PieceType, SpmError};
use super::{Kv, TextFiles};
use crate::gguf::{Array, Value};

/// Largest vocabulary (tokens written) accepted; real ones are at most a few hundred thousand.
pub const MAX_VOCAB: u64 = 1 << 22;

/// GGUF token types (gguf-py's `TokenType`).
/// Tokens, scores and types of a SentencePiece vocabulary, by id.
type SpmTable = (Vec<Vec<u8>>, Vec<f32>, Vec<i32>);

mod tt {
    pub(super) const NORMAL: i32 = 1;
    pub(super) const UNKNOWN: i32 = 2;
    pub(super) const CONTROL: i32 = 3;
    pub(super) const USER_DEFINED: i32 = 4;
    pub(super) const UNUSED: i32 = 5;
    pub(super) const BYTE: i32 = 6;
}

/// Why a tokenizer file cannot be used. Every message names the file and the fault.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// A JSON file that does not parse, or not into the shape the reference reads.
    #[error("{file}: not JSON: {msg}")]
    NotJson {
        /// The file's name in the model directory.
        file: &'static str,
        /// The parser's message.
        msg: String,
    },
    /// A JSON file with a value the reference cannot use.
    #[error("{file}: {msg}")]
    Invalid {
        /// The file's name in the model directory.
        file: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// `tokenizer.model` is unreadable.
    #[error("tokenizer.model: {0}")]
    Model(#[from] SpmError),
    /// Neither `tokenizer.json` nor `tokenizer.model` (or not the one the route needs).
    #[error("no tokenizer: the directory needs {0}")]
    Missing(&'static str),
    /// The BPE pre-tokenizer of `tokenizer.json` is not in the reference's table.
    #[error(
        "tokenizer.json: the BPE pre-tokenizer is not recognised (check-text hash {0}); the reference converter does not know it either"
    )]
    UnknownPre(String),
    /// The tokenizer could not be run (to identify its pre-tokenizer).
    #[error("tokenizer.json: {0}")]
    Tokenizer(String),
    /// An architecture or tokenizer kind the converter does not handle.
    #[error("tokenizer: {0} is not supported")]
    Unsupported(String),
}

/// What the tokenizer files contribute to the GGUF.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    /// `general.sampling.*` keys from `generation_config.json`, in the reference's order.
    pub sampling: Vec<Kv>,
    /// `tokenizer.*` keys, in the reference's order.
    pub tokenizer: Vec<Kv>,
    /// Tokens written (`tokenizer.ggml.tokens`' length): gemma3 cuts its embedding rows to it.
    pub n_tokens: u64,
}

const TOKENIZER_JSON: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const CONFIG: &str = "config.json";
const ADDED_TOKENS: &str = "added_tokens.json";

/// The tokenizer keys of a model directory, as the reference's `set_vocab` for `arch` (the GGUF
/// architecture: `llama`, `qwen2`, `qwen3`, `qwen3moe`, `gemma3`, `phi3`) writes them, and the
/// sampling keys of its `generation_config.json`.
///
/// `hf_class` is config.json's `architectures[0]`; `vocab_size` the configuration's
/// `vocab_size` (with `text_config` merged). `pre` maps `tokenizer.json`'s bytes to the
/// `tokenizer.ggml.pre` name; it is called only on the BPE route.
///
/// # Errors
/// [`VocabError`] when a needed file is missing or malformed, the architecture is not
/// supported, or `pre` fails.
pub fn vocab(
    files: &TextFiles<'_>,
    arch: &str,
    hf_class: &str,
    vocab_size: Option<u64>,
    pre: &mut dyn FnMut(&[u8]) -> Result<String, VocabError>,
) -> Result<Vocab, VocabError> {
    if let Some(n) = vocab_size.filter(|&n| n > MAX_VOCAB) {
        return Err(VocabError::Invalid {
            file: CONFIG,
            msg: format!("vocab_size {n} is too large (at most {MAX_VOCAB})"),
        });
    }
    let sampling = sampling(files.generation_config)?;
    let tokenizer_config = match files.tokenizer_config {
        Some(b) => {
            let v = parse_json(TOKENIZER_CONFIG, b)?;
            if !v.is_object() {
                return Err(invalid(TOKENIZER_CONFIG, "not a JSON object"));
            }
            Some(v)
        }
        None => None,
    };
    let phi3_gpt2 = tokenizer_config.as_ref().and_then(|tc| get(tc, "tokenizer_class")).and_then(Json::as_str)
        == Some("GPT2Tokenizer");
    let sentencepiece = match arch {
        "llama" | "qwen2" | "qwen3" | "gemma3" => files.tokenizer_model.is_some(),
        "phi3" => !phi3_gpt2,
        _ => false,
    };
    let cx = Context::new(files, vocab_size, tokenizer_config, !sentencepiece)?;
    let mut out = Kvs::default();
    let n_tokens = match arch {
        "llama" => {
            if matches!(hf_class, "GlmasrModel") {
                return Err(VocabError::Unsupported(format!("the {hf_class} tokenizer")));
            }
            if let Some(tc) = &cx.tokenizer_config {
                if let Some(v) = get(tc, "add_prefix_space") {
                    let b =
                        v.as_bool().ok_or_else(|| invalid(TOKENIZER_CONFIG, "add_prefix_space is not a boolean"))?;
                    out.set("tokenizer.ggml.add_space_prefix", Value::Bool(b));
                }
                if get(tc, "tokenizer_class").and_then(Json::as_str) == Some("HybridDNATokenizer") {
                    return Err(VocabError::Unsupported("the HybridDNATokenizer".to_owned()));
                }
            }
            let n = if files.tokenizer_model.is_some() {
                cx.sentencepiece(&mut out)?
            } else if cx.is_llama_hf() {
                cx.llama_hf(&mut out)?
            } else {
                cx.gpt2(&mut out, pre)?
            };
            let hp_vocab = vocab_size.unwrap_or(32000);
            if hp_vocab == 32016 {
                // CodeLlama: its infill tokens (only `eot` has a GGUF key).
                let mut sv = cx.special_vocab(false, Some(&["prefix", "suffix", "middle", "eot"]), None)?;
                for (typ, id) in [("prefix", 32007), ("suffix", 32008), ("middle", 32009), ("eot", 32010)] {
                    sv.set_special_token(typ, &Json::from(id))?;
                }
                sv.add_to_gguf(&mut out);
            }
            if hp_vocab == 49152 {
                out.set("tokenizer.ggml.add_bos_token", Value::Bool(false));
            }
            n
        }
        "qwen2" | "qwen3" | "qwen3moe" => {
            if hf_class == "InternS1ForConditionalGeneration" {
                return Err(VocabError::Unsupported(format!("the {hf_class} tokenizer")));
            }
            if arch != "qwen3moe" && files.tokenizer_model.is_some() {
                cx.sentencepiece(&mut out)?
            } else {
                cx.gpt2(&mut out, pre)?
            }
        }
        "gemma3" => {
            if files.tokenizer_model.is_some() {
                let n = cx.sentencepiece(&mut out)?;
                out.set("tokenizer.ggml.add_space_prefix", Value::Bool(false));
                n
            } else {
                cx.gpt2(&mut out, pre)?
            }
        }
        "phi3" => {
            if phi3_gpt2 {
                cx.gpt2(&mut out, pre)?
            } else {
                cx.phi3(&mut out)?
            }
        }
        _ => return Err(VocabError::Unsupported(format!("the tokenizer of architecture {arch}"))),
    };
    Ok(Vocab { sampling, tokenizer: out.0, n_tokens })
}

// ---------------------------------------------------------------------------------------------
// Small helpers: Python's view of JSON values.

fn invalid(file: &'static str, msg: impl Into<String>) -> VocabError {
    VocabError::Invalid { file, msg: msg.into() }
}

/// A parse failure: "not JSON" for a syntax error or an early end, else the shape is wrong.
fn not_json(file: &'static str, e: &serde_json::Error) -> VocabError {
    match e.classify() {
        serde_json::error::Category::Data => invalid(file, format!("unexpected content: {e}")),
        _ => VocabError::NotJson { file, msg: format!("{e}") },
    }
}

/// `d.get(key)`, with JSON `null` as Python's `None`.
fn get<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    v.as_object().and_then(|m| m.get(key)).filter(|v| !v.is_null())
}

/// Python's truth value of a JSON value (`None` for a missing one).
fn truthy(v: Option<&Json>) -> bool {
    match v {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Json::String(s)) => !s.is_empty(),
        Some(Json::Array(a)) => !a.is_empty(),
        Some(Json::Object(o)) => !o.is_empty(),
    }
}

/// `x.get('SpecialToken', {}).get('id')` (or `Sequence`) of a template piece.
fn piece_id<'a>(piece: Option<&'a Json>, kind: &str) -> Option<&'a Json> {
    piece.and_then(|p| get(p, kind)).and_then(|s| get(s, "id"))
}

/// `a == b` for two optional values (`None == None`).
fn eq(a: Option<&Json>, b: Option<&Json>) -> bool {
    a == b
}

/// The reference's `does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// `<0xNN>` (a byte token, as `LlamaHfVocab` spots them).
fn is_byte_token(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 6 && b.starts_with(b"<0x") && b[5] == b'>' && b[3].is_ascii_hexdigit() && b[4].is_ascii_hexdigit()
}

fn parse_json(file: &'static str, bytes: &[u8]) -> Result<Json, VocabError> {
    serde_json::from_slice(bytes).map_err(|e| not_json(file, &e))
}

/// The metadata list, with gguf-py's semantics: setting a key again keeps its place.
#[derive(Default)]
struct Kvs(Vec<Kv>);

impl Kvs {
    fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.0.push((key.to_owned(), value));
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    fn set_str(&mut self, key: &str, s: &str) {
        self.set(key, Value::Str(s.as_bytes().to_vec()));
    }
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json, typed.

/// The parts of `tokenizer.json` the reference reads; `M` is [`ModelJson`], or [`ModelLite`]
/// on the SentencePiece routes, which never look at the vocabulary or merges.
#[derive(Deserialize, Default)]
struct TokenizerJson<M = ModelJson> {
    #[serde(default = "none")]
    model: Option<M>,
    #[serde(default)]
    added_tokens: Option<Vec<AddedToken>>,
    #[serde(default)]
    post_processor: Option<Json>,
    #[serde(default)]
    normalizer: Option<Json>,
    #[serde(default)]
    decoder: Option<Json>,
}

#[derive(Deserialize, Default)]
struct ModelJson {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    vocab: Option<VocabField>,
    #[serde(default)]
    merges: Option<Merges>,
    #[serde(default)]
    byte_fallback: Option<bool>,
    #[serde(default)]
    ignore_merges: Option<bool>,
}

/// `None`, for generic `#[serde(default)]` fields.
fn none<T>() -> Option<T> {
    None
}

/// `model` without its vocabulary and merges (skipped by the parser, not allocated).
#[derive(Deserialize, Default)]
struct ModelLite {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    byte_fallback: Option<bool>,
    #[serde(default)]
    ignore_merges: Option<bool>,
}

impl From<TokenizerJson<ModelLite>> for TokenizerJson {
    fn from(t: TokenizerJson<ModelLite>) -> Self {
        Self {
            model: t.model.map(|m| ModelJson {
                kind: m.kind,
                vocab: None,
                merges: None,
                byte_fallback: m.byte_fallback,
                ignore_merges: m.ignore_merges,
            }),
            added_tokens: t.added_tokens,
            post_processor: t.post_processor,
            normalizer: t.normalizer,
            decoder: t.decoder,
        }
    }
}

#[derive(Deserialize, Clone)]
struct AddedToken {
    id: u64,
    content: String,
    #[serde(default)]
    special: bool,
}

/// `model.vocab`: `{token: id}` for BPE/WordPiece/WordLevel, a list for Unigram (not read).
enum VocabField {
    Map(Vec<(String, u64)>),
    Other,
}

impl<'de> Deserialize<'de> for VocabField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VocabField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a vocabulary")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<VocabField, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0).min(1 << 20));
                while let Some((k, v)) = m.next_entry::<String, u64>()? {
                    out.push((k, v));
                }
                Ok(VocabField::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<VocabField, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(VocabField::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// `model.merges` as gguf-py writes them: `"a b"` strings, either as given or joined from
/// `["a", "b"]` pairs (spaces inside a part become U+0120).
struct Merges(Vec<Vec<u8>>);

/// One merge entry.
enum Merge {
    Str(String),
    Pair(Vec<String>),
}

impl<'de> Deserialize<'de> for Merge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Merge;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a merge (a string or a list of strings)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Merge, E> {
                Ok(Merge::Str(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Merge, E> {
                Ok(Merge::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Merge, A::Error> {
                let mut parts = Vec::with_capacity(2);
                while let Some(p) = s.next_element::<String>()? {
                    parts.push(p);
                }
                Ok(Merge::Pair(parts))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Merges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Merges;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of merges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Merges, A::Error> {
                let mut out: Vec<Vec<u8>> = Vec::with_capacity(s.size_hint().unwrap_or(0).min(1 << 20));
                let mut pairs = None;
                while let Some(m) = s.next_element::<Merge>()? {
                    let is_pair = matches!(m, Merge::Pair(_));
                    if *pairs.get_or_insert(is_pair) != is_pair {
                        return Err(de::Error::custom("merges mix strings and pairs"));
                    }
                    out.push(match m {
                        Merge::Str(s) => s.into_bytes(),
                        Merge::Pair(parts) => {
                            if out.is_empty() && parts.len() != 2 {
                                return Err(de::Error::custom("the first merge is not a pair"));
                            }
                            let mut joined = String::new();
                            for (i, p) in parts.iter().enumerate() {
                                if i > 0 {
                                    joined.push(' ');
                                }
                                joined.extend(p.chars().map(|c| if c == ' ' { '\u{120}' } else { c }));
                            }
                            joined.into_bytes()
                        }
                    });
                }
                Ok(Merges(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A JSON object read in file order (Python dicts keep it), values typed.
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(core::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, V>()? {
                    out.push(kv);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Vis(core::marker::PhantomData))
    }
}

/// A `tokenizer_config.json` `added_tokens_decoder` entry.
#[derive(Deserialize)]
struct AddedDecl {
    content: String,
    #[serde(default)]
    special: Option<Json>,
}

/// `{"added_tokens_decoder": {...}}`, read without the rest of the file.
#[derive(Deserialize)]
struct AddedDecoder {
    #[serde(default)]
    added_tokens_decoder: Option<Ordered<AddedDecl>>,
}

/// `int(s)` for an `added_tokens_decoder` key.
fn parse_id(file: &'static str, s: &str) -> Result<u64, VocabError> {
    let t = s.trim();
    t.strip_prefix('+')
        .unwrap_or(t)
        .parse::<u64>()
        .map_err(|_| invalid(file, format!("added token id {s:?} is not a non-negative integer")))
}

// ---------------------------------------------------------------------------------------------
// The routes.

/// `tokenizer.json`'s model vocabulary (token, id) and its added tokens.
type VocabParts<'a> = (&'a [(String, u64)], &'a [AddedToken]);

/// The parsed files every route shares.
struct Context<'a> {
    files: &'a TextFiles<'a>,
    vocab_size: Option<u64>,
    /// `tokenizer.json`, when present.
    tj: Option<TokenizerJson>,
    /// Whether `tokenizer.json` is a non-empty object (Python's `if tokenizer:`).
    tj_truthy: bool,
    /// `tokenizer_config.json`, when present (an object).
    tokenizer_config: Option<Json>,
    /// `config.json`.
    config: Json,
}

/// Whether a JSON text is `{}` (an empty object), without parsing it.
fn is_empty_object(bytes: &[u8]) -> bool {
    let t: Vec<u8> = bytes.iter().copied().filter(|b| !b.is_ascii_whitespace()).take(3).collect();
    t == b"{}"
}

impl<'a> Context<'a> {
    /// Parses the files; `tokenizer.json`'s vocabulary and merges only when `full`.
    fn new(
        files: &'a TextFiles<'a>,
        vocab_size: Option<u64>,
        tokenizer_config: Option<Json>,
        full: bool,
    ) -> Result<Self, VocabError> {
        let tj = match files.tokenizer_json {
            Some(b) if full => {
                Some(serde_json::from_slice::<TokenizerJson>(b).map_err(|e| not_json(TOKENIZER_JSON, &e))?)
            }
            Some(b) => Some(
                serde_json::from_slice::<TokenizerJson<ModelLite>>(b).map_err(|e| not_json(TOKENIZER_JSON, &e))?.into(),
            ),
            None => None,
        };
        let tj_truthy = files.tokenizer_json.is_some_and(|b| !is_empty_object(b));
        let config = parse_json(CONFIG, files.config)?;
        if !config.is_object() {
            return Err(invalid(CONFIG, "not a JSON object"));
        }
        Ok(Self { files, vocab_size, tj, tj_truthy, tokenizer_config, config })
    }

    fn model(&self) -> Option<&ModelJson> {
        self.tj.as_ref().and_then(|t| t.model.as_ref())
    }

    /// `LlamaHfVocab`'s check: a byte-fallback BPE with a `Sequence` decoder (Llama 2 style).
    /// Anything else (Llama 3 included) falls through to the BPE route, as in the reference.
    fn is_llama_hf(&self) -> bool {
        let Some(m) = self.model() else { return false };
        let bpe = m.kind.as_deref() == Some("BPE");
        let llama3 = bpe && m.ignore_merges.unwrap_or(false) && !m.byte_fallback.unwrap_or(true);
        let decoder =
            self.tj.as_ref().and_then(|t| t.decoder.as_ref()).and_then(|d| get(d, "type")).and_then(Json::as_str);
        !llama3 && bpe && m.byte_fallback.unwrap_or(false) && decoder == Some("Sequence")
    }

    /// The tokenizer's full vocabulary (`get_vocab()`): the model's, then added tokens over it.
    fn hf_vocab(&self) -> Result<VocabParts<'_>, VocabError> {
        let Some(m) = self.model() else {
            return Err(invalid(TOKENIZER_JSON, "no model"));
        };
        let Some(VocabField::Map(v)) = &m.vocab else {
            return Err(VocabError::Unsupported(format!(
                "a {} tokenizer.json without a token → id vocabulary",
                m.kind.as_deref().unwrap_or("typeless")
            )));
        };
        let added = self.tj.as_ref().and_then(|t| t.added_tokens.as_deref()).unwrap_or(&[]);
        Ok((v, added))
    }

    /// `get_vocab()`: text → id, the model's tokens with the added tokens over them.
    fn merged_vocab(&self) -> Result<BTreeMap<&str, u64>, VocabError> {
        let (v, added) = self.hf_vocab()?;
        let mut ids: BTreeMap<&str, u64> = v.iter().map(|(t, i)| (t.as_str(), *i)).collect();
        for a in added {
            ids.insert(&a.content, a.id);
        }
        Ok(ids)
    }

    /// id → text of `get_vocab()` for ids below `limit`; where two texts share an id, an added
    /// token wins, as it comes last in the dict the reference reverses.
    fn reverse_vocab<'v>(
        &'v self,
        ids: &BTreeMap<&'v str, u64>,
        limit: u64,
    ) -> Result<Vec<Option<&'v str>>, VocabError> {
        let (_, added) = self.hf_vocab()?;
        let len = usize::try_from(limit).map_err(|_| invalid(CONFIG, "vocab_size too large"))?;
        let mut rev = vec![None; len];
        let mut put = |t: &'v str, i: u64| -> Result<(), VocabError> {
            let slot = usize::try_from(i).ok().and_then(|i| rev.get_mut(i)).ok_or_else(|| {
                invalid(TOKENIZER_JSON, format!("token id {i} is not below the vocabulary size {limit}"))
            })?;
            *slot = Some(t);
            Ok(())
        };
        for (t, i) in ids {
            put(t, *i)?;
        }
        for a in added.iter().filter(|a| ids.get(a.content.as_str()) == Some(&a.id)) {
            put(&a.content, a.id)?;
        }
        Ok(rev)
    }

    /// `_set_vocab_gpt2`: BPE from `tokenizer.json`.
    fn gpt2(&self, out: &mut Kvs, pre: &mut dyn FnMut(&[u8]) -> Result<String, VocabError>) -> Result<u64, VocabError> {
        let Some(bytes) = self.files.tokenizer_json else {
            return Err(VocabError::Missing("tokenizer.json or tokenizer.model"));
        };
        let (_, added) = self.hf_vocab()?;
        let ids = self.merged_vocab()?;
        let vocab_size = self.vocab_size.unwrap_or(ids.len() as u64);
        if vocab_size > MAX_VOCAB {
            return Err(invalid(TOKENIZER_JSON, format!("{vocab_size} tokens is too many")));
        }
        let rev = self.reverse_vocab(&ids, vocab_size)?;
        let tokpre = pre(bytes)?;
        // get_added_vocab(): text → id; added_tokens_decoder: id → special.
        let added_text: BTreeSet<&str> = added.iter().map(|a| a.content.as_str()).collect();
        let special: BTreeMap<u64, bool> = added.iter().map(|a| (a.id, a.special)).collect();
        let special_of = |id: u64| special.get(&id).copied().unwrap_or(false);
        let mut tokens = Vec::with_capacity(rev.len());
        let mut types = Vec::with_capacity(rev.len());
        for (i, t) in rev.iter().enumerate() {
            match t {
                None => {
                    tokens.push(format!("[PAD{i}]").into_bytes());
                    types.push(tt::UNUSED);
                }
                Some(t) if added_text.contains(t) => {
                    if special_of(i as u64) || looks_special(t) {
                        tokens.push(t.as_bytes().to_vec());
                        types.push(tt::CONTROL);
                    } else {
                        tokens.push(t.replace('\u{2581}', " ").into_bytes());
                        types.push(tt::USER_DEFINED);
                    }
                }
                Some(t) => {
                    tokens.push(t.as_bytes().to_vec());
                    types.push(tt::NORMAL);
                }
            }
        }
        let n = tokens.len() as u64;
        out.set_str("tokenizer.ggml.model", "gpt2");
        out.set_str("tokenizer.ggml.pre", &tokpre);
        out.set("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens)));
        out.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
        self.special_vocab(true, None, None)?.add_to_gguf(out);
        Ok(n)
    }

    /// `_set_vocab_sentencepiece`: `tokenizer.model`, padded to `vocab_size`, with added-token
    /// overrides.
    fn sentencepiece(&self, out: &mut Kvs) -> Result<u64, VocabError> {
        let Some(model) = self.files.tokenizer_model else {
            return Err(VocabError::Missing("tokenizer.model"));
        };
        let pieces = spm::pieces(model)?;
        let vocab_size = match self.vocab_size {
            Some(n) if n > 0 => n,
            _ => pieces.len() as u64,
        };
        let n = usize::try_from(vocab_size).map_err(|_| invalid(CONFIG, "vocab_size too large"))?;
        let (mut tokens, mut scores, mut types) = self.spm_table(pieces, n)?;
        if let Some(b) = self.files.tokenizer_config {
            let d: AddedDecoder = serde_json::from_slice(b).map_err(|e| not_json(TOKENIZER_CONFIG, &e))?;
            for (key, decl) in d.added_tokens_decoder.map(|o| o.0).unwrap_or_default() {
                let id = parse_id(TOKENIZER_CONFIG, &key)?;
                let Some(id) = usize::try_from(id).ok().filter(|&i| i < n) else { continue };
                if truthy(decl.special.as_ref()) || looks_special(&decl.content) {
                    types[id] = tt::CONTROL;
                    tokens[id] = decl.content.into_bytes();
                } else {
                    types[id] = tt::USER_DEFINED;
                    tokens[id] = decl.content.replace('\u{2581}', " ").into_bytes();
                }
                scores[id] = -1000.0;
            }
        }
        self.write_spm(out, tokens, scores, types)
    }

    /// The SentencePiece token table both SentencePiece routes start from: `n` entries, the
    /// model's pieces first, `[PAD{id}]` (UNUSED, score −10000) after them, then the entries of
    /// `added_tokens.json` (USER_DEFINED, score −1000) where their id is below `n`.
    fn spm_table(&self, pieces: Vec<spm::Piece>, n: usize) -> Result<SpmTable, VocabError> {
        let mut tokens: Vec<Vec<u8>> = (0..n).map(|i| format!("[PAD{i}]").into_bytes()).collect();
        let mut scores = vec![-10000.0f32; n];
        let mut types = vec![tt::UNUSED; n];
        for (i, p) in pieces.into_iter().take(n).enumerate() {
            types[i] = match p.kind {
                PieceType::Unknown => tt::UNKNOWN,
                PieceType::Control => tt::CONTROL,
                PieceType::Unused => tt::UNUSED,
                PieceType::Byte => tt::BYTE,
                PieceType::Normal | PieceType::UserDefined => tt::NORMAL,
            };
            scores[i] = p.score;
            tokens[i] = p.piece.into_bytes();
        }
        if let Some(b) = self.files.added_tokens {
            let map: Ordered<i64> = serde_json::from_slice(b).map_err(|e| not_json(ADDED_TOKENS, &e))?;
            for (text, id) in map.0 {
                let id =
                    usize::try_from(id).map_err(|_| invalid(ADDED_TOKENS, format!("token id {id} is negative")))?;
                if id >= n {
                    continue;
                }
                tokens[id] = text.into_bytes();
                scores[id] = -1000.0;
                types[id] = tt::USER_DEFINED;
            }
        }
        Ok((tokens, scores, types))
    }

    /// Phi-3's own `set_vocab`: like [`Self::sentencepiece`] but overrides from
    /// `tokenizer_config.json` and `tokenizer.json` without the look-special rule, and no bound
    /// check (an out-of-range id fails, as the reference's list index does).
    fn phi3(&self, out: &mut Kvs) -> Result<u64, VocabError> {
        let Some(model) = self.files.tokenizer_model else {
            return Err(VocabError::Missing("tokenizer.model"));
        };
        let pieces = spm::pieces(model)?;
        let vocab_size = self.vocab_size.unwrap_or(pieces.len() as u64);
        let n = usize::try_from(vocab_size).map_err(|_| invalid(CONFIG, "vocab_size too large"))?;
        if pieces.len() > n {
            return Err(invalid(CONFIG, format!("vocab_size {n} is below tokenizer.model's {} pieces", pieces.len())));
        }
        let (mut tokens, mut scores, mut types) = self.spm_table(pieces, n)?;
        let mut set = |file: &'static str, id: u64, content: String, special: bool| -> Result<(), VocabError> {
            let i = usize::try_from(id)
                .ok()
                .filter(|&i| i < n)
                .ok_or_else(|| invalid(file, format!("added token id {id} is not below the vocabulary size {n}")))?;
            tokens[i] = content.into_bytes();
            scores[i] = -1000.0;
            types[i] = if special { tt::CONTROL } else { tt::USER_DEFINED };
            Ok(())
        };
        if let Some(b) = self.files.tokenizer_config {
            let d: AddedDecoder = serde_json::from_slice(b).map_err(|e| not_json(TOKENIZER_CONFIG, &e))?;
            for (key, decl) in d.added_tokens_decoder.map(|o| o.0).unwrap_or_default() {
                let id = parse_id(TOKENIZER_CONFIG, &key)?;
                set(TOKENIZER_CONFIG, id, decl.content, truthy(decl.special.as_ref()))?;
            }
        }
        if let Some(tj) = &self.tj {
            for a in tj.added_tokens.as_deref().unwrap_or(&[]) {
                set(TOKENIZER_JSON, a.id, a.content.clone(), a.special)?;
            }
        }
        self.write_spm(out, tokens, scores, types)
    }

    /// `_set_vocab_llama_hf`: gguf-py's `LlamaHfVocab` over a Llama-2 style `tokenizer.json`.
    fn llama_hf(&self, out: &mut Kvs) -> Result<u64, VocabError> {
        let (v, added) = self.hf_vocab()?;
        let base = v.len() as u64;
        if base > MAX_VOCAB {
            return Err(invalid(TOKENIZER_JSON, format!("{base} tokens is too many")));
        }
        let full = self.merged_vocab()?;
        let mut rev: BTreeMap<u64, &str> = full.iter().map(|(t, i)| (*i, *t)).collect();
        for a in added.iter().filter(|a| full.get(a.content.as_str()) == Some(&a.id)) {
            rev.insert(a.id, &a.content);
        }
        // all_special_tokens: tokenizer_config's (special_tokens_map.json over it) special
        // token attributes and additional_special_tokens.
        let mut specials: Vec<String> = Vec::new();
        let mut attrs = Map::new();
        if let Some(Json::Object(tc)) = &self.tokenizer_config {
            attrs.extend(tc.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(b) = self.files.special_tokens_map {
            let m = parse_json("special_tokens_map.json", b)?;
            if let Json::Object(m) = m {
                attrs.extend(m);
            }
        }
        let content = |v: &Json| -> Option<String> {
            match v {
                Json::String(s) => Some(s.clone()),
                Json::Object(_) => get(v, "content").and_then(Json::as_str).map(str::to_owned),
                _ => None,
            }
        };
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let Some(s) = attrs.get(key).and_then(content) {
                specials.push(s);
            }
        }
        if let Some(Json::Array(a)) = attrs.get("additional_special_tokens") {
            specials.extend(a.iter().filter_map(content));
        }
        let unk = attrs.get("unk_token").and_then(content).and_then(|u| full.get(u.as_str()).copied());
        let special_ids: BTreeSet<u64> =
            specials.iter().filter_map(|s| full.get(s.as_str()).copied().or(unk)).collect();
        let mut tokens = Vec::new();
        let mut types = Vec::new();
        for id in 0..base {
            let t = rev.remove(&id).ok_or_else(|| invalid(TOKENIZER_JSON, format!("no token has id {id}")))?;
            types.push(if is_byte_token(t) {
                tt::BYTE
            } else if special_ids.contains(&id) {
                tt::CONTROL
            } else {
                tt::NORMAL
            });
            tokens.push(t.as_bytes().to_vec());
        }
        // get_added_vocab() entries at or above the base size, in id order.
        let mut extra: Vec<(u64, &str)> =
            added.iter().filter(|a| a.id >= base).map(|a| (a.id, a.content.as_str())).collect();
        extra.sort_unstable();
        extra.dedup_by_key(|e| e.0);
        for (_, t) in extra {
            let special = specials.iter().any(|s| s == t);
            types.push(if special && full.get(t).is_some_and(|i| special_ids.contains(i)) {
                tt::CONTROL
            } else if special {
                tt::NORMAL
            } else {
                tt::USER_DEFINED
            });
            tokens.push(t.as_bytes().to_vec());
        }
        let scores = vec![-1000.0f32; tokens.len()];
        self.write_spm(out, tokens, scores, types)
    }

    /// Writes a `llama` (SentencePiece-style) vocabulary and its special tokens.
    fn write_spm(
        &self,
        out: &mut Kvs,
        tokens: Vec<Vec<u8>>,
        scores: Vec<f32>,
        types: Vec<i32>,
    ) -> Result<u64, VocabError> {
        let n = tokens.len() as u64;
        out.set_str("tokenizer.ggml.model", "llama");
        out.set_str("tokenizer.ggml.pre", "default");
        out.set("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens)));
        out.set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
        out.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
        self.special_vocab(false, None, Some(n))?.add_to_gguf(out);
        Ok(n)
    }

    /// gguf-py's `SpecialVocab(dir, load_merges, special_token_types, n_vocab)`.
    fn special_vocab(
        &self,
        load_merges: bool,
        types: Option<&[&'static str]>,
        n_vocab: Option<u64>,
    ) -> Result<SpecialVocab, VocabError> {
        let mut sv = SpecialVocab {
            types: types.map_or_else(|| vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"], <[_]>::to_vec),
            n_vocab,
            ids: Vec::new(),
            add: Vec::new(),
            chat_template: None,
            lowercase: None,
            strip_accents: None,
            merges: Vec::new(),
        };
        sv.load(self, load_merges)?;
        Ok(sv)
    }
}

/// The chat template(s) `SpecialVocab` found.
enum ChatTemplate {
    One(String),
    Named(Vec<(String, String)>),
}

/// gguf-py's `SpecialVocab`: merges, special token ids, add-bos/eos/sep flags, chat template.
struct SpecialVocab {
    types: Vec<&'static str>,
    n_vocab: Option<u64>,
    /// `special_token_ids`, in insertion order.
    ids: Vec<(&'static str, u64)>,
    /// `add_special_token`, in insertion order.
    add: Vec<(&'static str, bool)>,
    chat_template: Option<ChatTemplate>,
    lowercase: Option<bool>,
    strip_accents: Option<bool>,
    merges: Vec<Vec<u8>>,
}

/// The special tokens the post-processor reading tracks (`special_bos` … in the reference).
struct Specials {
    bos: Option<Json>,
    cls: Option<Json>,
    eos: Option<Json>,
    sep: Option<Json>,
}

/// A `tokenizer_config` key this module may set, as the reference mutates the dict.
fn tc_set(tc: &mut Option<Json>, key: &str, v: Option<&Json>) {
    if let Some(Json::Object(m)) = tc {
        m.insert(key.to_owned(), v.cloned().unwrap_or(Json::Null));
    }
}

impl SpecialVocab {
    fn set_add(&mut self, typ: &'static str, v: bool) {
        if let Some(slot) = self.add.iter_mut().find(|(t, _)| *t == typ) {
            slot.1 = v;
        } else {
            self.add.push((typ, v));
        }
    }

    fn set_add_default(&mut self, typ: &'static str, v: bool) {
        if !self.add.iter().any(|(t, _)| *t == typ) {
            self.add.push((typ, v));
        }
    }

    /// `_set_special_token`: integers only (Python's `bool` is one), first setting wins.
    fn set_special_token(&mut self, typ: &'static str, tid: &Json) -> Result<(), VocabError> {
        let id = match tid {
            Json::Bool(b) => u64::from(*b),
            Json::Number(n) if n.is_u64() || n.is_i64() => match n.as_u64().filter(|&i| i <= u64::from(u32::MAX)) {
                Some(i) => i,
                None => return Err(invalid(CONFIG, format!("invalid value for special token type {typ}: {n}"))),
            },
            _ => return Ok(()),
        };
        if self.n_vocab.is_none_or(|n| id < n) && !self.ids.iter().any(|(t, _)| *t == typ) {
            self.ids.push((typ, id));
        }
        Ok(())
    }

    fn load(&mut self, cx: &Context<'_>, load_merges: bool) -> Result<(), VocabError> {
        let mut tc = cx.tokenizer_config.clone();
        // _try_load_from_tokenizer_json
        let empty: &[AddedToken] = &[];
        let added = cx.tj.as_ref().and_then(|t| t.added_tokens.as_deref()).unwrap_or(empty);
        if let Some(tj) = &cx.tj {
            if load_merges && let Some(m) = tj.model.as_ref().and_then(|m| m.merges.as_ref()) {
                self.merges.clone_from(&m.0);
            }
            if let Some(n) = &tj.normalizer {
                self.parse_normalizer(n);
            }
        }
        if cx.tj_truthy {
            self.post_processor(cx, &mut tc);
        }
        let tc_truthy = truthy(tc.as_ref());
        if tc_truthy {
            let tcv = tc.as_ref().unwrap_or(&Json::Null);
            // chat template: tokenizer_config's, else chat_template.jinja, else .json's.
            let alt = if let Some(b) = cx.files.chat_template_jinja {
                Some(Json::String(
                    core::str::from_utf8(b).map_err(|_| invalid("chat_template.jinja", "not UTF-8"))?.to_owned(),
                ))
            } else if let Some(b) = cx.files.chat_template_json {
                get(&parse_json("chat_template.json", b)?, "chat_template").cloned()
            } else {
                None
            };
            let ct = match tcv.as_object().and_then(|m| m.get("chat_template")) {
                Some(v) => (!v.is_null()).then(|| v.clone()),
                None => alt,
            };
            self.chat_template = match ct {
                Some(Json::String(s)) => Some(ChatTemplate::One(s)),
                Some(Json::Array(a)) => {
                    let mut named = Vec::new();
                    for c in &a {
                        let name = get(c, "name").and_then(Json::as_str).unwrap_or("");
                        let name: String =
                            name.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' }).collect();
                        if let (false, Some(t)) = (name.is_empty(), get(c, "template")) {
                            let t = t
                                .as_str()
                                .ok_or_else(|| invalid(TOKENIZER_CONFIG, "a chat template is not a string"))?;
                            named.push((name, t.to_owned()));
                        }
                    }
                    Some(ChatTemplate::Named(named))
                }
                _ => None,
            };
            let types = self.types.clone();
            for typ in types {
                if let Some(Json::Bool(b)) = get(tcv, &format!("add_{typ}_token")) {
                    self.set_add_default(typ, *b);
                }
                let content = match get(tcv, &format!("{typ}_token")) {
                    Some(Json::String(s)) => s.as_str(),
                    Some(e @ Json::Object(_)) => match get(e, "content") {
                        Some(Json::String(s)) => s.as_str(),
                        _ => continue,
                    },
                    _ => continue,
                };
                if let Some(a) = added.iter().find(|a| a.content == content) {
                    self.set_special_token(typ, &Json::from(a.id))?;
                }
            }
        }
        // _try_load_from_config_json
        let types = self.types.clone();
        for typ in types {
            let key = format!("{typ}_token_id");
            let mut v = cx.config.as_object().and_then(|m| m.get(&key)).filter(|v| !v.is_null());
            if v.is_none()
                && let Some(text) = cx.config.as_object().and_then(|m| m.get("text_config"))
            {
                v = get(text, &key);
            }
            if let Some(v) = v {
                self.set_special_token(typ, v)?;
            }
        }
        Ok(())
    }

    fn parse_normalizer(&mut self, n: &Json) {
        match get(n, "type").and_then(Json::as_str) {
            Some("Lowercase") => self.lowercase = Some(true),
            Some("StripAccents") => self.strip_accents = Some(true),
            Some("BertNormalizer") => {
                if let Some(b) = get(n, "lowercase").and_then(Json::as_bool) {
                    self.lowercase = Some(b);
                }
                if let Some(b) = get(n, "strip_accents").and_then(Json::as_bool) {
                    self.strip_accents = Some(b);
                }
            }
            Some("Sequence") => {
                if let Some(Json::Array(a)) = get(n, "normalizers") {
                    for n in a {
                        self.parse_normalizer(n);
                    }
                }
            }
            _ => {}
        }
    }

    /// The post-processor part of `_try_load_from_tokenizer_json` (add-bos/eos/sep, and the
    /// special tokens it implies), mutating `tc` as the reference mutates `tokenizer_config`.
    fn post_processor(&mut self, cx: &Context<'_>, tc: &mut Option<Json>) {
        let tc_get = |tc: &Option<Json>, k: &str| tc.as_ref().and_then(|t| get(t, k)).cloned();
        let mut sp = Specials {
            bos: tc_get(tc, "bos_token"),
            cls: tc_get(tc, "cls_token"),
            eos: tc_get(tc, "eos_token"),
            sep: tc_get(tc, "sep_token"),
        };
        let tc_truthy = |tc: &Option<Json>| truthy(tc.as_ref());
        if !truthy(sp.bos.as_ref()) && truthy(sp.cls.as_ref()) && tc_truthy(tc) {
            tc_set(tc, "bos_token", sp.cls.as_ref());
            sp.bos.clone_from(&sp.cls);
        }
        if !truthy(sp.eos.as_ref()) && truthy(sp.sep.as_ref()) && tc_truthy(tc) {
            tc_set(tc, "eos_token", sp.sep.as_ref());
            sp.eos.clone_from(&sp.sep);
        }
        let Some(pp) = cx.tj.as_ref().and_then(|t| t.post_processor.as_ref()).filter(|p| truthy(Some(p))) else {
            return;
        };
        let processors: Vec<&Json> = match pp.as_object().and_then(|m| m.get("processors")) {
            Some(Json::Array(a)) => a.iter().collect(),
            Some(_) => Vec::new(),
            None => vec![pp],
        };
        for processor in processors {
            match get(processor, "type").and_then(Json::as_str) {
                Some("ByteLevel") => {
                    self.set_add_default("bos", false);
                    self.set_add_default("eos", false);
                }
                Some("RobertaProcessing") => {
                    self.set_add("bos", true);
                    self.set_add("eos", true);
                    self.set_add("sep", true);
                    if !truthy(sp.cls.as_ref()) && tc_truthy(tc) {
                        sp.cls = match get(processor, "cls") {
                            Some(Json::Array(a)) => a.first().cloned(),
                            _ => sp.bos.clone(),
                        };
                        tc_set(tc, "cls_token", sp.cls.as_ref());
                    }
                    if !truthy(sp.sep.as_ref()) && tc_truthy(tc) {
                        sp.sep = match get(processor, "sep") {
                            Some(Json::Array(a)) => a.first().cloned(),
                            _ => sp.eos.clone(),
                        };
                        tc_set(tc, "sep_token", sp.sep.as_ref());
                    }
                }
                Some("TemplateProcessing") => self.template_processing(processor, tc, &mut sp),
                _ => {}
            }
        }
    }

    /// The `TemplateProcessing` part of the post-processor reading: add-bos/eos from the single
    /// template's ends, add-sep from what stands between `A` and `B` in the pair template.
    fn template_processing(&mut self, processor: &Json, tc: &mut Option<Json>, sp: &mut Specials) {
        let list = |k: &str| match get(processor, k) {
            Some(Json::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let single = list("single");
        let pair = list("pair");
        let mut special_first = None;
        let mut special_last = None;
        if single.len() > 1 {
            special_first = piece_id(single.first(), "SpecialToken").cloned();
            if truthy(special_first.as_ref()) {
                let first = special_first.as_ref();
                if !truthy(tc.as_ref()) {
                    sp.bos = special_first.clone();
                } else if !eq(first, sp.bos.as_ref()) && !eq(first, sp.cls.as_ref()) {
                    if !truthy(sp.bos.as_ref()) {
                        tc_set(tc, "bos_token", first);
                        sp.bos = special_first.clone();
                    }
                    if !truthy(sp.cls.as_ref()) {
                        tc_set(tc, "cls_token", first);
                        sp.cls = special_first.clone();
                    }
                }
                let is_bos = eq(first, sp.bos.as_ref()) || eq(first, sp.cls.as_ref());
                self.set_add("bos", is_bos);
            }
            special_last = piece_id(single.last(), "SpecialToken").cloned();
            if truthy(special_last.as_ref()) {
                let last = special_last.as_ref();
                if !truthy(tc.as_ref()) {
                    sp.eos = special_last.clone();
                } else if !eq(last, sp.eos.as_ref()) {
                    if !self.types.contains(&"eot") {
                        self.types.push("eot");
                        tc_set(tc, "eot_token", sp.eos.as_ref());
                    } else if !self.types.contains(&"eom") {
                        self.types.push("eom");
                        tc_set(tc, "eom_token", sp.eos.as_ref());
                    }
                    tc_set(tc, "eos_token", last);
                    sp.eos = special_last.clone();
                }
                let is_eos = eq(special_last.as_ref(), sp.eos.as_ref());
                self.set_add("eos", is_eos);
            }
        }
        if !pair.is_empty() {
            let start = usize::from(
                truthy(special_first.as_ref()) && eq(piece_id(pair.first(), "SpecialToken"), special_first.as_ref()),
            );
            let stop_trim =
                truthy(special_last.as_ref()) && eq(piece_id(pair.last(), "SpecialToken"), special_last.as_ref());
            let stop = if stop_trim { pair.len().saturating_sub(1) } else { pair.len() };
            let mid = if start < stop { &pair[start..stop] } else { &[][..] };
            if !mid.is_empty() {
                let a = piece_id(mid.first(), "Sequence").and_then(Json::as_str);
                let b = piece_id(mid.last(), "Sequence").and_then(Json::as_str);
                let inner = if mid.len() >= 2 { &mid[1..mid.len() - 1] } else { &[][..] };
                if a == Some("A") && b == Some("B") && !inner.is_empty() {
                    let mut add_sep = false;
                    let is_sep = |e: Option<&Json>| eq(e, sp.sep.as_ref()) || eq(e, sp.eos.as_ref());
                    let e = piece_id(inner.first(), "SpecialToken");
                    if truthy(e) && is_sep(e) && !truthy(special_last.as_ref()) {
                        add_sep = true;
                    }
                    if inner.len() == 2 {
                        let e = piece_id(inner.get(1), "SpecialToken");
                        if truthy(e) && is_sep(e) {
                            add_sep = true;
                        }
                    }
                    self.set_add("sep", add_sep);
                    if add_sep && !truthy(sp.sep.as_ref()) && truthy(tc.as_ref()) {
                        tc_set(tc, "sep_token", sp.eos.as_ref());
                    }
                }
            }
        }
    }

    /// `add_to_gguf`.
    fn add_to_gguf(self, out: &mut Kvs) {
        if !self.merges.is_empty() {
            out.set("tokenizer.ggml.merges", Value::Array(Array::Str(self.merges)));
        }
        for (typ, id) in self.ids {
            let key = match typ {
                "bos" => "tokenizer.ggml.bos_token_id",
                "eos" => "tokenizer.ggml.eos_token_id",
                "unk" => "tokenizer.ggml.unknown_token_id",
                "sep" => "tokenizer.ggml.seperator_token_id",
                "pad" => "tokenizer.ggml.padding_token_id",
                "mask" => "tokenizer.ggml.mask_token_id",
                "eot" => "tokenizer.ggml.eot_token_id",
                "eom" => "tokenizer.ggml.eom_token_id",
                _ => continue, // no GGUF key (cls, prefix, suffix, middle): skipped
            };
            // set_special_token keeps ids within u32
            out.set(key, Value::U32(u32::try_from(id).unwrap_or(u32::MAX)));
        }
        for (typ, v) in self.add {
            let key = match typ {
                "bos" => "tokenizer.ggml.add_bos_token",
                "eos" => "tokenizer.ggml.add_eos_token",
                "sep" => "tokenizer.ggml.add_sep_token",
                _ => continue,
            };
            out.set(key, Value::Bool(v));
        }
        match self.chat_template {
            None => out.remove("tokenizer.chat_template"),
            Some(ChatTemplate::One(s)) => out.set_str("tokenizer.chat_template", &s),
            Some(ChatTemplate::Named(list)) => {
                let mut default = None;
                let mut names: Vec<Vec<u8>> = Vec::new();
                for (name, t) in list {
                    if name == "default" {
                        default = Some(t);
                    } else {
                        out.set_str(&format!("tokenizer.chat_template.{name}"), &t);
                        if !names.iter().any(|n| n == name.as_bytes()) {
                            names.push(name.into_bytes());
                        }
                    }
                }
                if !names.is_empty() {
                    out.set("tokenizer.chat_templates", Value::Array(Array::Str(names)));
                }
                if let Some(t) = default {
                    out.set_str("tokenizer.chat_template", &t);
                }
            }
        }
        if let Some(b) = self.lowercase {
            out.set("tokenizer.ggml.normalizer.lowercase", Value::Bool(b));
        }
        if let Some(b) = self.strip_accents {
            out.set("tokenizer.ggml.normalizer.strip_accents", Value::Bool(b));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// generation_config.json → general.sampling.*

/// The `general.sampling.*` keys, as gguf-py's `Metadata.load` + `set_gguf_meta_model` write
/// them. A file that is not JSON is ignored, as the reference ignores it.
fn sampling(file: Option<&[u8]>) -> Result<Vec<Kv>, VocabError> {
    const GEN: &str = "generation_config.json";
    let Some(b) = file else { return Ok(Vec::new()) };
    let Ok(Json::Object(g)) = serde_json::from_slice::<Json>(b) else { return Ok(Vec::new()) };
    enum Ty {
        Str,
        I32,
        F32,
    }
    let penalty = if g.contains_key("penalty_repeat") { "penalty_repeat" } else { "repetition_penalty" };
    let keys: [(&str, &str, Ty); 12] = [
        ("sequence", "sequence", Ty::Str),
        ("top_k", "top_k", Ty::I32),
        ("top_p", "top_p", Ty::F32),
        ("min_p", "min_p", Ty::F32),
        ("xtc_probability", "xtc_probability", Ty::F32),
        ("xtc_threshold", "xtc_threshold", Ty::F32),
        ("temperature", "temp", Ty::F32),
        ("penalty_last_n", "penalty_last_n", Ty::I32),
        (penalty, "penalty_repeat", Ty::F32),
        ("mirostat", "mirostat", Ty::I32),
        ("mirostat_tau", "mirostat_tau", Ty::F32),
        ("mirostat_eta", "mirostat_eta", Ty::F32),
    ];
    let mut out = Vec::new();
    for (src, name, ty) in keys {
        let Some(v) = g.get(src).filter(|v| !v.is_null()) else { continue };
        let bad = |what: &str| invalid(GEN, format!("{src} is not {what}"));
        let value = match ty {
            Ty::Str => Value::Str(v.as_str().ok_or_else(|| bad("a string"))?.as_bytes().to_vec()),
            Ty::I32 => {
                let i = match v {
                    Json::Bool(b) => i64::from(*b),
                    _ => v.as_i64().ok_or_else(|| bad("an integer"))?,
                };
                Value::I32(i32::try_from(i).map_err(|_| bad("a 32-bit integer"))?)
            }
            Ty::F32 => {
                let f = match v {
                    Json::Bool(b) => f64::from(u8::from(*b)),
                    _ => v.as_f64().ok_or_else(|| bad("a number"))?,
                };
                #[expect(clippy::cast_possible_truncation, reason = "float32 rounding is what gguf-py stores")]
                let f = f as f32;
                Value::F32(f)
            }
        };
        out.push((format!("general.sampling.{name}"), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::path::PathBuf;

    const FIXTURES: [&str; 9] =
        ["llama", "llama-sharded", "llama-f32", "mistral", "qwen2", "qwen3", "qwen3moe", "gemma3", "phi3"];

    fn fixtures_dir() -> PathBuf {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/hf");
        assert!(d.join("llama/model/config.json").is_file(), "{} is missing: run scripts/hf-fixtures", d.display());
        d
    }

    fn expected(name: &str) -> Json {
        let p =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/fixtures/hf/{name}-expected.json"));
        let p = if p.is_file() {
            p
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/fixtures/hf/{name}-expected.json"))
        };
        let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_slice(&b).expect("expected JSON")
    }

    /// (type name, elem type name, element bytes as stored, scalar as JSON)
    fn summarize(v: &Value) -> (&'static str, Option<&'static str>, Vec<u8>, usize, Json) {
        match v {
            Value::U32(x) => ("UINT32", None, Vec::new(), 0, Json::from(*x)),
            Value::I32(x) => ("INT32", None, Vec::new(), 0, Json::from(*x)),
            Value::F32(x) => ("FLOAT32", None, Vec::new(), 0, Json::from(f64::from(*x))),
            Value::Bool(x) => ("BOOL", None, Vec::new(), 0, Json::from(*x)),
            Value::Str(s) => ("STRING", None, Vec::new(), 0, Json::from(String::from_utf8(s.clone()).expect("utf8"))),
            Value::Array(Array::Str(a)) => {
                let mut b = Vec::new();
                for s in a {
                    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    b.extend_from_slice(s);
                }
                let j = a.iter().map(|s| Json::from(String::from_utf8(s.clone()).expect("utf8"))).collect();
                ("ARRAY", Some("STRING"), b, a.len(), Json::Array(j))
            }
            Value::Array(Array::I32(a)) => {
                let b = a.iter().flat_map(|x| x.to_le_bytes()).collect();
                ("ARRAY", Some("INT32"), b, a.len(), a.iter().map(|&x| Json::from(x)).collect())
            }
            Value::Array(Array::F32(a)) => {
                let b = a.iter().flat_map(|x| x.to_le_bytes()).collect();
                ("ARRAY", Some("FLOAT32"), b, a.len(), a.iter().map(|&x| Json::from(f64::from(x))).collect())
            }
            other => panic!("unexpected value type {other:?}"),
        }
    }

    /// Compares `got` with the expected entries whose key starts with `prefix`; returns the
    /// mismatches.
    fn compare(name: &str, exp: &Json, prefix: &str, got: &[Kv]) -> Vec<String> {
        let want: Vec<&Json> = exp["outtypes"]["f16"]["metadata"]
            .as_array()
            .expect("metadata")
            .iter()
            .filter(|m| m["key"].as_str().is_some_and(|k| k.starts_with(prefix)))
            .collect();
        let mut bad = Vec::new();
        let wk: Vec<&str> = want.iter().map(|m| m["key"].as_str().unwrap_or("")).collect();
        let gk: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        if wk != gk {
            bad.push(format!("{name}: {prefix}* keys differ:\n  want {wk:?}\n  got  {gk:?}"));
        }
        for m in want {
            let key = m["key"].as_str().unwrap_or("");
            let Some((_, v)) = got.iter().find(|(k, _)| k == key) else { continue };
            let (ty, elem, bytes, len, val) = summarize(v);
            if m["type"] != ty || m.get("elem_type").and_then(Json::as_str) != elem {
                bad.push(format!("{name}: {key}: type {ty}/{elem:?}, want {}/{:?}", m["type"], m.get("elem_type")));
                continue;
            }
            if let Some(h) = m.get("sha256") {
                let got_h = format!("{:x}", Sha256::digest(&bytes));
                if m["len"] != len || h.as_str() != Some(got_h.as_str()) {
                    bad.push(format!("{name}: {key}: len {len} sha256 {got_h}, want len {} sha256 {h}", m["len"]));
                }
            } else if m["value"] != val {
                let s = format!("{val}");
                bad.push(format!("{name}: {key}: {}, want {}", &s[..s.len().min(200)], m["value"]));
            }
        }
        bad
    }

    fn read(dir: &std::path::Path, f: &str) -> Option<Vec<u8>> {
        std::fs::read(dir.join(f)).ok()
    }

    fn run_fixture(name: &str) -> Vec<String> {
        let dir = fixtures_dir().join(name).join("model");
        let exp = expected(name);
        let config = read(&dir, "config.json").expect("config.json");
        let tj = read(&dir, "tokenizer.json");
        let tc = read(&dir, "tokenizer_config.json");
        let tm = read(&dir, "tokenizer.model");
        let gc = read(&dir, "generation_config.json");
        let files = TextFiles {
            config: &config,
            tokenizer_json: tj.as_deref(),
            tokenizer_config: tc.as_deref(),
            tokenizer_model: tm.as_deref(),
            generation_config: gc.as_deref(),
            ..TextFiles::default()
        };
        let cfg: Json = serde_json::from_slice(&config).expect("config");
        let class = cfg["architectures"][0].as_str().expect("architectures").to_owned();
        let arch = match class.as_str() {
            "LlamaForCausalLM" | "MistralForCausalLM" => "llama",
            "Qwen2ForCausalLM" => "qwen2",
            "Qwen3ForCausalLM" => "qwen3",
            "Qwen3MoeForCausalLM" => "qwen3moe",
            "Gemma3ForCausalLM" => "gemma3",
            "Phi3ForCausalLM" => "phi3",
            c => panic!("{c}"),
        };
        let vocab_size = cfg
            .get("vocab_size")
            .or_else(|| cfg.get("text_config").and_then(|t| t.get("vocab_size")))
            .and_then(Json::as_u64);
        let want_pre = exp["outtypes"]["f16"]["metadata"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["key"] == "tokenizer.ggml.pre"))
            .and_then(|m| m["value"].as_str())
            .map(str::to_owned);
        let mut calls = 0;
        let mut pre = |b: &[u8]| {
            calls += 1;
            assert_eq!(Some(b), tj.as_deref());
            want_pre.clone().ok_or(VocabError::UnknownPre("none".into()))
        };
        let v = vocab(&files, arch, &class, vocab_size, &mut pre).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut bad = compare(name, &exp, "tokenizer.", &v.tokenizer);
        bad.extend(compare(name, &exp, "general.sampling.", &v.sampling));
        let toks = v.tokenizer.iter().find(|(k, _)| k == "tokenizer.ggml.tokens").map(|(_, t)| t);
        if let Some(Value::Array(a)) = toks
            && a.len() as u64 != v.n_tokens
        {
            bad.push(format!("{name}: n_tokens {} but {} tokens", v.n_tokens, a.len()));
        }
        bad
    }

    macro_rules! fixture_tests {
        ($($f:ident => $n:literal),* $(,)?) => {$(
            #[test]
            fn $f() {
                let bad = run_fixture($n);
                assert!(bad.is_empty(), "{}", bad.join("\n"));
            }
        )*};
    }

    fixture_tests! {
        fixture_llama => "llama",
        fixture_llama_sharded => "llama-sharded",
        fixture_llama_f32 => "llama-f32",
        fixture_mistral => "mistral",
        fixture_qwen2 => "qwen2",
        fixture_qwen3 => "qwen3",
        fixture_qwen3moe => "qwen3moe",
        fixture_gemma3 => "gemma3",
        fixture_phi3 => "phi3",
    }

    #[test]
    fn fixture_list_is_complete() {
        let d = fixtures_dir();
        for f in FIXTURES {
            assert!(d.join(f).join("model/config.json").is_file(), "{f}: run scripts/hf-fixtures");
        }
    }

    fn no_pre(_: &[u8]) -> Result<String, VocabError> {
        Err(VocabError::UnknownPre("test".into()))
    }

    #[test]
    fn bad_input() {
        let config = br#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 8}"#;
        let files = TextFiles { config, tokenizer_json: Some(b"{not json"), ..TextFiles::default() };
        let e = vocab(&files, "llama", "LlamaForCausalLM", Some(8), &mut no_pre).expect_err("not JSON");
        assert!(e.to_string().starts_with("tokenizer.json: not JSON: "), "{e}");

        let files = TextFiles { config, tokenizer_model: Some(&[0x0a, 0x05, 0x0a]), ..TextFiles::default() };
        let e = vocab(&files, "llama", "LlamaForCausalLM", Some(8), &mut no_pre).expect_err("truncated");
        assert_eq!(e.to_string(), "tokenizer.model: truncated protobuf at byte 2");

        let files = TextFiles { config, ..TextFiles::default() };
        for arch in ["llama", "qwen2", "qwen3moe", "gemma3"] {
            let e = vocab(&files, arch, "X", Some(8), &mut no_pre).expect_err("none");
            assert_eq!(e.to_string(), "no tokenizer: the directory needs tokenizer.json or tokenizer.model");
        }
        let e = vocab(&files, "phi3", "Phi3ForCausalLM", Some(8), &mut no_pre).expect_err("none");
        assert_eq!(e.to_string(), "no tokenizer: the directory needs tokenizer.model");

        let files = TextFiles { config, tokenizer_config: Some(b"[1]"), ..TextFiles::default() };
        let e = vocab(&files, "llama", "X", Some(8), &mut no_pre).expect_err("not an object");
        assert_eq!(e.to_string(), "tokenizer_config.json: not a JSON object");

        let e = vocab(&TextFiles { config, ..TextFiles::default() }, "bert", "X", None, &mut no_pre).expect_err("arch");
        assert_eq!(e.to_string(), "tokenizer: the tokenizer of architecture bert is not supported");
    }

    #[test]
    fn bpe_pads_and_reports_unknown_pre() {
        let config = br#"{"vocab_size": 6, "bos_token_id": 4}"#;
        let tj = br#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]},
            "added_tokens": [{"id": 3, "content": "<|x|>", "special": false}, {"id": 4, "content": "\u2581y", "special": false}],
            "post_processor": {"type": "ByteLevel"}}"#;
        let files = TextFiles { config, tokenizer_json: Some(tj), ..TextFiles::default() };
        let e = vocab(&files, "qwen2", "Qwen2ForCausalLM", Some(6), &mut no_pre).expect_err("pre");
        assert!(e.to_string().contains("not recognised"), "{e}");
        let v = vocab(&files, "qwen2", "Qwen2ForCausalLM", Some(6), &mut |_| Ok("qwen2".into())).expect("bpe");
        let get = |k: &str| v.tokenizer.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        assert_eq!(v.n_tokens, 6);
        let Some(Value::Array(Array::Str(t))) = get("tokenizer.ggml.tokens") else { panic!("tokens") };
        assert_eq!(t[4], b" y");
        assert_eq!(t[5], b"[PAD5]");
        assert_eq!(get("tokenizer.ggml.token_type"), Some(Value::Array(Array::I32(vec![1, 1, 1, 3, 4, 5]))));
        assert_eq!(get("tokenizer.ggml.merges"), Some(Value::Array(Array::Str(vec![b"a b".to_vec()]))));
        assert_eq!(get("tokenizer.ggml.bos_token_id"), Some(Value::U32(4)));
        assert_eq!(get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(false)));
        assert!(v.sampling.is_empty());
    }

    #[test]
    fn llama_add_prefix_space_comes_first() {
        // tokenizer.model pieces: <unk> (2), <s> (3), </s> (3), ▁a (1)
        let mut model = Vec::new();
        for (text, kind) in [("<unk>", 2u8), ("<s>", 3), ("</s>", 3), ("\u{2581}a", 1)] {
            let mut m = vec![0x0a, u8::try_from(text.len()).expect("short")];
            m.extend_from_slice(text.as_bytes());
            m.extend_from_slice(&[0x18, kind]);
            model.extend_from_slice(&[0x0a, u8::try_from(m.len()).expect("short")]);
            model.extend_from_slice(&m);
        }
        let config = br#"{"bos_token_id": 1, "eos_token_id": 2}"#;
        let tc = br#"{"add_prefix_space": false, "bos_token": "<s>",
            "added_tokens_decoder": {"5": {"content": "<|x|>"}, "4": {"content": "\u2581b"}}}"#;
        let added = br#"{"c": 3}"#;
        let files = TextFiles {
            config,
            tokenizer_model: Some(&model),
            tokenizer_config: Some(tc),
            added_tokens: Some(added),
            ..TextFiles::default()
        };
        let v = vocab(&files, "llama", "LlamaForCausalLM", Some(7), &mut no_pre).expect("spm");
        let keys: Vec<&str> = v.tokenizer.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tokenizer.ggml.add_space_prefix",
                "tokenizer.ggml.model",
                "tokenizer.ggml.pre",
                "tokenizer.ggml.tokens",
                "tokenizer.ggml.scores",
                "tokenizer.ggml.token_type",
                "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id",
            ]
        );
        assert_eq!(v.n_tokens, 7);
        let get = |k: &str| v.tokenizer.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        let Some(Value::Array(Array::Str(t))) = get("tokenizer.ggml.tokens") else { panic!("tokens") };
        let t: Vec<&[u8]> = t.iter().map(Vec::as_slice).collect();
        assert_eq!(t, [&b"<unk>"[..], b"<s>", b"</s>", b"c", b" b", b"<|x|>", b"[PAD6]"]);
        assert_eq!(get("tokenizer.ggml.token_type"), Some(Value::Array(Array::I32(vec![2, 3, 3, 4, 4, 3, 5]))));
        assert_eq!(
            get("tokenizer.ggml.scores"),
            Some(Value::Array(Array::F32(vec![0.0, 0.0, 0.0, -1000.0, -1000.0, -1000.0, -10000.0])))
        );
        // no tokenizer.json: the bos token comes from config.json, not tokenizer_config
        assert_eq!(get("tokenizer.ggml.bos_token_id"), Some(Value::U32(1)));
    }

    #[test]
    fn wrong_shape_is_not_called_not_json() {
        let config = br#"{}"#;
        let tj = br#"{"model": {"type": "BPE", "vocab": {"a": "zero"}}}"#;
        let files = TextFiles { config, tokenizer_json: Some(tj), ..TextFiles::default() };
        let e = vocab(&files, "qwen3moe", "Qwen3MoeForCausalLM", None, &mut no_pre).expect_err("shape");
        assert!(e.to_string().starts_with("tokenizer.json: unexpected content: "), "{e}");
    }

    #[test]
    fn sampling_types() {
        let g = br#"{"top_k": 40, "top_p": 1, "temperature": 0.5, "repetition_penalty": 1.1, "min_p": null}"#;
        let s = sampling(Some(g)).expect("ok");
        let keys: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "general.sampling.top_k",
                "general.sampling.top_p",
                "general.sampling.temp",
                "general.sampling.penalty_repeat"
            ]
        );
        assert_eq!(s[0].1, Value::I32(40));
        assert_eq!(s[1].1, Value::F32(1.0));
        assert!(sampling(Some(b"not json")).expect("ignored").is_empty());
        assert!(sampling(Some(br#"{"top_k": 1.5}"#)).is_err());
    }
}
