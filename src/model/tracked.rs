//! Maps and sets that remember which keys changed since they were last asked: the engine's
//! state is held in them so that an incremental checkpoint (a delta, `pipeline::checkpoint`)
//! can write only what changed, without any call site having to remember to say so.
//!
//! Reading goes through `Deref` to the inner collection; there is no `DerefMut`, so every
//! change goes through a method here with the std name and signature, and each marks the keys
//! it may touch (conservatively: `get_mut` marks its key even if the caller changes nothing).
//! Serialised exactly as the inner collection (the dirty set is neither written nor compared).
//!
//! The dirty set is bounded by the collection: when it grows past twice the collection's size
//! plus [`SLACK`] (keys inserted and removed over and over), it is dropped and everything counts
//! as changed until the next `take_changes`, which then gives the whole collection (smaller
//! than half the keys it saw change, so still proportional to the changes).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, btree_map, hash_map};
use std::hash::Hash;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Keys a dirty set may hold beyond twice its collection's size before it gives up.
pub const SLACK: usize = 4096;

/// A collection whose changed keys are recorded (see the module doc).
pub struct Tracked<M: Keyed> {
    inner: M,
    dirty: HashSet<M::Key>,
    /// Everything counts as changed (the dirty set overflowed or the collection was cleared).
    all: bool,
}

/// What [`Tracked`] needs of the collection it wraps.
pub trait Keyed: Default {
    type Key: Clone + Eq + Hash + Ord;
    fn size(&self) -> usize;
}

impl<K: Clone + Eq + Hash + Ord, V, S: Default> Keyed for HashMap<K, V, S> {
    type Key = K;
    fn size(&self) -> usize {
        self.len()
    }
}

impl<K: Clone + Eq + Hash + Ord, V> Keyed for BTreeMap<K, V> {
    type Key = K;
    fn size(&self) -> usize {
        self.len()
    }
}

impl<T: Clone + Eq + Hash + Ord> Keyed for BTreeSet<T> {
    type Key = T;
    fn size(&self) -> usize {
        self.len()
    }
}

/// A tracked `HashMap`.
pub type TrackedHashMap<K, V> = Tracked<HashMap<K, V>>;
/// A tracked `BTreeMap`.
pub type TrackedMap<K, V> = Tracked<BTreeMap<K, V>>;
/// A tracked `BTreeSet`.
pub type TrackedSet<T> = Tracked<BTreeSet<T>>;

impl<M: Keyed> Tracked<M> {
    pub fn new(inner: M) -> Self {
        Tracked {
            inner,
            dirty: HashSet::new(),
            all: false,
        }
    }

    /// The keys changed since the last call, sorted; `None` when everything counts as changed.
    /// Starts a new round either way.
    pub fn take_changed(&mut self) -> Option<Vec<M::Key>> {
        let all = std::mem::take(&mut self.all);
        let dirty = std::mem::take(&mut self.dirty);
        if all {
            return None;
        }
        let mut keys: Vec<M::Key> = dirty.into_iter().collect();
        keys.sort_unstable();
        Some(keys)
    }

    /// Forgets what changed (a whole copy of the collection was just taken).
    pub fn forget_changed(&mut self) {
        self.all = false;
        self.dirty = HashSet::new();
    }

    /// How many keys are marked changed.
    pub fn changed(&self) -> usize {
        self.dirty.len()
    }

    /// Everything counts as changed until the next [`Tracked::take_changed`].
    pub fn mark_all(&mut self) {
        self.all = true;
        self.dirty = HashSet::new();
    }

    fn mark_owned(&mut self, key: M::Key) {
        if self.all {
            return;
        }
        self.dirty.insert(key);
        if self.dirty.len() > self.inner.size().saturating_mul(2).saturating_add(SLACK) {
            self.mark_all();
        }
    }

    /// Marks the stored key equal to `q`, cloning it only when it is not marked yet.
    fn mark_found<Q>(&mut self, q: &Q, found: impl FnOnce(&M, &Q) -> Option<M::Key>)
    where
        M::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.all || self.dirty.contains(q) {
            return;
        }
        if let Some(k) = found(&self.inner, q) {
            self.mark_owned(k);
        }
    }
}

/// What a state holding several tracked collections does with all of them alike.
pub trait Track {
    /// See [`Tracked::forget_changed`].
    fn forget_changed(&mut self);
    /// See [`Tracked::mark_all`].
    fn mark_all(&mut self);
    /// How many entries the collection holds.
    fn entries(&self) -> usize;
}

