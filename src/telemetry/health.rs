//! Readiness, shared between the pipeline's stages and Kafka clients (which set it) and the HTTP
//! server's `/readyz` (which reports it, with the reasons when not ready).
//!
//! Ready means: the pipeline started and its consumers are fetching (`set_ready`), and no
//! condition is open. A condition is a named reason to be not ready that some part of the shell
//! noticed and will clear itself: topics not created yet, a batch the broker has not acknowledged
//! for too long, a credential the broker refuses. Naming them lets `/readyz` say why, and lets
//! the part that saw a problem log it once per streak instead of once per retry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Readiness shared between the pipeline (which sets it) and the server (which reports it).
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ready: AtomicBool,
    /// `conditions.len()`, read without the lock on the hot path.
    open: AtomicUsize,
    conditions: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// Whether the pipeline is started and its consumers are fetching.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Relaxed);
    }

    /// Ready: started, fetching, and no condition open.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed) && self.inner.open.load(Ordering::Relaxed) == 0
    }

    /// Opens (or updates) condition `key` with `reason`. Returns true when `key` was not open
    /// before: the caller logs the first occurrence of a streak and stays quiet on repeats.
    pub fn set_condition(&self, key: &str, reason: impl Into<String>) -> bool {
        let mut c = self.lock();
        let new = c.insert(key.to_string(), reason.into()).is_none();
        self.inner.open.store(c.len(), Ordering::Relaxed);
        new
    }

    /// Closes condition `key`. Returns true when it was open.
    pub fn clear_condition(&self, key: &str) -> bool {
        if self.inner.open.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut c = self.lock();
        let was = c.remove(key).is_some();
        self.inner.open.store(c.len(), Ordering::Relaxed);
        was
    }

    /// Closes every condition whose key starts with `prefix`; returns how many were open.
    pub fn clear_conditions(&self, prefix: &str) -> usize {
        if self.inner.open.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut c = self.lock();
        let before = c.len();
        c.retain(|k, _| !k.starts_with(prefix));
        self.inner.open.store(c.len(), Ordering::Relaxed);
        before - c.len()
    }

    /// Whether condition `key` is open.
    pub fn has_condition(&self, key: &str) -> bool {
        self.inner.open.load(Ordering::Relaxed) > 0 && self.lock().contains_key(key)
    }

    /// Why d2c is not ready, one line per reason (empty when ready).
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.inner.ready.load(Ordering::Relaxed) {
            out.push("pipeline: not yet connected to Kafka and consuming".to_string());
        }
        out.extend(self.lock().iter().map(|(k, v)| format!("{k}: {v}")));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.inner
            .conditions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_makes_it_unready_with_its_reason_until_cleared() {
        let h = Health::default();
        h.set_ready(true);
        assert!(h.is_ready());
        assert!(h.set_condition("ingest.stuck", "retrying one batch for 45s"));
        assert!(
            !h.set_condition("ingest.stuck", "retrying one batch for 50s"),
            "a repeat is not a new streak"
        );
        assert!(!h.is_ready());
        assert_eq!(
            h.reasons(),
            vec!["ingest.stuck: retrying one batch for 50s"]
        );
        assert!(h.clear_condition("ingest.stuck"));
        assert!(!h.clear_condition("ingest.stuck"));
        assert!(h.is_ready());
        h.set_condition("kafka.auth", "x");
        h.set_condition("kafka.tls", "y");
        assert_eq!(h.clear_conditions("kafka."), 2);
        assert!(h.is_ready());
    }
}
