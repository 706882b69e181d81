//! The architecture table: HF class → GGUF arch, tensor-name map, hyper-parameter keys, transforms.
