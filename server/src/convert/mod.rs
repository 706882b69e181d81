//! Hugging Face safetensors import, the server's half: reading the directory's files from the
//! store ([`import`]), the pre-tokenizer check ([`pre`]), and the converted GGUF made as it is
//! read ([`source`]). What to convert, and how, is `kiln_core::hf`'s pure plan.

pub mod import;
pub mod pre;
pub mod source;
