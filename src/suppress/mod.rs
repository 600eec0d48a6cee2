//! Suppression: silences, recurring maintenance windows and inhibition rules, as operators know
//! them from Alertmanager and ServiceNow. The correlate stage asks [`Suppressor::check`] about
//! each event and marks (not drops) the events it suppresses. Pure and deterministic: time comes
//! only from events (and from the caller, for expiring a silence), containers are ordered, and
//! the inhibition state is serde, so it is checkpointed with the rest.
//!
//! What [`Suppressor::check`] does with one event, in this order:
//! 1. **Inhibition state.** A firing event that matches some rule's `source_matchers` becomes a
//!    source (keyed by fingerprint); a resolve of it, or a firing that no longer matches,
//!    removes it. This happens whether or not the event itself ends up suppressed (as in
//!    Alertmanager, a silenced alert still inhibits). Events older than a source's last event
//!    change nothing. At most `max_inhibit_sources` are kept; past it the source with the oldest
//!    event is forgotten ([`Suppressor::inhibit_evictions`]).
//! 2. **Silences**, in id order: active iff `starts_at <= event time < ends_at` and all
//!    matchers match. `by` is the silence id.
//! 3. **Maintenance windows**, in config order: the event's CI or service is in `targets`, or
//!    all `matchers` match, and the window is open at the event's time in its time zone. `by` is
//!    the window name.
//! 4. **Inhibition rules**, in config order: the event matches `target_matchers`, and a source
//!    of the rule other than the event's own fingerprint has the same values of the `equal`
//!    labels (missing equals missing). The first source by fingerprint wins. `by` is
//!    `inhibit[<rule index>]:<source fingerprint>`. An event that matches both sides of a rule
//!    is not inhibited by sources that match both sides too, so two such alerts cannot inhibit
//!    each other (Alertmanager's rule).
//!
//! The first that applies is the answer; its [`SuppressReason`] is a metric label.
//!
//! **Resolved events** are judged like firing ones, at their own time: a resolve that falls in a
//! silence or window, or while an inhibiting source fires, is reported suppressed too (and
//! counted), and one that falls outside is not, whatever happened to the firing. The suppressor
//! does not remember which alerts it suppressed; the caller keeps suppressed events visible
//! (marked) and still applies resolves to alerts it opened, so an alert that fired before a
//! silence and resolved during it does not stay open.
//!
//! Matchers use Alertmanager's syntax and semantics (see [`parse_matchers`]): labels plus
//! the pseudo-labels `alertname`, `ci`, `service`, `source` and `severity` ([`EventLabels`]).
//!
//! Silences come from the settings and from [`Suppressor::add_silence`] /
//! [`Suppressor::expire_silence`] at run time; at most [`MAX_SILENCES`] are kept, and
//! [`Suppressor::prune_silences`] forgets ended ones. [`Suppressor::add_silence_at`] makes room
//! for a new silence by forgetting the ended ones first, so ended silences never count against
//! the cap; the engine and the HTTP API both add through it, so the API refuses exactly what
//! the engines would, with their reason. Silences added at run time are not part of
//! [`InhibitState`]: whoever adds them (the engine's state) keeps them.
//!
//! An example section (each `[[…]]` table is relative to where the settings mount
//! [`SuppressionConfig`], e.g. `[[suppression.silences]]`):
//!
//! ```toml
#![doc = include_str!("example.toml")]
//! ```

mod config;
mod inhibit;
mod matcher;
mod window;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{
    InhibitRuleConfig, MaintenanceWindowConfig, MatcherStrings, Silence, SilenceConfig,
    SilenceState, SuppressionConfig,
};
pub use inhibit::{InhibitState, SourceAlert};
pub use matcher::{
    EventLabels, LabelSet, MatchOp, Matcher, MatcherError, PSEUDO_LABELS, parse_matchers,
};

use crate::model::{Event, stable_hash};
use inhibit::{InhibitRule, Inhibitor};
use matcher::all_match;
use window::Window;

/// Most silences kept (from the settings and added at run time together).
pub const MAX_SILENCES: usize = 10_000;

/// Why an event was suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressReason {
    Silenced,
    Maintenance,
    Inhibited,
}

impl SuppressReason {
    /// Every reason, in the order [`Suppressor::check`] tries them.
    pub const ALL: [SuppressReason; 3] = [
        SuppressReason::Silenced,
        SuppressReason::Maintenance,
        SuppressReason::Inhibited,
    ];

