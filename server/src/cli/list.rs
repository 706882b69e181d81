//! `kiln list` / `kiln ls [PREFIX]`: `GET /api/tags` as `ollama list`'s table.

use kiln_core::request::ListResponse;

use super::CliError;
use super::client::Client;
use super::format::{human_bytes, human_time, table};

/// `kiln list` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only models whose name starts with this (case-insensitive).
    pub prefix: Option<String>,
}

/// The table `ollama list` prints for `models`, as of `now`.
#[must_use]
pub fn render(models: &ListResponse, prefix: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> String {
    let prefix = prefix.unwrap_or("").to_lowercase();
    let rows: Vec<Vec<String>> = models
        .models
        .iter()
        .filter(|m| m.name.to_lowercase().starts_with(&prefix))
        .map(|m| {
            let modified = chrono::DateTime::parse_from_rfc3339(&m.modified_at)
                .map_or_else(|_| "Never".to_owned(), |t| human_time(t, now));
            vec![m.name.clone(), m.digest.chars().take(12).collect(), human_bytes(m.size), modified]
        })
        .collect();
    table(Some(&["NAME", "ID", "SIZE", "MODIFIED"]), &rows)
}

/// Runs `kiln list`.
///
/// # Errors
/// The server's error.
pub fn run(args: &ListArgs) -> Result<(), CliError> {
    let models: ListResponse = Client::from_env()?.get("/api/tags")?;
    print!("{}", render(&models, args.prefix.as_deref(), chrono::Utc::now()));
    Ok(())
}
