//! Command line and environment: `OLLAMA_HOST`, `OLLAMA_MODELS` (Ollama's own variables), the
//! quantizer device and the dashboard folder.

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
    /// Model store (Ollama's layout).
    #[arg(long, env = "OLLAMA_MODELS", default_value_os_t = default_models())]
    pub models: PathBuf,
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
