//! What the engine remembers between inputs, serialisable so the shell can checkpoint it and
//! restore it after a crash or a rebalance: the correlation state, what was last published of
//! every incident and RFC, the clock, the raw-input positions applied, silences and suppressed
//! alerts, the security incidents, problems, and RFC runs awaiting verification.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::correlate;
use crate::model::tracked::{Changes, Track, TrackedHashMap, TrackedMap, sorted};
use crate::model::{IncidentStatus, Priority, Rfc};
use crate::suppress::{InhibitState, Silence, SuppressReason};

/// Most suppressed alerts remembered per engine: past it, the least recently seen are forgotten
/// down to 90% of it.
pub const MAX_SUPPRESSED: usize = 10_000;

/// An alert whose events were suppressed: kept so that suppression stays visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressedAlert {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub reason: SuppressReason,
    /// The silence id, maintenance window name or inhibiting rule and alert.
    pub by: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Everything the engine remembers; serialisable so it can be checkpointed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EngineState {
    pub correlation: correlate::State,
    /// What was last published of every incident still remembered. A hash map: read on every
    /// build, never walked in order; written in key order ([`sorted`]).
    #[serde(serialize_with = "sorted")]
    pub published: TrackedHashMap<String, Published>,
    /// Ids of RFCs already raised per incident, so each is raised once.
    pub rfcs: TrackedMap<String, BTreeSet<String>>,
    /// The latest event or tick time seen: the engine's notion of "now".
    pub clock: Option<DateTime<Utc>>,
    /// Per raw-topic partition, the position of the last event applied: events at or before it
    /// are redeliveries (after a restart of the ingest stage) and are skipped.
    pub origins: BTreeMap<i32, (i64, u32)>,
    /// Alerts whose events were suppressed, by fingerprint (at most [`MAX_SUPPRESSED`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed: TrackedMap<String, SuppressedAlert>,
    /// Firing alerts that may inhibit others (see `[[suppression.inhibit]]`), as of the last
    /// [`Engine::checkpoint_state`].
    #[serde(default)]
    pub inhibit: InhibitState,
    /// Silences added at run time (`POST /api/v1/silences`), by id, so a restored engine has
    /// them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub silences: BTreeMap<String, Silence>,
    /// The last published version of every RFC in `rfcs`, by RFC id, so a decision on it
    /// (`POST /api/v1/changes/{id}/decision`) can publish its next version. Forgotten with its
    /// incident.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: TrackedMap<String, Rfc>,
    /// Security incidents (`correlate::security`); absent from older checkpoints.
    #[serde(default, skip_serializing_if = "correlate::security::State::is_empty")]
    pub security: correlate::security::State,
    /// Incidents whose next version waits (`correlation.group_wait` before the first,
    /// `group_interval` after), by id; absent from older checkpoints.
    /// A hash map, like `published`.
    #[serde(
        default,
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "sorted"
    )]
    pub pending: TrackedHashMap<String, Pending>,
    /// The revenue-at-risk account of every incident built (published or not), by id, so its
    /// cost does not depend on which versions were published.
    /// A hash map, like `published`.
    #[serde(
        default,
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "sorted"
    )]
    pub accounts: TrackedHashMap<String, Account>,
    /// Problems, incidents counted toward them, and links (`problem`); absent from older
    /// checkpoints. Bounded by `[problem]` (see `problem`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub problems: crate::problem::State,
    /// Implemented RFCs awaiting verification and escalated incidents; absent from older
    /// checkpoints.
    #[serde(default, skip_serializing_if = "super::RunState::is_empty")]
    pub runs: super::RunState,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// An incident's next version, held back until it is due (see `engine::settle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// When the engine first built the incident (event time): the group wait's cap counts
    /// from it.
    pub since: DateTime<Utc>,
    /// Before the first version: the root-cause service of the latest build, and since when
    /// (event time) it has been the root cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub root_since: DateTime<Utc>,
    /// When the version is due: the time of its `Timer::Publish`, if one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
}

/// Revenue at risk per minute since `since`, and the cost accumulated before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub at_risk: f64,
    pub cost: f64,
    pub since: DateTime<Utc>,
}

