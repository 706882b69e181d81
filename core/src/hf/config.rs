//! `config.json` → the architecture and its hyper-parameters, with transformers' class defaults.

/// Why `config.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Placeholder until the reader lands.
    #[error("config.json: not supported yet")]
    Unsupported,
}
