//! Shared server state: the store and the quantizer settings.

use std::sync::Arc;

use crate::config::ServeArgs;
use crate::store::Store;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The model store.
    pub store: Arc<Store>,
    /// Quantizer threads.
    pub threads: usize,
}

impl AppState {
    /// Builds the state for `kiln serve`.
    #[must_use]
    pub fn new(store: Store, args: &ServeArgs) -> Self {
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        Self {
            store: Arc::new(store),
            threads,
        }
    }
}
