//! Maps and sets that remember which keys changed since they were last asked: the engine's
//! state is held in them so that an incremental checkpoint (a delta, `pipeline::checkpoint`)
//! can write only what changed, without any call site having to remember to say so.
//!
//! Reading goes through `Deref` to the inner collection; there is no `DerefMut`, so every
//! change goes through a method here with the std name and signature, and each marks the keys
//! it may touch (conservatively: `get_mut` marks its key even if the caller changes nothing).
//! Serialised exactly as the inner collection (the dirty set is neither written nor compared).
//!
//! A copy of the changes can be taken a few keys at a time ([`Tracked::begin_copy`],
//! [`Tracked::copy_some`], [`Tracked::end_copy`]) while the collection goes on changing: it is
//! the collection as it was when the copy began, since a change to a key not copied yet copies
//! that key's value first (copy before write). So a checkpoint of a large delta does not hold
//! its stage for the whole copy.
//!
//! The dirty set is bounded by the collection: when it grows past twice the collection's size
//! plus [`SLACK`] (keys inserted and removed over and over), it is dropped and everything counts
//! as changed until the next `take_changes`, which then gives the whole collection (smaller
//! than half the keys it saw change, so still proportional to the changes).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, btree_map, hash_map};
use std::hash::Hash;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hashing::{HashMap, HashSet};

/// Keys a dirty set may hold beyond twice its collection's size before it gives up.
pub const SLACK: usize = 4096;

/// A collection whose changed keys are recorded (see the module doc).
pub struct Tracked<M: Keyed> {
    inner: M,
    dirty: HashSet<M::Key>,
    /// Everything counts as changed (the dirty set overflowed or the collection was cleared).
    all: bool,
    /// A copy of the changes being taken (see the module doc).
    copy: Option<Box<Copying<M::Key, M::Value>>>,
}

/// A copy of the changes being taken: the keys whose value of when it began is still to be
/// copied, and what was copied.
struct Copying<K, V> {
    todo: HashSet<K>,
    out: Changes<K, V>,
}

/// What [`Tracked`] needs of the collection it wraps.
pub trait Keyed: Default {
    type Key: Clone + Eq + Hash + Ord;
    /// What a key maps to (`()` for a set).
    type Value: Clone;
    fn size(&self) -> usize;
    fn value(&self, k: &Self::Key) -> Option<&Self::Value>;
    fn keys(&self) -> impl Iterator<Item = &Self::Key>;
    fn pairs(&self) -> impl Iterator<Item = (&Self::Key, &Self::Value)>;
}