/// The last published version of an incident, as much as the engine needs of it: the version,
/// what the gauges count, and hashes of its substance to tell whether a new version is due and
/// what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub version: u32,
    pub status: IncidentStatus,
    pub priority: Priority,
    pub capabilities: Vec<String>,
    pub substance: u64,
    /// Whether that version was acknowledged.
    #[serde(default)]
    pub acknowledged: bool,
    /// Revenue at risk per minute from that version on, and the cost accumulated up to it
    /// (`cost_at`), so the next version adds what the risk cost in between.
    #[serde(default)]
    pub at_risk: f64,
    #[serde(default)]
    pub cost: f64,
    #[serde(default)]
    pub cost_at: Option<DateTime<Utc>>,
    /// The hash of each aspect of that version (`engine::aspects`), to list what the next one
    /// changes; empty in older checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aspects: Vec<u64>,
    /// When that version was published (the engine's clock): the next waits for
    /// `correlation.group_interval` after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
}

/// Where an event came from: its raw record's partition and offset, and its index among the
/// events of that record (one Alertmanager payload carries many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
    pub index: u32,
}

/// What changed in an [`EngineState`] since the previous checkpoint (full or delta): the new
/// values of the changed keys of every map that grows with the input, the keys removed, and
/// the rest of the state whole (small or bounded, see [`Whole`]). Applied to the state of the
/// previous checkpoint, it gives the state of this one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EngineDelta {
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub alerts: Changes<Arc<str>, Box<correlate::AlertState>>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub groups: Changes<Arc<str>, correlate::Group>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub open: Changes<String, BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub timers: Changes<(DateTime<Utc>, correlate::Timer), ()>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub published: Changes<String, Published>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub rfcs: Changes<String, BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub suppressed: Changes<String, SuppressedAlert>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub changes: Changes<String, Rfc>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub pending: Changes<String, Pending>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub accounts: Changes<String, Account>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub problems: Changes<String, crate::problem::Entry>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub problem_candidates: Changes<String, crate::problem::Candidate>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub problem_members: Changes<String, crate::problem::Member>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub security_incidents: Changes<String, correlate::security::SecurityIncident>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub security_open: Changes<String, BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub security_timers: Changes<(DateTime<Utc>, correlate::security::Timer), ()>,
    pub whole: Whole,
}

impl EngineDelta {
    /// How many entries of the tracked collections a restore reads from this delta.
    pub fn entries(&self) -> usize {
        [
            self.alerts.entries(),
            self.groups.entries(),
            self.open.entries(),
            self.timers.entries(),
            self.published.entries(),
            self.rfcs.entries(),
            self.suppressed.entries(),
            self.changes.entries(),
            self.pending.entries(),
            self.accounts.entries(),
            self.problems.entries(),
            self.problem_candidates.entries(),
            self.problem_members.entries(),
            self.security_incidents.entries(),
            self.security_open.entries(),
            self.security_timers.entries(),
        ]
        .iter()
        .sum()
    }

    /// Puts every collection's keys in order (see [`Changes::sort`]).
    pub fn sort(&mut self) {
        self.alerts.sort();
        self.groups.sort();
        self.open.sort();
        self.timers.sort();
        self.published.sort();
        self.rfcs.sort();
        self.suppressed.sort();
        self.changes.sort();
        self.pending.sort();
        self.accounts.sort();
        self.problems.sort();
        self.problem_candidates.sort();
        self.problem_members.sort();
        self.security_incidents.sort();
        self.security_open.sort();
        self.security_timers.sort();
    }
}

