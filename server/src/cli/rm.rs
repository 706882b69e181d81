//! `kiln rm MODEL…`: unload (as `ollama rm` does, for a real Ollama), then `DELETE /api/delete`.

use kiln_core::request::DeleteRequest;

use super::CliError;
use super::client::{Client, ClientError};

/// `kiln rm` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    /// The models to delete.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Runs `kiln rm`: `deleted '<name>'` per model; the first error stops.
///
/// # Errors
/// The server's error (`model 'x' not found`).
pub fn run(args: &RmArgs) -> Result<(), CliError> {
    let client = Client::from_env()?;
    for name in &args.names {
        // Ollama unloads a running model first; kiln runs none and has no /api/generate, whose
        // 404 is not worth a warning.
        let unload = serde_json::json!({"model": name, "keep_alive": 0});
        if let Err(ClientError::Server(msg)) = client.send_unit("POST", "/api/generate", &unload) {
            let lower = msg.to_lowercase();
            if !lower.is_empty() && !lower.contains("not found") {
                eprintln!("Warning: unable to stop model '{name}'");
            }
        }
        // `name`, the field every Ollama version reads.
        let req = DeleteRequest { model: None, name: Some(name.clone()) };
        client.send_unit("DELETE", "/api/delete", &req)?;
        println!("deleted '{name}'");
    }
    Ok(())
}