    /// The stable snake_case name used as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressReason::Silenced => "silenced",
            SuppressReason::Maintenance => "maintenance",
            SuppressReason::Inhibited => "inhibited",
        }
    }
}

/// Why and by what an event was suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub reason: SuppressReason,
    /// The silence id, the maintenance window name, or `inhibit[<rule index>]:<fingerprint of
    /// the inhibiting alert>`.
    pub by: String,
}

/// What is wrong with the suppression settings or a silence operation. Messages name the rule
/// (`silences[2] (id "x")`, `maintenance[0] ("nightly")`, `inhibit[1]`) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{rule}: {message}")]
    Invalid { rule: String, message: String },
    #[error("no silence has id {0:?}")]
    UnknownSilence(String),
    #[error("silence {id:?} already ended at {ends_at}")]
    AlreadyExpired { id: String, ends_at: DateTime<Utc> },
    #[error(
        "at most {max} silences are kept and none of them has ended; expire some first (send \
         them again with an earlier ends_at)"
    )]
    TooManySilences { max: usize },
}

impl Error {
    /// The machine-readable reason (a DLQ reason and the API's `reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_value",
            Error::UnknownSilence(_) => "unknown_silence",
            Error::AlreadyExpired { .. } => "already_expired",
            Error::TooManySilences { .. } => "too_many_silences",
        }
    }
}

/// A silence with its matchers compiled.
#[derive(Debug, Clone)]
struct ActiveSilence {
    silence: Silence,
    matchers: Vec<Matcher>,
}

/// Decides whether an event is suppressed. One per correlation state (input partition).
#[derive(Debug, Clone)]
pub struct Suppressor {
    silences: BTreeMap<String, ActiveSilence>,
    windows: Vec<Window>,
    inhibitor: Inhibitor,
}

impl Suppressor {
    /// Checks everything in `cfg` and builds the suppressor, with no inhibition sources yet.
    pub fn new(cfg: SuppressionConfig) -> Result<Suppressor, Error> {
        let invalid = |rule: String, message: String| Error::Invalid { rule, message };

        let mut windows = Vec::with_capacity(cfg.maintenance.len());
        let mut names = BTreeSet::new();
        for (i, w) in cfg.maintenance.iter().enumerate() {
            let rule = if w.name.is_empty() {
                format!("maintenance[{i}]")
            } else {
                format!("maintenance[{i}] ({:?})", w.name)
            };
            let matchers =
                parse_list(&w.matchers, "matchers").map_err(|m| invalid(rule.clone(), m))?;
            let window = Window::new(w, matchers).map_err(|m| invalid(rule.clone(), m))?;
            if !names.insert(window.name.clone()) {
                return Err(invalid(rule, "has the name of an earlier window".into()));
            }
            windows.push(window);
        }

        let mut rules = Vec::with_capacity(cfg.inhibit.len());
        for (i, r) in cfg.inhibit.iter().enumerate() {
            let rule = format!("inhibit[{i}]");
            let source = parse_list(&r.source_matchers, "source_matchers")
                .map_err(|m| invalid(rule.clone(), m))?;
            let target = parse_list(&r.target_matchers, "target_matchers")
                .map_err(|m| invalid(rule.clone(), m))?;
            for (field, list) in [("source_matchers", &source), ("target_matchers", &target)] {
                if list.is_empty() {
                    return Err(invalid(
                        rule,
                        format!("`{field}` is empty; an inhibition rule needs at least one"),
                    ));
                }
            }
            if r.equal.iter().any(|n| n.trim().is_empty()) {
                return Err(invalid(rule, "`equal` holds an empty label name".into()));
            }
            let equal = r.equal.iter().map(|n| n.trim().to_string()).collect();
            rules.push(InhibitRule {
                source,
                target,
                equal,
            });
        }
        if !rules.is_empty() && cfg.max_inhibit_sources == 0 {
            return Err(invalid(
                "max_inhibit_sources".into(),
                "is 0, so no inhibition rule could ever apply; it must be at least 1".into(),
            ));
        }

        let mut s = Suppressor {
            silences: BTreeMap::new(),
            windows,
            inhibitor: Inhibitor::new(rules, cfg.max_inhibit_sources),
        };
        for (i, silence) in cfg.silences.into_iter().enumerate() {
            let rule = if silence.id.is_empty() {
                format!("silences[{i}]")
            } else {
                format!("silences[{i}] (id {:?})", silence.id)
            };
            let (silence, matchers) =
                compile_silence(silence).map_err(|m| invalid(rule.clone(), m))?;
            if s.silences.contains_key(&silence.id) {
                return Err(invalid(rule, "has the id of an earlier silence".into()));
            }
            if s.silences.len() >= MAX_SILENCES {
                return Err(Error::TooManySilences { max: MAX_SILENCES });
            }
            s.silences
                .insert(silence.id.clone(), ActiveSilence { silence, matchers });
        }
        Ok(s)
    }