/// The parts of the state a delta writes whole: each is small or bounded by a cap of its own
/// (the clock; one position per raw partition; the firing inhibiting alerts; silences up to
/// `MAX_SILENCES`; recent changes up to `MAX_CHANGES_PER_DOMAIN` per domain; learned links up
/// to `learned::MAX_PAIRS`; runs awaiting verification, forgotten with their incident).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Whole {
    pub clock: Option<DateTime<Utc>>,
    pub origins: BTreeMap<i32, (i64, u32)>,
    pub inhibit: InhibitState,
    pub silences: BTreeMap<String, Silence>,
    /// The security state whole: what deltas held before it was tracked (`security_*` of
    /// [`EngineDelta`]); read from such a delta, never written now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<correlate::security::State>,
    /// When the problems were last swept (`problem::State::swept_at`).
    pub problems_swept_at: Option<DateTime<Utc>>,
    pub runs: super::RunState,
    pub recent_changes: BTreeMap<String, Vec<crate::model::Change>>,
    pub learned: correlate::learned::Learning,
}

impl EngineState {
    /// The changes since the last [`take_delta`](Self::take_delta) or
    /// [`forget_changes`](Self::forget_changes). Costs the changes, not the state (the whole
    /// parts aside); a map whose dirty set overflowed is written whole, which is smaller than
    /// the keys it saw change. At once: [`begin_delta`](Self::begin_delta) takes it a few keys
    /// at a time.
    pub fn take_delta(&mut self) -> EngineDelta {
        let whole = self.begin_delta();
        let mut d = self.end_delta(whole);
        d.sort();
        d
    }

    /// Begins a delta of the changes since the last one, as the state is now, to be taken a
    /// few keys at a time ([`copy_some`](Self::copy_some)) while the state goes on changing
    /// (`model::tracked`: a key changed before its turn is copied first), and completed by
    /// [`end_delta`](Self::end_delta). Copies only the parts written whole now.
    pub fn begin_delta(&mut self) -> Whole {
        self.tracked().into_iter().for_each(|t| t.begin_copy());
        self.whole()
    }

    /// Begins a copy of the whole state as it is now, taken like
    /// [`begin_delta`](Self::begin_delta)'s: its delta has every collection `whole`, and
    /// [`EngineState::of_whole`] makes it a state again. Costs a copy of the keys now; changes
    /// are recorded from now on.
    pub fn begin_full(&mut self) -> Whole {
        self.tracked().into_iter().for_each(|t| t.begin_copy_all());
        self.whole()
    }

    /// The state a delta of [`begin_full`](Self::begin_full) was taken of.
    pub fn of_whole(d: EngineDelta) -> EngineState {
        let mut s = EngineState::default();
        s.apply_delta(d);
        s
    }

    /// The parts of the state a delta writes whole, copied.
    fn whole(&self) -> Whole {
        let c = &self.correlation;
        Whole {
            clock: self.clock,
            origins: self.origins.clone(),
            inhibit: self.inhibit.clone(),
            silences: self.silences.clone(),
            security: None,
            problems_swept_at: self.problems.swept_at,
            runs: self.runs.clone(),
            recent_changes: c.changes.clone(),
            learned: c.learned.clone(),
        }
    }

    /// Copies at most `n` more keys of the delta begun; returns how many (fewer when done).
    pub fn copy_some(&mut self, n: usize) -> usize {
        let mut copied = 0;
        for t in self.tracked() {
            if copied >= n {
                break;
            }
            copied += t.copy_some(n - copied);
        }
        copied
    }

    /// Completes the delta begun with `whole` (see [`begin_delta`](Self::begin_delta)); its
    /// keys are in no order until [`EngineDelta::sort`].
    pub fn end_delta(&mut self, whole: Whole) -> EngineDelta {
        let c = &mut self.correlation;
        EngineDelta {
            alerts: c.alerts.end_copy(),
            groups: c.groups.end_copy(),
            open: c.open.end_copy(),
            timers: c.timers.end_copy(),
            published: self.published.end_copy(),
            rfcs: self.rfcs.end_copy(),
            suppressed: self.suppressed.end_copy(),
            changes: self.changes.end_copy(),
            pending: self.pending.end_copy(),
            accounts: self.accounts.end_copy(),
            problems: self.problems.problems.end_copy(),
            problem_candidates: self.problems.candidates.end_copy(),
            problem_members: self.problems.members.end_copy(),
            security_incidents: self.security.incidents.end_copy(),
            security_open: self.security.open.end_copy(),
            security_timers: self.security.timers.end_copy(),
            whole,
        }
    }

