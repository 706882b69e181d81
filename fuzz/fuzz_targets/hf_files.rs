//! The small files of a Hugging Face folder on arbitrary bytes: the SentencePiece
//! `tokenizer.model` reader, `config.json` and the tokenizer routes of every architecture must
//! answer Ok or Err, never panic or allocate beyond what the input's size allows.
#![no_main]

use kiln_core::hf::{TextFiles, config, spm, vocab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spm::pieces(data);
    let _ = config::parse(data);
    // One route per input (chosen by its length) keeps executions fast.
    let routes = [
        ("llama", "LlamaForCausalLM"),
        ("llama", "MistralForCausalLM"),
        ("qwen2", "Qwen2ForCausalLM"),
        ("gemma3", "Gemma3ForCausalLM"),
        ("phi3", "Phi3ForCausalLM"),
    ];
    let (arch, class) = routes[data.len() % routes.len()];
    let files = TextFiles {
        config: b"{}",
        tokenizer_json: Some(data),
        tokenizer_config: Some(data),
        tokenizer_model: Some(data),
        generation_config: Some(data),
        ..TextFiles::default()
    };
    let mut pre = |_: &[u8]| Ok("default".to_owned());
    let _ = vocab::vocab(&files, arch, class, Some(64), &mut pre);
});
