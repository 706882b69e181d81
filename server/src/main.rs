//! `kiln`: the server (`kiln serve`) and its tools.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = kiln_server::config::Cli::parse();
    kiln_server::run(cli)
}
