//! kiln-core: the rules shared by the server and the browser — wire types, validation, model
//! names, digests, the GGUF parser, ggml types, quantization targets and the per-tensor policy.
//!
//! `no_std` + `alloc`, no I/O: everything here is a pure function of its input, so the server
//! and the wasm dashboard give the same answer to the same request.
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | the one error type; Ollama-exact messages and an HTTP status hint |
//! | [`name`] | model names `[host/][namespace/]model[:tag]` |
//! | [`challenge`] | `WWW-Authenticate` challenges from registries, parsed without trusting them |
//! | [`digest`] | `sha256:<hex>` digests and their on-disk `sha256-<hex>` form |
//! | [`request`] | request/response types of every endpoint |
//! | [`event`] | the NDJSON progress event of `/api/create` |
//! | [`params`] | `parameters` keys and their JSON types |
//! | [`validate`] | `CreateRequest` → `CreatePlan`: every synchronous check |
//! | [`modelfile`] | Modelfile text → `CreateRequest`, errors with line and column |
//! | [`gojson`] | JSON encoded byte-for-byte as Go's `encoding/json` does (config, params, messages) |
//! | [`gguf`] | sans-I/O GGUF header parser, bounded before allocation |
//! | [`hf`] | Hugging Face directories → GGUF: architectures, safetensors headers, tokenizers, the conversion plan |
//! | [`imatrix`] | importance matrices (GGUF and legacy `.dat`) → per-tensor column importance, bounded |
//! | [`ggml_type`] | ggml tensor types: ids, names, block sizes |
//! | [`file_type`] | `general.file_type` values and the `quantize` vocabulary |
//! | [`rng`] | the seeded xorshift64* behind the self-test corpus, bench inputs and tests' random data |
//! | [`tensor_policy`] | which type each tensor gets for a target (llama.cpp's `llama_tensor_get_type`) |
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod challenge;
pub mod digest;
pub mod error;
pub mod event;
pub mod file_type;
pub mod ggml_type;
pub mod gguf;
pub mod gojson;
pub mod hf;
pub mod imatrix;
pub mod modelfile;
pub mod name;
pub mod params;
pub mod quant_controls;
pub mod request;
pub mod rng;
pub mod tensor_policy;
pub mod validate;

pub use digest::Digest;
pub use error::Error;
pub use name::ModelName;