impl<M: Keyed> Track for Tracked<M> {
    fn forget_changed(&mut self) {
        Tracked::forget_changed(self);
    }
    fn mark_all(&mut self) {
        Tracked::mark_all(self);
    }
    fn entries(&self) -> usize {
        self.inner.size()
    }
}

impl<M: Keyed> Deref for Tracked<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.inner
    }
}

impl<M: Keyed> Default for Tracked<M> {
    fn default() -> Self {
        Tracked::new(M::default())
    }
}

impl<M: Keyed + Clone> Clone for Tracked<M> {
    fn clone(&self) -> Self {
        Tracked {
            inner: self.inner.clone(),
            dirty: self.dirty.clone(),
            all: self.all,
        }
    }
}

impl<M: Keyed + PartialEq> PartialEq for Tracked<M> {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl<M: Keyed + std::fmt::Debug> std::fmt::Debug for Tracked<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<M: Keyed + Serialize> Serialize for Tracked<M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

impl<'de, M: Keyed + Deserialize<'de>> Deserialize<'de> for Tracked<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        M::deserialize(d).map(Tracked::new)
    }
}

impl<'a, M: Keyed> IntoIterator for &'a Tracked<M>
where
    &'a M: IntoIterator,
{
    type Item = <&'a M as IntoIterator>::Item;
    type IntoIter = <&'a M as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&self.inner).into_iter()
    }
}

impl<M: Keyed> From<M> for Tracked<M> {
    fn from(inner: M) -> Self {
        Tracked::new(inner)
    }
}

/// The new values of changed keys and the keys removed, as a delta checkpoint holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Deserialize<'de>, V: Deserialize<'de>"
))]
pub struct Changes<K, V> {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(K, V)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<K>,
    /// `set` is the whole collection: it replaces what was there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole: bool,
}

impl<K, V> Default for Changes<K, V> {
    fn default() -> Self {
        Changes {
            set: Vec::new(),
            removed: Vec::new(),
            whole: false,
        }
    }
}

impl<K, V> Changes<K, V> {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty() && !self.whole
    }

    /// How many entries a restore reads: the values set and the keys removed.
    pub fn entries(&self) -> usize {
        self.set.len() + self.removed.len()
    }
}

macro_rules! map_methods {
    ($map:ident, $entry:ident, $($bound:tt)+) => {
        impl<K: Clone + Eq + Hash + Ord, V> Tracked<$map<K, V>> {
            pub fn get_mut<Q>(&mut self, q: &Q) -> Option<&mut V>
            where
                K: Borrow<Q>,
                Q: $($bound)+ + ?Sized,
            {
                self.mark_found(q, |m, q| m.get_key_value(q).map(|(k, _)| k.clone()));
                self.inner.get_mut(q)
            }

            pub fn insert(&mut self, k: K, v: V) -> Option<V> {
                self.mark_owned(k.clone());
                self.inner.insert(k, v)
            }

            pub fn remove<Q>(&mut self, q: &Q) -> Option<V>
            where
                K: Borrow<Q>,
                Q: $($bound)+ + ?Sized,
            {
                let (k, v) = self.inner.remove_entry(q)?;
                self.mark_owned(k);
                Some(v)
            }

            pub fn entry(&mut self, k: K) -> $entry::Entry<'_, K, V> {
                self.mark_owned(k.clone());
                self.inner.entry(k)
            }

            /// Marks only the entries `f` removes: `f` sees the values, it cannot change them
            /// (a sweep that changes values goes through `get_mut` for the ones it changes).
            pub fn retain(&mut self, mut f: impl FnMut(&K, &V) -> bool) {
                let gone: Vec<K> = self
                    .inner
                    .iter()
                    .filter(|(k, v)| !f(k, v))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in gone {
                    self.remove(&k);
                }
            }

            /// Marks every key it yields.
            pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
                let Tracked { inner, dirty, all } = self;
                let all = *all;
                inner.iter_mut().inspect(move |(k, _)| {
                    if !all && !dirty.contains(*k) {
                        dirty.insert((*k).clone());
                    }
                })
            }

            /// Marks every key it yields.
            pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
                self.iter_mut().map(|(_, v)| v)
            }

            pub fn clear(&mut self) {
                self.inner.clear();
                self.mark_all();
            }

            /// The changes since the last call; the whole map when everything counts as changed.
            pub fn take_changes(&mut self) -> Changes<K, V>
            where
                V: Clone,
            {
                let mut out = Changes::default();
                let Some(keys) = self.take_changed() else {
                    let mut set: Vec<(K, V)> =
                        self.inner.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    return Changes { set, removed: Vec::new(), whole: true };
                };
                for k in keys {
                    match self.inner.get(&k) {
                        Some(v) => out.set.push((k, v.clone())),
                        None => out.removed.push(k),
                    }
                }
                out
            }

            /// Applies changes taken by [`Self::take_changes`] (marking them, like any change).
            pub fn apply(&mut self, changes: Changes<K, V>) {
                if changes.whole {
                    self.clear();
                }
                for k in changes.removed {
                    self.remove(&k);
                }
                for (k, v) in changes.set {
                    self.insert(k, v);
                }
            }
        }
    };
}

