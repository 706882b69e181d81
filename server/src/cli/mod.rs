//! The command line client: `kiln create`, `list`/`ls`, `show`, `cp`, `rm`, `push` and `pull`, talking HTTP to
//! the server at `OLLAMA_HOST` (kiln's own, or a real Ollama) with `ollama`'s flags and output.

pub mod client;
pub mod cp;
pub mod create;
pub mod format;
pub mod list;
pub mod progress;
pub mod pull;
pub mod push;
pub mod rm;
pub mod show;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

/// A failed command; printed as `Error: <message>` (as cobra does), exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered an error, or could not be reached.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// A Modelfile that does not parse: `Modelfile:LINE:COLUMN: message` and the line.
    #[error("{0}")]
    Modelfile(String),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Message(String),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What a Ctrl-C interrupts, for its message.
static STAGE: AtomicU8 = AtomicU8::new(0);

/// The stages a Ctrl-C can interrupt.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub enum Stage {
    /// Nothing sent yet.
    Local = 0,
    /// A blob upload is in flight.
    Upload = 1,
    /// The create request is streaming.
    Create = 2,
    /// A push or pull is streaming.
    Transfer = 3,
}

/// Records what a Ctrl-C would interrupt now.
pub fn set_stage(stage: Stage) {
    STAGE.store(stage as u8, Ordering::Relaxed);
}

/// Ctrl-C (SIGINT): say what was cancelled and exit 130 (128 + SIGINT, as shells report it).
/// Exiting closes the connection, and the server cancels an upload or a create whose client
/// went away and removes what it wrote.
fn install_interrupt() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("sigint".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut sig) = signal(SignalKind::interrupt()) else {
                    let _ = ready_tx.send(());
                    return;
                };
                let _ = ready_tx.send(());
                sig.recv().await;
            }
            #[cfg(not(unix))]
            {
                let _ = ready_tx.send(());
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        let what = match STAGE.load(Ordering::Relaxed) {
            1 => "the upload; the server discards the partial blob",
            2 => "the create; the server stops it and removes what it wrote",
            3 => "the transfer; the server stops it (a pull keeps its partial download, to resume)",
            _ => "before anything was sent",
        };
        eprintln!("\ninterrupted: cancelled {what}");
        std::process::exit(130);
    });
    // The handler is in place before any request goes out, so a Ctrl-C never kills us mid-write
    // without the message.
    if spawned.is_ok() {
        let _ = ready_rx.recv();
    }
}

/// Runs one client command and maps its result to `ollama`'s exit status and `Error:` line.
pub fn run(command: impl FnOnce() -> Result<(), CliError>) -> ExitCode {
    install_interrupt();
    match command() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
