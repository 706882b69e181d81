//! The bounded SentencePiece `tokenizer.model` (protobuf `ModelProto`) reader.