map_methods!(HashMap, hash_map, Hash + Eq);
map_methods!(BTreeMap, btree_map, Ord + Hash + Eq);

impl<T: Clone + Eq + Hash + Ord> Tracked<BTreeSet<T>> {
    pub fn insert(&mut self, t: T) -> bool {
        self.mark_owned(t.clone());
        self.inner.insert(t)
    }

    pub fn remove<Q>(&mut self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + Hash + Eq + ?Sized,
    {
        match self.inner.take(q) {
            Some(t) => {
                self.mark_owned(t);
                true
            }
            None => false,
        }
    }

    pub fn pop_first(&mut self) -> Option<T> {
        let t = self.inner.pop_first()?;
        self.mark_owned(t.clone());
        Some(t)
    }

    pub fn clear(&mut self) {
        self.inner.clear();
        self.mark_all();
    }

    /// The elements added (`set`) and removed since the last call; all of them when
    /// everything counts as changed.
    pub fn take_changes(&mut self) -> Changes<T, ()> {
        let mut out = Changes::default();
        let Some(changed) = self.take_changed() else {
            let set = self.inner.iter().map(|t| (t.clone(), ())).collect();
            return Changes {
                set,
                removed: Vec::new(),
                whole: true,
            };
        };
        for t in changed {
            if self.inner.contains(&t) {
                out.set.push((t, ()));
            } else {
                out.removed.push(t);
            }
        }
        out
    }

    pub fn apply(&mut self, changes: Changes<T, ()>) {
        if changes.whole {
            self.clear();
        }
        for t in changes.removed {
            self.remove(&t);
        }
        for (t, ()) in changes.set {
            self.insert(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_recorded_and_replays_onto_a_copy() {
        let mut m: TrackedMap<String, u32> = TrackedMap::default();
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        let mut copy: BTreeMap<String, u32> = (*m).clone();
        m.take_changes();
        *m.get_mut("a").unwrap() += 10;
        *m.entry("c".into()).or_default() += 3;
        m.remove("b");
        m.retain(|k, _| k != "zzz");
        let ch = m.take_changes();
        assert_eq!(ch.set, vec![("a".into(), 11), ("c".into(), 3)]);
        assert_eq!(ch.removed, vec!["b".to_string()]);
        let mut back = TrackedMap::new(std::mem::take(&mut copy));
        back.apply(ch);
        assert_eq!(back, m);
        assert_eq!(m.take_changes(), Changes::default());
    }

    #[test]
    fn serialises_as_the_inner_map_and_compares_without_the_dirty_set() {
        let mut m: TrackedHashMap<String, u32> = TrackedHashMap::default();
        m.insert("x".into(), 1);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"x":1}"#);
        let back: TrackedHashMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.changed(), 0);
        assert_eq!(m.changed(), 1);
    }

    #[test]
    fn a_set_records_additions_and_removals() {
        let mut s: TrackedSet<u32> = TrackedSet::default();
        s.insert(1);
        s.insert(2);
        s.take_changes();
        s.pop_first();
        s.insert(3);
        let ch = s.take_changes();
        assert_eq!(ch.set, vec![(3, ())]);
        assert_eq!(ch.removed, vec![1]);
    }

    #[test]
    fn churn_past_the_bound_gives_the_whole_map_which_replaces_the_old_one() {
        let mut m: TrackedMap<u32, u32> = TrackedMap::default();
        m.insert(1_000_000, 0);
        let mut copy = m.clone();
        m.take_changes();
        for k in 0..(SLACK as u32 + 10) {
            m.insert(k, k);
            m.remove(&k);
        }
        m.insert(7, 7);
        m.remove(&1_000_000);
        assert!(m.changed() <= SLACK + 1);
        let ch = m.take_changes();
        assert!(ch.whole);
        assert_eq!(ch.set, vec![(7, 7)]);
        copy.apply(ch);
        assert_eq!(copy, m);
        m.insert(1, 1);
        assert_eq!(m.take_changes().set, vec![(1, 1)]);
    }
}
