//! `kiln cp SOURCE DESTINATION`: `POST /api/copy`.

use kiln_core::request::CopyRequest;

use super::CliError;
use super::client::Client;

/// `kiln cp` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CpArgs {
    /// The model to copy.
    pub source: String,
    /// The new name.
    pub destination: String,
}

/// Runs `kiln cp`: `copied '<SOURCE>' to '<DESTINATION>'`, names as typed.
///
/// # Errors
/// The server's error (`model "x" not found`, an invalid name).
pub fn run(args: &CpArgs) -> Result<(), CliError> {
    let req = CopyRequest { source: args.source.clone(), destination: args.destination.clone() };
    Client::from_env()?.send_unit("POST", "/api/copy", &req)?;
    println!("copied '{}' to '{}'", args.source, args.destination);
    Ok(())
}
