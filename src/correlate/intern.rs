//! Shared text of the correlator's alerts: the alert names, sources, CIs and services that a
//! million active alerts repeat are kept once each and shared (`Arc<str>`), instead of one heap
//! string per alert. Derived, never checkpointed; bounded (see [`MAX_INTERNED`]).

use crate::model::hashing::HashSet;
use std::sync::Arc;

/// Most distinct strings shared at once: room for every CI and service of a large service
/// model (50,000 CIs and 10,000 services in the scale bench) and the alert names and sources.
/// Past it, strings no alert uses any more are dropped; strings still in use stay, and new
/// ones are kept unshared (one copy per alert, as if there were no sharing) until room frees.
pub const MAX_INTERNED: usize = 1 << 17;

/// The shared strings, each once. Which strings are shared never shows in an output: a shared
/// and an unshared copy of a string are the same text.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
    /// Strings refused a place since the last sweep: a full set is swept for strings no alert
    /// uses only once this many reach half the cap, so a set full of strings in use costs a
    /// new alert a hash lookup, not a walk of the set.
    refused: usize,
}

/// A cache says nothing about the state beyond what the rest of it says.
impl PartialEq for Interner {
    fn eq(&self, _: &Interner) -> bool {
        true
    }
}

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let fresh: Arc<str> = Arc::from(s);
        self.keep(&fresh);
        fresh
    }

    /// The shared copy of `s` when it is one already; else makes `s` the shared copy.
    pub fn share(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.strings.get(&**s) {
            return shared.clone();
        }
        self.keep(s);
        s.clone()
    }

    /// Keeps `fresh` (not in the set) as the shared copy of its text if there is room; a full
    /// set is swept for strings no alert uses once enough were refused.
    fn keep(&mut self, fresh: &Arc<str>) {
        if self.strings.len() >= MAX_INTERNED {
            self.refused += 1;
            if self.refused < MAX_INTERNED / 2 {
                return;
            }
            self.refused = 0;
            // Only the set holds these: no alert uses them any more.
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            if self.strings.len() >= MAX_INTERNED {
                return;
            }
        }
        self.strings.insert(fresh.clone());
    }

    /// How many strings are shared (the gauge of this bounded set).
    pub fn count(&self) -> usize {
        self.strings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_share_one_copy() {
        let mut i = Interner::default();
        let a = i.get("checkout");
        let b = i.get("checkout");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(i.count(), 1);
    }

    #[test]
    fn stays_within_the_cap_and_frees_strings_no_one_uses() {
        let mut i = Interner::default();
        let kept: Vec<Arc<str>> = (0..MAX_INTERNED).map(|n| i.get(&n.to_string())).collect();
        // Full of strings in use: a new one is not shared, and the set does not grow.
        let extra = i.get("extra");
        assert_eq!(&*extra, "extra");
        assert_eq!(i.count(), MAX_INTERNED);
        drop(kept);
        // Once enough were refused, the strings no one uses are dropped and sharing resumes.
        for n in 0..MAX_INTERNED / 2 {
            i.get(&format!("new-{n}"));
        }
        assert!(i.count() < MAX_INTERNED / 2 + 2, "{}", i.count());
        let a = i.get("again");
        assert!(Arc::ptr_eq(&a, &i.get("again")));
    }
}
