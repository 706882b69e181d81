//! Shared server state: the store and the quantizer settings.

use std::sync::Arc;

use crate::config::ServeArgs;
use crate::quantize::backend::Quantizer;
use crate::store::Store;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The model store.
    pub store: Arc<Store>,
    /// The quantizer (GPU or CPU pool).
    pub quantizer: Arc<Quantizer>,
    /// The dashboard folder given with `--ui`; `None` serves the copy built into the binary.
    pub ui: Option<std::path::PathBuf>,
    /// Whether kiln listens on a loopback address (then the `Host` header is checked).
    pub loopback: bool,
    /// This machine's hostname, an allowed `Host`.
    pub hostname: Option<String>,
    /// Extra CORS origins (`OLLAMA_ORIGINS`).
    pub origins: String,
    /// Timeouts and caps against slow and hostile clients.
    pub limits: Arc<crate::http::limits::Limits>,
}

impl AppState {
    /// Builds the state for `kiln serve`, choosing the quantizer device (which runs the GPU
    /// self-test).
    ///
    /// # Errors
    /// When no thread pool can be built, or `--device gpu` finds no usable GPU.
    pub fn new(store: Store, args: &ServeArgs) -> std::io::Result<Self> {
        let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kiln-quantize-{i}"))
            .build()
            .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let quantizer = Quantizer::start(args.device, Arc::new(pool), threads).map_err(std::io::Error::other)?;
        Ok(Self {
            store: Arc::new(store),
            quantizer: Arc::new(quantizer),
            ui: args.ui.clone(),
            loopback: true,
            hostname: crate::http::guard::machine_hostname(),
            origins: args.origins.clone(),
            limits: Arc::new(crate::http::limits::Limits::new(&args.limits)),
        })
    }
}
