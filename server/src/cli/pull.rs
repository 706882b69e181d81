//! `kiln pull NAME [--insecure]`: `POST /api/pull`, shown as `ollama pull` shows it — a spinner
//! line per status, a byte bar per digest labelled `pulling <12 hex>` (lines with nothing done
//! yet are skipped, as Ollama's CLI skips them). The stream display is shared with `kiln push`.

use kiln_core::ModelName;
use kiln_core::request::RegistryRequest;
use serde_json::Value;

use super::client::Client;
use super::progress::{Progress, StreamView};
use super::{CliError, Stage, set_stage};

/// `kiln pull` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// `[host[:port]/][namespace/]model[:tag]`; the host is the registry.
    pub name: String,
    /// Use plain http to talk to the registry.
    #[arg(long)]
    pub insecure: bool,
}

/// Whether a push or a pull is shown (their bars are labelled differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// `pulling <12 hex>`; lines with `completed == 0` are skipped.
    Pull,
    /// The status text.
    Push,
}

/// Sends the request to `path` and shows its stream.
pub(super) fn show_stream(path: &str, name: &str, insecure: bool, kind: Transfer) -> Result<(), CliError> {
    if ModelName::parse(name).is_none() {
        return Err(CliError::Message(format!("invalid model name: {name}")));
    }
    let client = Client::from_env()?;
    let req = RegistryRequest {
        model: Some(name.to_owned()),
        insecure: Some(insecure),
        stream: Some(true),
        ..RegistryRequest::default()
    };
    let progress = Progress::new();
    let mut view = StreamView::new(&progress);
    set_stage(Stage::Transfer);
    let result = client.stream(path, &req, |v: &Value| {
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        let digest = v.get("digest").and_then(Value::as_str).unwrap_or("");
        let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
        let completed = v.get("completed").and_then(Value::as_u64).unwrap_or(0);
        if digest.is_empty() {
            view.status(status);
            return;
        }
        if kind == Transfer::Pull && completed == 0 {
            return;
        }
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let label = match kind {
            Transfer::Pull => format!("pulling {}", &hex[..hex.len().min(12)]),
            Transfer::Push if status.is_empty() => format!("pushing {}...", &hex[..hex.len().min(12)]),
            Transfer::Push => status.to_owned(),
        };
        view.bar(digest, &label, completed, total, true);
    });
    set_stage(Stage::Local);
    view.finish();
    result.map_err(CliError::from)
}

/// Runs `kiln pull`.
///
/// # Errors
/// An invalid name, or the server's error (`pull model manifest: file does not exist`, a
/// refused credential, a digest mismatch).
pub fn run(args: &PullArgs) -> Result<(), CliError> {
    show_stream("/api/pull", &args.name, args.insecure, Transfer::Pull)
}
