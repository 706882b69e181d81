//! kiln-server: Ollama's create API and model store, with byte-exact quantizers.
//!
//! A `POST /api/create` flows: [`http`] (route, JSON extraction) → [`api::create`] →
//! `kiln_core::validate` (→ `CreatePlan`) → [`create`] (resolve sources, quantize, layers,
//! config, manifest) → [`store`] (blobs and manifests, atomic writes) — with progress events
//! streamed back through [`http::ndjson`].

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod convert;
pub mod create;
pub mod fsck;
pub mod gguf;
pub mod gpu;
pub mod http;
pub mod kernels;
pub mod quantize;
pub mod registry;
pub mod state;
pub mod store;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Runs the command line.
#[must_use]
pub fn run(cli: config::Cli) -> ExitCode {
    // The client commands print as `ollama` does, without the server's log setup.
    match &cli.command {
        config::Command::Create(args) => return cli::run(|| cli::create::run(args)),
        config::Command::List(args) => return cli::run(|| cli::list::run(args)),
        config::Command::Show(args) => return cli::run(|| cli::show::run(args)),
        config::Command::Cp(args) => return cli::run(|| cli::cp::run(args)),
        config::Command::Rm(args) => return cli::run(|| cli::rm::run(args)),
        config::Command::Push(args) => return cli::run(|| cli::push::run(args)),
        config::Command::Pull(args) => return cli::run(|| cli::pull::run(args)),
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        config::Command::Serve(args) => serve(args),
        config::Command::Bench(args) => bench::run(&args),
        config::Command::Fsck(args) => match fsck::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        config::Command::Create(_)
        | config::Command::List(_)
        | config::Command::Show(_)
        | config::Command::Cp(_)
        | config::Command::Rm(_)
        | config::Command::Push(_)
        | config::Command::Pull(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kiln: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: config::ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Before anything opens files: a server that runs out of descriptors stops answering.
    let fd_cap = http::serve::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        let addr = config::parse_host(&args.host)?;
        let store = store::Store::open_models(&args.models, args.cache.as_deref())?;
        let mut state = state::AppState::new(store, &args)?;
        state.loopback = addr.ip().is_loopback();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let limits = std::sync::Arc::clone(&state.limits);
        let max_connections = limits.max_connections.unwrap_or(fd_cap);
        tracing::info!(address = %local, models = %args.models.display(), max_connections, "kiln listening");
        // Tests and scripts read this line to learn the port when they bind port 0.
        println!("kiln listening on {local}");
        let app = http::app(state);
        http::serve::serve(listener, app, limits, max_connections, shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    // Work that outlived the shutdown deadline (a quantization on a blocking thread) is not
    // waited for: its temp files are swept at the next start.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
