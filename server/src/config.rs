//! Command line and environment: `OLLAMA_HOST`, `OLLAMA_MODELS` (Ollama's own variables; a
//! store folder, or `s3://bucket/prefix` with its local cache), the quantizer device and the
//! dashboard folder.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kiln: create Ollama models and quantize them, byte-identical to llama.cpp.
#[derive(Debug, Parser)]
#[command(name = "kiln", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Measure quantizer throughput and end-to-end creates.
    Bench(crate::bench::BenchArgs),
    /// Check a model store for damage; `--repair` removes orphans and temp files.
    Fsck(crate::fsck::FsckArgs),
    /// Create a model from a Modelfile on the server at `OLLAMA_HOST` (as `ollama create`).
    Create(crate::cli::create::CreateArgs),
    /// List the server's models (as `ollama list`).
    #[command(alias = "ls")]
    List(crate::cli::list::ListArgs),
    /// Show a model's details, Modelfile, parameters, template, system message or license.
    Show(crate::cli::show::ShowArgs),
    /// Copy a model under a new name.
    Cp(crate::cli::cp::CpArgs),
    /// Delete models.
    Rm(crate::cli::rm::RmArgs),
    /// Push a model to a registry (as `ollama push`).
    Push(crate::cli::push::PushArgs),
    /// Pull a model from a registry (as `ollama pull`).
    Pull(crate::cli::pull::PullArgs),
}

/// Which quantizer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Device {
    /// The GPU if one passes the self-test, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The GPU (a software adapter such as lavapipe too); refuse to start without one or when
    /// its self-test fails.
    Gpu,
}

/// `kiln serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host`, `host:port`, `http://host:port`).
    #[arg(long, env = "OLLAMA_HOST", default_value = "127.0.0.1:11434")]
    pub host: String,
    /// Model store (Ollama's layout): a folder, or `s3://bucket/prefix` for an S3-compatible
    /// bucket (endpoint and credentials from `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
    #[arg(long, env = "OLLAMA_MODELS", default_value_os_t = default_models())]
    pub models: PathBuf,
    /// With an `s3://` store: the local folder caching its blobs (verified copies) and temp
    /// files, one server per folder [default: `$XDG_CACHE_HOME/kiln/s3/<bucket>/<prefix>`, else
    /// `~/.cache/kiln/s3/…`].
    #[arg(long, env = "KILN_CACHE")]
    pub cache: Option<PathBuf>,
    /// Quantizer device.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    /// Quantizer threads (default: all cores).
    #[arg(long, env = "KILN_THREADS")]
    pub threads: Option<usize>,
    /// Serve the dashboard from this folder (as `trunk build` writes it) instead of the copy built
    /// into the binary: for working on the dashboard without rebuilding kiln.
    #[arg(long, env = "KILN_UI")]
    pub ui: Option<PathBuf>,
    /// Extra allowed CORS origins, comma-separated (`*` wildcards), added to Ollama's defaults.
    #[arg(long, env = "OLLAMA_ORIGINS", default_value = "")]
    pub origins: String,
    /// Timeouts and caps against slow and hostile clients.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Timeouts and caps of `kiln serve` (README, "Limits").
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Seconds a client has to send a whole request head (from connecting, or from the first
    /// byte of a later request on the connection) before it is disconnected.
    #[arg(long, env = "KILN_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECS")]
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection stays open between requests.
    #[arg(long, env = "KILN_IDLE_TIMEOUT", default_value_t = 30, value_name = "SECS")]
    pub idle_timeout: u64,
    /// Seconds a request body (JSON or blob upload) may go without a byte before the request
    /// fails and what it buffered or wrote is freed.
    #[arg(long, env = "KILN_BODY_TIMEOUT", default_value_t = 30, value_name = "SECS")]
    pub body_timeout: u64,
    /// MiB of JSON request bodies buffered at once across all connections; a body that would
    /// go over gets `503`.
    #[arg(long, env = "KILN_JSON_BUFFER_MIB", default_value_t = 256, value_name = "MIB")]
    pub json_buffer_mib: u64,
    /// Open connections served at once; more are answered `503` and closed (default: half of
    /// the file-descriptor limit, which kiln raises to its hard limit at start-up).
    #[arg(long, env = "KILN_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight before cancelling them.
    #[arg(long, env = "KILN_SHUTDOWN_TIMEOUT", default_value_t = 10, value_name = "SECS")]
    pub shutdown_timeout: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        Self {
            header_timeout: 10,
            idle_timeout: 30,
            body_timeout: 30,
            json_buffer_mib: 256,
            max_connections: None,
            shutdown_timeout: 10,
        }
    }
}

fn default_models() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".ollama/models"), |h| PathBuf::from(h).join(".ollama/models"))
}

/// Parses `OLLAMA_HOST` the way Ollama does: optional scheme, default port 11434 (80/443 with an
/// explicit http/https scheme and no port), bare IPv6 allowed.
///
/// # Errors
/// When the value names no address.
pub fn parse_host(raw: &str) -> std::io::Result<SocketAddr> {
    let raw = raw.trim();
    let (rest, default_port) = match raw.split_once("://") {
        Some(("https", r)) => (r, 443),
        Some((_, r)) => (r, 80),
        None => (raw, 11434),
    };
    let rest = rest.split('/').next().unwrap_or("");
    let host_port = if rest.is_empty() {
        format!("127.0.0.1:{default_port}")
    } else if rest.starts_with('[') {
        if rest.contains("]:") { rest.to_owned() } else { format!("{rest}:{default_port}") }
    } else if rest.matches(':').count() > 1 {
        format!("[{rest}]:{default_port}")
    } else if let Some((h, p)) = rest.rsplit_once(':') {
        format!("{}:{p}", if h.is_empty() { "127.0.0.1" } else { h })
    } else {
        format!("{rest}:{default_port}")
    };
    host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no address for {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(parse_host("127.0.0.1:11434").unwrap().port(), 11434);
        assert_eq!(parse_host("127.0.0.1").unwrap().port(), 11434);
        assert_eq!(parse_host("http://127.0.0.1").unwrap().port(), 80);
        assert_eq!(parse_host("http://127.0.0.1:9/x").unwrap().port(), 9);
        assert_eq!(parse_host(":0").unwrap().port(), 0);
        assert!(parse_host("::1").unwrap().is_ipv6());
        assert!(parse_host("[::1]:5").unwrap().is_ipv6());
    }
}