    /// Updates the inhibition sources from `ev`, then returns the first suppression that applies
    /// to it: silence, maintenance window, inhibition (see the module docs). `service` is the
    /// service the caller resolved for the event, if any.
    pub fn check(&mut self, ev: &Event, service: Option<&str>) -> Option<Suppression> {
        let labels = EventLabels { ev, service };
        self.inhibitor.observe(ev, &labels);

        if let Some(s) = self
            .silences
            .values()
            .find(|s| s.silence.is_active(ev.time) && all_match(&s.matchers, &labels))
        {
            return Some(Suppression {
                reason: SuppressReason::Silenced,
                by: s.silence.id.clone(),
            });
        }
        if let Some(w) = self
            .windows
            .iter()
            .find(|w| w.targets(&labels) && w.is_open(ev.time))
        {
            return Some(Suppression {
                reason: SuppressReason::Maintenance,
                by: w.name.clone(),
            });
        }
        self.inhibitor
            .inhibitor(&ev.fingerprint, &labels)
            .map(|(rule, fp)| Suppression {
                reason: SuppressReason::Inhibited,
                by: format!("inhibit[{rule}]:{fp}"),
            })
    }

    /// Adds a silence, or replaces the one with the same id. An empty id gets a stable one
    /// (a hash of the other fields). Returns the id.
    pub fn add_silence(&mut self, silence: Silence) -> Result<String, Error> {
        self.add_silence_at(silence, None).map(|(id, _)| id)
    }

    /// [`add_silence`](Self::add_silence) at time `now`: when the cap is reached, the silences
    /// that ended at or before `now` are forgotten first to make room (their ids are returned
    /// with the new silence's), so only silences still active or to come count against
    /// [`MAX_SILENCES`]. Without `now` nothing is forgotten.
    pub fn add_silence_at(
        &mut self,
        silence: Silence,
        now: Option<DateTime<Utc>>,
    ) -> Result<(String, Vec<String>), Error> {
        let rule = if silence.id.is_empty() {
            "silence".to_string()
        } else {
            format!("silence {:?}", silence.id)
        };
        let (silence, matchers) =
            compile_silence(silence).map_err(|message| Error::Invalid { rule, message })?;
        let pruned = match (room_for(self.silences(), &silence.id, now)?, now) {
            (Room::AfterPruning, Some(now)) => self.prune_silences(now),
            _ => Vec::new(),
        };
        let id = silence.id.clone();
        self.silences
            .insert(id.clone(), ActiveSilence { silence, matchers });
        Ok((id, pruned))
    }

    /// Ends silence `id` at `at` (a pending one becomes empty: it starts and ends at `at`).
    /// Events at or after `at` are no longer silenced by it.
    pub fn expire_silence(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), Error> {
        let s = &mut self
            .silences
            .get_mut(id)
            .ok_or_else(|| Error::UnknownSilence(id.to_string()))?
            .silence;
        if s.ends_at <= at {
            return Err(Error::AlreadyExpired {
                id: id.to_string(),
                ends_at: s.ends_at,
            });
        }
        s.ends_at = at;
        s.starts_at = s.starts_at.min(at);
        Ok(())
    }

