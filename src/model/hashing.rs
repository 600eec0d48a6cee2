//! The hash maps and sets of the engine's state and of the service model. Their keys come from
//! producers (fingerprints, alert names, CIs) or are made from them (incident ids), so the
//! hasher is keyed at random per map, as std's is, and built to resist inputs made to collide
//! (aHash); on the short keys of the new-alert path it costs a fraction of std's SipHash.
//! Iteration order is as unspecified as std's: nothing that reaches an output depends on it.

/// What every map and set here hashes with.
pub type RandomState = ahash::RandomState;

/// A hash map hashed with [`RandomState`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;

/// A hash set hashed with [`RandomState`].
pub type HashSet<T> = std::collections::HashSet<T, RandomState>;