    /// How many entries the tracked collections hold (what a full checkpoint writes by key).
    pub fn entries(&mut self) -> usize {
        self.tracked().iter().map(|t| t.entries()).sum()
    }

    /// Every tracked collection of the state (those [`take_delta`](Self::take_delta) writes by
    /// key), for what is done to all alike.
    fn tracked(&mut self) -> [&mut dyn Track; 16] {
        let c = &mut self.correlation;
        [
            &mut c.alerts,
            &mut c.groups,
            &mut c.open,
            &mut c.timers,
            &mut self.published,
            &mut self.rfcs,
            &mut self.suppressed,
            &mut self.changes,
            &mut self.pending,
            &mut self.accounts,
            &mut self.problems.problems,
            &mut self.problems.candidates,
            &mut self.problems.members,
            &mut self.security.incidents,
            &mut self.security.open,
            &mut self.security.timers,
        ]
    }

    /// Forgets what changed: a whole copy of the state was just taken (a full checkpoint).
    pub fn forget_changes(&mut self) {
        self.tracked().into_iter().for_each(|t| t.forget_changed());
    }

    /// Stops recording changes until the next [`forget_changes`](Self::forget_changes):
    /// everything counts as changed (no deltas are written).
    pub fn untrack(&mut self) {
        self.tracked().into_iter().for_each(|t| t.mark_all());
    }

    /// Applies a delta taken from the state this one equals: afterwards it equals the state
    /// the delta was taken of.
    pub fn apply_delta(&mut self, d: EngineDelta) {
        let c = &mut self.correlation;
        c.alerts.apply(d.alerts);
        c.groups.apply(d.groups);
        c.open.apply(d.open);
        c.timers.apply(d.timers);
        self.published.apply(d.published);
        self.rfcs.apply(d.rfcs);
        self.suppressed.apply(d.suppressed);
        self.changes.apply(d.changes);
        self.pending.apply(d.pending);
        self.accounts.apply(d.accounts);
        self.problems.problems.apply(d.problems);
        self.problems.candidates.apply(d.problem_candidates);
        self.problems.members.apply(d.problem_members);
        self.problems.restored();
        self.security.incidents.apply(d.security_incidents);
        self.security.open.apply(d.security_open);
        self.security.timers.apply(d.security_timers);
        let w = d.whole;
        (c.changes, c.learned) = (w.recent_changes, w.learned);
        self.clock = w.clock;
        self.origins = w.origins;
        self.inhibit = w.inhibit;
        self.silences = w.silences;
        if let Some(security) = w.security {
            // A delta of a d2c from before the security state was tracked.
            self.security = security;
        }
        self.problems.swept_at = w.problems_swept_at;
        self.runs = w.runs;
    }
}

impl super::Engine {
    /// The changes of the state since its last checkpoint, with the suppressor's inhibition
    /// state (see [`EngineState::take_delta`]).
    pub fn take_delta(&mut self) -> EngineDelta {
        self.checkpoint_state();
        self.state.take_delta()
    }

    /// Begins a delta taken a few keys at a time (see [`EngineState::begin_delta`]).
    pub fn begin_delta(&mut self) -> Whole {
        self.checkpoint_state();
        self.state.begin_delta()
    }

    /// Begins a copy of the whole state taken a few keys at a time (see
    /// [`EngineState::begin_full`]).
    pub fn begin_full(&mut self) -> Whole {
        self.checkpoint_state();
        self.state.begin_full()
    }

    /// See [`EngineState::copy_some`].
    pub fn copy_some(&mut self, n: usize) -> usize {
        self.state.copy_some(n)
    }

    /// See [`EngineState::end_delta`].
    pub fn end_delta(&mut self, whole: Whole) -> EngineDelta {
        self.state.end_delta(whole)
    }

    /// A copy of the whole state for a full checkpoint; what changed before is forgotten.
    /// Without `track` (no deltas are written), changes are not recorded from now on.
    pub fn take_full(&mut self, track: bool) -> EngineState {
        self.checkpoint_state();
        self.state.forget_changes();
        if !track {
            self.state.untrack();
        }
        self.state.clone()
    }
}