    /// All silences (pending, active and ended), in id order.
    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.silences.values().map(|s| &s.silence)
    }

    /// The silence with this id.
    pub fn silence(&self, id: &str) -> Option<&Silence> {
        self.silences.get(id).map(|s| &s.silence)
    }

    /// Forgets silences that ended at or before `before`; returns their ids. Late events
    /// older than their end would no longer be silenced, so pass a time well behind the newest
    /// event.
    pub fn prune_silences(&mut self, before: DateTime<Utc>) -> Vec<String> {
        let ended: Vec<String> = self
            .silences
            .iter()
            .filter(|(_, s)| s.silence.ends_at <= before)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ended {
            self.silences.remove(id);
        }
        ended
    }

    /// The earliest end of a silence kept, if any: when the next one can be pruned.
    pub fn first_end(&self) -> Option<DateTime<Utc>> {
        self.silences.values().map(|s| s.silence.ends_at).min()
    }

    /// The inhibition sources, to be checkpointed.
    pub fn inhibit_state(&self) -> &InhibitState {
        self.inhibitor.state()
    }

    /// Restores checkpointed inhibition sources. Sources that no configured rule selects any
    /// more are dropped, and `max_inhibit_sources` applies.
    pub fn restore_inhibit_state(&mut self, state: InhibitState) {
        self.inhibitor.restore(state);
    }

    /// Firing inhibition sources kept now.
    pub fn inhibit_sources(&self) -> usize {
        self.inhibitor.state().sources().len()
    }

    /// Sources forgotten because of `max_inhibit_sources`, in total (a counter for metrics).
    pub fn inhibit_evictions(&self) -> u64 {
        self.inhibitor.state().evictions()
    }
}

/// Whether a silence fits among the silences `kept`; see [`room_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// It replaces one of the same id, or there is room.
    Free,
    /// At the cap: the silences ended by then must be forgotten first.
    AfterPruning,
}

/// Whether a silence with id `id` can be added to the silences `kept` (ids unique) at `now`:
/// at [`MAX_SILENCES`], only when some have ended by `now` (they are then forgotten, see
/// [`Suppressor::add_silence_at`]), else [`Error::TooManySilences`]. The HTTP API asks this of
/// the silences the engines hold, so it refuses what they would.
pub fn room_for<'a>(
    kept: impl Iterator<Item = &'a Silence>,
    id: &str,
    now: Option<DateTime<Utc>>,
) -> Result<Room, Error> {
    let (mut count, mut ended) = (0usize, 0usize);
    for s in kept {
        if s.id == id {
            return Ok(Room::Free);
        }
        count += 1;
        ended += usize::from(now.is_some_and(|now| s.ends_at <= now));
    }
    if count < MAX_SILENCES {
        Ok(Room::Free)
    } else if count - ended < MAX_SILENCES {
        Ok(Room::AfterPruning)
    } else {
        Err(Error::TooManySilences { max: MAX_SILENCES })
    }
}

/// Parses every string of a matcher list into one list.
fn parse_list(list: &MatcherStrings, field: &str) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for s in &list.0 {
        out.extend(parse_matchers(s).map_err(|e| format!("`{field}`: {e}"))?);
    }
    Ok(out)
}

/// Checks a silence, gives it an id if it has none, and compiles its matchers.
fn compile_silence(mut s: Silence) -> Result<(Silence, Vec<Matcher>), String> {
    let matchers = parse_list(&s.matchers, "matchers")?;
    if matchers.is_empty() {
        return Err("`matchers` is empty; a silence needs at least one matcher".into());
    }
    if matchers.iter().all(|m| m.matches_value(None)) {
        return Err(
            "`matchers` all match an empty value, so the silence would match every event; \
             add one like name=\"value\""
                .into(),
        );
    }
    for (field, t) in [("starts_at", s.starts_at), ("ends_at", s.ends_at)] {
        if !crate::model::in_range(t) {
            return Err(format!(
                "`{field}` {} is outside the years {} to {} d2c accepts",
                crate::model::format_rfc3339(t).as_str(),
                crate::model::FIRST_YEAR,
                crate::model::LAST_YEAR
            ));
        }
    }
    if s.ends_at <= s.starts_at {
        return Err(format!(
            "`ends_at` {} is not after `starts_at` {}",
            s.ends_at.to_rfc3339(),
            s.starts_at.to_rfc3339()
        ));
    }
    s.id = s.id.trim().to_string();
    if s.id.is_empty() {
        let (start, end) = (s.starts_at.to_rfc3339(), s.ends_at.to_rfc3339());
        let mut parts: Vec<&str> = vec!["silence", &start, &end, &s.created_by, &s.comment];
        parts.extend(s.matchers.0.iter().map(String::as_str));
        s.id = stable_hash(&parts);
    }
    Ok((s, matchers))
}

#[cfg(test)]
mod tests;
