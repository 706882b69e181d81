//! The bounded safetensors header and `model.safetensors.index.json` readers.

/// Why a safetensors header or index cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    /// Placeholder until the reader lands.
    #[error("safetensors: not supported yet")]
    Unsupported,
}
