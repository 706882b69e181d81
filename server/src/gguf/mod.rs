//! GGUF files on disk: [`read`] feeds a file to `kiln_core::gguf`'s parser; [`write`] streams a
//! new GGUF out while hashing it.

pub mod read;
pub mod write;
