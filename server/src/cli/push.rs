//! `kiln push NAME [--insecure]`: `POST /api/push`, shown as `ollama push` shows it (a bar per
//! blob labelled with its status), then where the model now is.

use kiln_core::ModelName;

use super::CliError;
use super::pull::{Transfer, show_stream};

/// `kiln push` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// `host[:port]/namespace/model[:tag]`; the host is the registry.
    pub name: String,
    /// Use plain http to talk to the registry.
    #[arg(long)]
    pub insecure: bool,
}

/// Runs `kiln push`; on success prints `You can find your model at:` and the full name, as
/// `ollama push` does for a registry other than ollama.com.
///
/// # Errors
/// An invalid name, or the server's error (no such model, refused credentials).
pub fn run(args: &PushArgs) -> Result<(), CliError> {
    show_stream("/api/push", &args.name, args.insecure, Transfer::Push)?;
    if let Some(n) = ModelName::parse(&args.name) {
        println!("\nYou can find your model at:\n\n\t{n}\n");
    }
    Ok(())
}
