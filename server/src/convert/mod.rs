//! Hugging Face model directories → GGUF: the parts that need the server's dependencies.

pub mod pre;
