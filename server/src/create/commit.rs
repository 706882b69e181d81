//! Step 4 of a create: the config blob rebuilt from the model layers, the status lines of the
//! final layers, and the manifest, written last and atomically.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_core::gguf::Header;
use kiln_core::validate::CreatePlan;
use kiln_core::{Digest, ModelName, file_type};

use super::error::CreateError;
use super::events::Events;
use super::{Staged, blocking, write_layer};
use crate::store::config::human_number;
use crate::store::{ConfigFile, Manifest, Pin, Store, media};

/// What the new model is made of.
#[derive(Debug)]
pub(super) struct Model {
    /// The name to write; the store writes it under its stored spelling, if it has one.
    pub name: ModelName,
    /// Its layers in order.
    pub staged: Vec<Staged>,
    /// Headers of its model layers.
    pub headers: HashMap<Digest, Arc<Header>>,
    /// The inherited config.
    pub base: ConfigFile,
}

/// Writes the config and the manifest, reporting each layer.
///
/// # Errors
/// Store failures (the previous manifest is then unchanged); [`CreateError::Cancelled`].
pub(super) async fn commit(
    store: &Arc<Store>,
    plan: &CreatePlan,
    model: Model,
    pin: &mut Pin<'_>,
    events: &Events,
) -> Result<(), CreateError> {
    let Model { name, staged, headers, base } = model;
    let cfg = write_layer(store, pin, media::CONFIG, config(plan, &staged, &headers, base).encode()).await?;
    for s in &staged {
        if !s.status.is_empty() {
            events.status(s.status.clone()).await?;
        }
    }
    events.status("writing manifest").await?;
    let manifest = Manifest::new(cfg.layer, staged.into_iter().map(|s| s.layer).collect());
    let s = store.clone();
    // The manifest it replaces is read, and its unreferenced blobs collected, under the store
    // lock in the same step.
    blocking(move || s.write_manifest(&name, &manifest.encode())).await??;
    Ok(())
}

/// The config, rebuilt from the model layers; what the request does not set is inherited.
fn config(
    plan: &CreatePlan,
    staged: &[Staged],
    headers: &HashMap<Digest, Arc<Header>>,
    base: ConfigFile,
) -> ConfigFile {
    let models: Vec<&Arc<Header>> = staged
        .iter()
        .filter(|s| s.layer.media_type == media::MODEL)
        .filter_map(|s| headers.get(&s.layer.digest))
        .collect();
    let family = |h: &Header| h.architecture().unwrap_or("unknown").to_owned();
    let first = models.first();
    ConfigFile {
        model_format: if base.model_format.is_empty() { "gguf".into() } else { base.model_format },
        model_family: first.map_or_else(|| "unknown".into(), |h| family(h)),
        model_families: (!models.is_empty()).then(|| models.iter().map(|h| family(h)).collect()),
        model_type: human_number(first.map_or(0, |h| h.parameter_count())),
        file_type: first.and_then(|h| h.file_type()).map_or("unknown", file_type::file_type_name).to_owned(),
        renderer: plan.renderer.clone().unwrap_or(base.renderer),
        parser: plan.parser.clone().unwrap_or(base.parser),
        requires: plan.requires.clone().unwrap_or(base.requires),
        capabilities: base.capabilities,
    }
}
