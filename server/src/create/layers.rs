//! Step 3 of a create: the text and JSON layers — template, system, licenses, params, messages — with
//! Ollama's replace/append/merge rules (§5.6) and byte-exact encodings (§5.5).

use std::sync::Arc;

use kiln_core::gojson::{self, ObjectWriter};
use kiln_core::request::Message;
use kiln_core::validate::CreatePlan;
use serde_json::{Map, Value};

use super::error::CreateError;
use super::{Staged, read_json, write_layer};
use crate::store::{Pin, Store, media};

/// Step 3 of a create: the plan's template and system replace inherited ones, licenses append,
/// parameters merge over inherited ones, messages replace.
///
/// # Errors
/// Store failures writing a layer.
pub(super) async fn stage(
    store: &Arc<Store>,
    plan: &CreatePlan,
    staged: &mut Vec<Staged>,
    pin: &mut Pin<'_>,
) -> Result<(), CreateError> {
    if let Some(t) = &plan.template {
        staged.retain(|s| s.layer.media_type != media::TEMPLATE && s.layer.media_type != media::PROMPT);
        staged.push(write_layer(store, pin, media::TEMPLATE, t.clone().into_bytes()).await?);
    }
    if let Some(sys) = &plan.system {
        staged.retain(|s| s.layer.media_type != media::SYSTEM);
        staged.push(write_layer(store, pin, media::SYSTEM, sys.clone().into_bytes()).await?);
    }
    for license in &plan.licenses {
        staged.push(write_layer(store, pin, media::LICENSE, license.clone().into_bytes()).await?);
    }
    if let Some(params) = &plan.parameters {
        let inherited: Option<Map<String, Value>> =
            staged.iter().find(|s| s.layer.media_type == media::PARAMS).map(|s| read_json(store, &s.layer.digest));
        staged.retain(|s| s.layer.media_type != media::PARAMS);
        staged.push(write_layer(store, pin, media::PARAMS, merge_params(inherited, params)).await?);
    }
    if !plan.messages.is_empty() {
        staged.retain(|s| s.layer.media_type != media::MESSAGES);
        staged.push(write_layer(store, pin, media::MESSAGES, encode_messages(&plan.messages)).await?);
    }
    Ok(())
}

/// Messages as Ollama encodes them: `role`, `content`, then the optional keys.
#[must_use]
pub fn encode_messages(messages: &[Message]) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut o = ObjectWriter::new(&mut out);
        o.str("role", &m.role).str("content", &m.content).str_opt("thinking", m.thinking.as_deref());
        if let Some(images) = m.images.as_ref().filter(|v| !v.is_empty()) {
            o.str_list("images", Some(images));
        }
        if let Some(calls) = m.tool_calls.as_ref().filter(|v| !v.is_empty()) {
            o.value("tool_calls", &Value::Array(calls.clone()));
        }
        o.str_opt("tool_name", m.tool_name.as_deref()).str_opt("tool_call_id", m.tool_call_id.as_deref());
        o.finish();
    }
    out.push_str("]\n");
    out.into_bytes()
}

/// Inherited parameters with `new` merged over them: new keys win, arrays are replaced.
#[must_use]
pub fn merge_params(inherited: Option<Map<String, Value>>, new: &Map<String, Value>) -> Vec<u8> {
    let mut merged = inherited.unwrap_or_default();
    for (k, v) in new {
        merged.insert(k.clone(), v.clone());
    }
    gojson::encode_line(&Value::Object(merged)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blobs::digest_of;

    fn hex(b: &[u8]) -> String {
        digest_of(b).hex().to_owned()
    }

    #[test]
    fn spec_vectors() {
        assert_eq!(hex(b"{{ .Prompt }}"), "b507b9c2f6ca642bffcd06665ea7c91f235fd32daeefdf875a0f938db05fb315");
        assert_eq!(hex(b"MIT"), "e5dcffe836b6ec8a58e492419b550e65fb8cbdc308503979e5dacb33ac7ea3b7");
        let p: Map<String, Value> =
            serde_json::from_str(r#"{"stop":["USER:","ASSISTANT:"],"temperature":1,"top_k":10}"#).unwrap();
        assert_eq!(hex(&merge_params(None, &p)), "1d0ad71299d48c2fb7ae2b98e683643e771f8a5b72be34942af90d97a91c1e37");
        let newer: Map<String, Value> = serde_json::from_str(r#"{"temperature":0.6,"top_p":0.7}"#).unwrap();
        assert_eq!(
            hex(&merge_params(Some(p), &newer)),
            "e29a7b3c47287a2489c895d21fe413c20f859a85d20e749492f52a838e36e1ba"
        );
        let phi: Map<String, Value> =
            serde_json::from_str(r#"{"stop":["<|end|>","<|system|>","<|user|>","<|assistant|>"]}"#).unwrap();
        assert_eq!(hex(&merge_params(None, &phi)), "0d79f567714c62c048378f2107fb332dabee0135d080c302d884317da9433cc5");
        let msgs: Vec<Message> = serde_json::from_str(
            r#"[{"role":"assistant","content":"What is my purpose?"},{"role":"user","content":"You run tests."},{"role":"assistant","content":"Oh, my god."}]"#,
        )
        .unwrap();
        assert_eq!(hex(&encode_messages(&msgs)), "298baeaf6928a60cf666d88d64a1ba606feb43a2865687c39e40652e407bffc4");
    }
}
