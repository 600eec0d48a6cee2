//! Readiness, shared between the pipeline's stages (which set it) and the HTTP server's
//! `/readyz` (which reports it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness shared between the pipeline (which sets it) and the server (which reports it).
#[derive(Debug, Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