impl<K: Clone + Eq + Hash + Ord, V: Clone, S: Default + std::hash::BuildHasher> Keyed
    for std::collections::HashMap<K, V, S>
{
    type Key = K;
    type Value = V;
    fn size(&self) -> usize {
        self.len()
    }
    fn value(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn keys(&self) -> impl Iterator<Item = &K> {
        self.keys()
    }
    fn pairs(&self) -> impl Iterator<Item = (&K, &V)> {
        self.iter()
    }
}

impl<K: Clone + Eq + Hash + Ord, V: Clone> Keyed for BTreeMap<K, V> {
    type Key = K;
    type Value = V;
    fn size(&self) -> usize {
        self.len()
    }
    fn value(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn keys(&self) -> impl Iterator<Item = &K> {
        self.keys()
    }
    fn pairs(&self) -> impl Iterator<Item = (&K, &V)> {
        self.iter()
    }
}

impl<T: Clone + Eq + Hash + Ord> Keyed for BTreeSet<T> {
    type Key = T;
    type Value = ();
    fn size(&self) -> usize {
        self.len()
    }
    fn value(&self, t: &T) -> Option<&()> {
        self.contains(t).then_some(&())
    }
    fn keys(&self) -> impl Iterator<Item = &T> {
        self.iter()
    }
    fn pairs(&self) -> impl Iterator<Item = (&T, &())> {
        self.iter().map(|t| (t, &()))
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
            dirty: HashSet::default(),
            all: false,
            copy: None,
        }
    }

    /// The changes since the last call, as the collection is now: the new values of the keys
    /// changed and the keys removed, sorted; the whole collection when everything counts as
    /// changed. Starts a new round.
    pub fn take_changes(&mut self) -> Changes<M::Key, M::Value> {
        self.begin_copy();
        let mut out = self.end_copy();
        out.sort();
        out
    }

    /// Starts a copy of the changes since the last one, as the collection is now, and a new
    /// round of recording changes. Costs nothing but when everything counts as changed (then
    /// the whole collection is copied at once). Taken by [`Self::copy_some`] and
    /// [`Self::end_copy`]. A copy begun and not ended is dropped, with the changes it had yet to
    /// copy: a caller begins one only after the last one ended, or writes the whole state next.
    pub fn begin_copy(&mut self) {
        let all = std::mem::take(&mut self.all);
        let dirty = std::mem::take(&mut self.dirty);
        let mut c = Copying {
            todo: HashSet::default(),
            out: Changes::default(),
        };
        if all {
            c.out.set = self
                .inner
                .pairs()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            c.out.whole = true;
        } else {
            c.todo = dirty;
        }
        self.copy = Some(Box::new(c));
    }

    /// Starts a copy of the whole collection as it is now (`whole`), taken like
    /// [`Self::begin_copy`]'s a few keys at a time; costs a copy of the keys. Starts a new
    /// round of recording changes.
    pub fn begin_copy_all(&mut self) {
        self.all = false;
        self.dirty = HashSet::default();
        let todo = self.inner.keys().cloned().collect();
        let out = Changes {
            whole: true,
            ..Changes::default()
        };
        self.copy = Some(Box::new(Copying { todo, out }));
    }

    /// Copies at most `n` more keys of the copy begun; returns how many it copied (fewer than
    /// `n` when the copy is complete).
    pub fn copy_some(&mut self, n: usize) -> usize {
        let Tracked { inner, copy, .. } = self;
        let Some(c) = copy.as_deref_mut() else {
            return 0;
        };
        let mut copied = 0;
        for k in c.todo.extract_if(|_| true).take(n) {
            match inner.value(&k) {
                Some(v) => c.out.set.push((k, v.clone())),
                None => c.out.removed.push(k),
            }
            copied += 1;
        }
        copied
    }

    /// Completes the copy begun and returns it, unsorted (see [`Changes::sort`]); empty when
    /// none was begun.
    pub fn end_copy(&mut self) -> Changes<M::Key, M::Value> {
        self.copy_some(usize::MAX);
        self.copy.take().map(|c| c.out).unwrap_or_default()
    }

    /// Before the value of the key equal to `q` changes: a copy being taken that has yet to
    /// copy it copies it now, as it was.
    fn save<Q>(&mut self, q: &Q)
    where
        M::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Tracked { inner, copy, .. } = self;
        let Some(c) = copy.as_deref_mut() else {
            return;
        };
        let Some(k) = c.todo.take(q) else {
            return;
        };
        match inner.value(&k) {
            Some(v) => c.out.set.push((k, v.clone())),
            None => c.out.removed.push(k),
        }
    }

    /// Forgets what changed (a whole copy of the collection was just taken).
    pub fn forget_changed(&mut self) {
        self.all = false;
        self.dirty = HashSet::default();
    }

    /// How many keys are marked changed.
    pub fn changed(&self) -> usize {
        self.dirty.len()
    }

    /// Everything counts as changed until the next [`Tracked::take_changes`] (or copy begun).
    pub fn mark_all(&mut self) {
        self.all = true;
        self.dirty = HashSet::default();
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
    /// See [`Tracked::begin_copy`].
    fn begin_copy(&mut self);
    /// See [`Tracked::begin_copy_all`].
    fn begin_copy_all(&mut self);
    /// See [`Tracked::copy_some`].
    fn copy_some(&mut self, n: usize) -> usize;
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
    fn begin_copy(&mut self) {
        Tracked::begin_copy(self);
    }
    fn begin_copy_all(&mut self) {
        Tracked::begin_copy_all(self);
    }
    fn copy_some(&mut self, n: usize) -> usize {
        Tracked::copy_some(self, n)
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
            copy: None,
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

/// Writes `map` in the order of its keys, as an ordered map would (`serialize_with` of a
/// tracked hash map in a checkpointed state): checkpoints stay byte-identical from one run to
/// the next.
pub fn sorted<S, K, V>(map: &TrackedHashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    K: Clone + Eq + Hash + Ord + Serialize,
    V: Clone + Serialize,
{
    let mut pairs: Vec<(&K, &V)> = map.iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_map(pairs)
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

    /// Puts the keys in order (a copy taken a few keys at a time is in no order), so that the
    /// same changes always read the same.
    pub fn sort(&mut self)
    where
        K: Ord,
    {
        self.set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.removed.sort_unstable();
    }
}

macro_rules! map_methods {
    ($map:ident, $entry:ident, $($bound:tt)+) => {
        impl<K: Clone + Eq + Hash + Ord, V: Clone> Tracked<$map<K, V>> {
            pub fn get_mut<Q>(&mut self, q: &Q) -> Option<&mut V>
            where
                K: Borrow<Q>,
                Q: $($bound)+ + ?Sized,
            {
                self.save(q);
                self.mark_found(q, |m, q| m.get_key_value(q).map(|(k, _)| k.clone()));
                self.inner.get_mut(q)
            }

            /// The value of key `q`; when there is none, `make`'s, under a copy of `q`. Unlike
            /// [`entry`](Self::entry), a lookup that finds the entry copies no key (unless it
            /// is marked changed for the first time).
            pub fn get_or_insert_with<Q>(&mut self, q: &Q, make: impl FnOnce() -> V) -> &mut V
            where
                K: Borrow<Q>,
                Q: $($bound)+ + ToOwned<Owned = K> + ?Sized,
            {
                if !self.inner.contains_key(q) {
                    return self.entry(q.to_owned()).or_insert_with(make);
                }
                self.get_mut(q).expect("the key was found above")
            }

            pub fn insert(&mut self, k: K, v: V) -> Option<V> {
                self.save(&k);
                self.mark_owned(k.clone());
                self.inner.insert(k, v)
            }

            pub fn remove<Q>(&mut self, q: &Q) -> Option<V>
            where
                K: Borrow<Q>,
                Q: $($bound)+ + ?Sized,
            {
                self.save(q);
                let (k, v) = self.inner.remove_entry(q)?;
                self.mark_owned(k);
                Some(v)
            }

            pub fn entry(&mut self, k: K) -> $entry::Entry<'_, K, V> {
                self.save(&k);
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

            /// Marks every key it yields (and copies it first for a copy being taken).
            pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
                let Tracked { inner, dirty, all, copy } = self;
                let all = *all;
                inner.iter_mut().inspect(move |(k, v)| {
                    if let Some(c) = copy.as_deref_mut()
                        && let Some(k) = c.todo.take(*k)
                    {
                        c.out.set.push((k, (**v).clone()));
                    }
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
                self.copy_some(usize::MAX);
                self.inner.clear();
                self.mark_all();
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
        self.save(&t);
        self.mark_owned(t.clone());
        self.inner.insert(t)
    }

    pub fn remove<Q>(&mut self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + Hash + Eq + ?Sized,
    {
        self.save(q);
        match self.inner.take(q) {
            Some(t) => {
                self.mark_owned(t);
                true
            }
            None => false,
        }
    }

    pub fn pop_first(&mut self) -> Option<T> {
        if self.copy.is_some()
            && let Some(t) = self.inner.first().cloned()
        {
            self.save(&t);
        }
        let t = self.inner.pop_first()?;
        self.mark_owned(t.clone());
        Some(t)
    }

    pub fn clear(&mut self) {
        self.copy_some(usize::MAX);
        self.inner.clear();
        self.mark_all();
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
    fn get_or_insert_with_makes_only_what_is_missing_and_records_both() {
        let mut m: TrackedHashMap<String, u32> = TrackedHashMap::default();
        m.insert("a".into(), 1);
        m.take_changes();
        *m.get_or_insert_with("a", || unreachable!("a is there")) += 10;
        *m.get_or_insert_with("b", || 5) += 1;
        let mut ch = m.take_changes();
        ch.sort();
        assert_eq!(ch.set, vec![("a".into(), 11), ("b".into(), 6)]);
        assert!(ch.removed.is_empty());
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

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Bump(u8),
        Entry(u8),
        RetainOdd,
        IterMut,
        Clear,
        /// Copy this many more keys of the copy begun.
        Copy(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0u8..40, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0u8..40).prop_map(Op::Remove),
            3 => (0u8..40).prop_map(Op::Bump),
            2 => (0u8..40).prop_map(Op::Entry),
            1 => Just(Op::RetainOdd),
            1 => Just(Op::IterMut),
            1 => Just(Op::Clear),
            4 => (0usize..5).prop_map(Op::Copy),
        ]
    }

    fn run_map(m: &mut TrackedHashMap<u8, u32>, ops: &[Op]) {
        for op in ops {
            match *op {
                Op::Insert(k, v) => {
                    m.insert(k, v);
                }
                Op::Remove(k) => {
                    m.remove(&k);
                }
                Op::Bump(k) => {
                    if let Some(v) = m.get_mut(&k) {
                        *v = v.wrapping_add(1);
                    }
                }
                Op::Entry(k) => *m.entry(k).or_default() += 7,
                Op::RetainOdd => m.retain(|k, _| k % 2 == 1),
                Op::IterMut => m.iter_mut().take(3).for_each(|(_, v)| *v ^= 1),
                Op::Clear => m.clear(),
                Op::Copy(n) => {
                    m.copy_some(n);
                }
            }
        }
    }

    fn run_set(s: &mut TrackedSet<u8>, ops: &[Op]) {
        for op in ops {
            match *op {
                Op::Insert(k, _) | Op::Entry(k) => {
                    s.insert(k);
                }
                Op::Remove(k) => {
                    s.remove(&k);
                }
                Op::Bump(_) | Op::IterMut => {
                    s.pop_first();
                }
                Op::RetainOdd => {}
                Op::Clear => s.clear(),
                Op::Copy(n) => {
                    s.copy_some(n);
                }
            }
        }
    }

    proptest::proptest! {
        /// A copy taken a few keys at a time while the collection goes on changing is the
        /// collection as it was when the copy began: applied to the previous copy it gives that
        /// collection, and the next copy gives the collection after the changes made meanwhile.
        #[test]
        fn a_copy_taken_bit_by_bit_is_the_collection_as_it_was_when_it_began(
            before in proptest::collection::vec(op(), 0..40),
            between in proptest::collection::vec(op(), 0..40),
            during in proptest::collection::vec(op(), 0..60),
        ) {
            let mut m = TrackedHashMap::default();
            run_map(&mut m, &before);
            let mut base = TrackedHashMap::new((*m).clone());
            m.take_changes();
            run_map(&mut m, &between);
            let at_begin = (*m).clone();
            m.begin_copy();
            run_map(&mut m, &during);
            let mut copy = m.end_copy();
            copy.sort();
            base.apply(copy);
            proptest::prop_assert_eq!(&*base, &at_begin);
            base.apply(m.take_changes());
            proptest::prop_assert_eq!(&*base, &*m);

            let mut s = TrackedSet::default();
            run_set(&mut s, &before);
            let mut base = TrackedSet::new((*s).clone());
            s.take_changes();
            run_set(&mut s, &between);
            let at_begin = (*s).clone();
            s.begin_copy();
            run_set(&mut s, &during);
            base.apply(s.end_copy());
            proptest::prop_assert_eq!(&*base, &at_begin);
            base.apply(s.take_changes());
            proptest::prop_assert_eq!(&*base, &*s);

            // A copy of the whole collection, taken the same way, replaces what was there.
            let at_begin = (*m).clone();
            m.begin_copy_all();
            run_map(&mut m, &during);
            let mut copy = m.end_copy();
            copy.sort();
            proptest::prop_assert!(copy.whole);
            let mut other = TrackedHashMap::default();
            run_map(&mut other, &before);
            other.apply(copy);
            proptest::prop_assert_eq!(&*other, &at_begin);
            other.apply(m.take_changes());
            proptest::prop_assert_eq!(&*other, &*m);
        }
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
