//! The suppression settings as serde types: silences, maintenance windows, inhibition rules.
//! Only their shape is checked here; [`Suppressor::new`](super::Suppressor::new) checks the
//! rest (matcher syntax, regexes, time zones, ranges) and names the rule that is wrong.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Silences, maintenance windows and inhibition rules. Every field has a default: an empty
/// section suppresses nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// Silences known at start-up; more can be added and expired while d2c runs.
    /// Default: none.
    pub silences: Vec<SilenceConfig>,
    /// Recurring maintenance windows. Default: none.
    pub maintenance: Vec<MaintenanceWindowConfig>,
    /// Inhibition rules: a firing alert that matches `source_matchers` suppresses events that
    /// match `target_matchers` and agree with it on the `equal` labels. Default: none.
    pub inhibit: Vec<InhibitRuleConfig>,
    /// Most firing source alerts remembered for inhibition (per suppressor, so per input
    /// partition). Past it, the source seen least recently (by event time) is forgotten, and
    /// stops inhibiting, counted in the suppressor's evictions. Must be at least 1 when
    /// `inhibit` has rules. Default: `10000`.
    pub max_inhibit_sources: usize,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            silences: Vec::new(),
            maintenance: Vec::new(),
            inhibit: Vec::new(),
            max_inhibit_sources: 10_000,
        }
    }
}

/// A silence in the settings file has the same fields as one added at run time.
pub type SilenceConfig = Silence;

/// A silence: events matching all `matchers` are suppressed while `starts_at <= event time <
/// ends_at`. The same type is listed by [`Suppressor::silences`](super::Suppressor::silences)
/// and taken by [`Suppressor::add_silence`](super::Suppressor::add_silence).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Unique id, the `by` of the suppressions it causes. Adding a silence with the id of an
    /// existing one replaces it. Default: a hash of the other fields.
    #[serde(default)]
    pub id: String,
    /// Which events it silences: a matcher list such as `'{service="checkout-api",
    /// env=~"prod|staging"}'`, or a list of such strings (all must match). At least one matcher
    /// must not match the empty value, so that a silence cannot match every event. Required.
    pub matchers: MatcherStrings,
    /// First instant silenced, RFC 3339 as a quoted string (`"2026-03-01T22:00:00Z"`). Required.
    pub starts_at: DateTime<Utc>,
    /// First instant no longer silenced, RFC 3339; after `starts_at`. Required.
    pub ends_at: DateTime<Utc>,
    /// Who created it. Default: empty.
    #[serde(default)]
    pub created_by: String,
    /// Why: a ticket or change number helps the next person. Default: empty.
    #[serde(default)]
    pub comment: String,
}

/// Whether a silence applies at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    Active,
    /// Ended (or expired early).
    Expired,
}

impl Silence {
    /// Active iff `starts_at <= at < ends_at`.
    pub fn state(&self, at: DateTime<Utc>) -> SilenceState {
        if at < self.starts_at {
            SilenceState::Pending
        } else if at < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.state(at) == SilenceState::Active
    }
}

/// A recurring maintenance window: events about its targets are suppressed on the chosen
/// weekdays during the chosen times of day, in its time zone. The event's time decides, never
/// the clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceWindowConfig {
    /// Unique name, the `by` of the suppressions it causes. Required.
    pub name: String,
    /// Names of CIs and services under maintenance: an event is targeted if its CI (its `ci`
    /// field, else its `ci` label) or its service (the one topology resolved, else its
    /// `service` label) is one of them. Default: none (then `matchers` must be set).
    pub targets: Vec<String>,
    /// Events matching all of these are targeted too (same syntax as silences).
    /// Default: none (then `targets` must be set).
    pub matchers: MatcherStrings,
    /// Days the window opens: `mon` … `sun` (or full names), or ranges like `mon-fri`. A time
    /// range that crosses midnight belongs to the day it starts. Default: every day.
    pub weekdays: Vec<String>,
    /// Times of day, `HH:MM-HH:MM`, start included, end excluded, in `time_zone`. `22:00-02:00`
    /// crosses midnight; `24:00` may end a range. Default: the whole day.
    pub times: Vec<String>,
    /// IANA time zone the weekdays and times are read in, e.g. `Europe/Berlin`. Wall-clock
    /// times: across a DST change a window keeps its local times, so it is an hour shorter or
    /// longer that night. Default: `UTC`.
    pub time_zone: String,
    /// First day (`YYYY-MM-DD`, in `time_zone`) on which the window may open. Default: none.
    pub start_date: Option<String>,
    /// Last day (`YYYY-MM-DD`, in `time_zone`, included) on which the window may open; a range
    /// crossing midnight that starts on it still runs to its end. Default: none.
    pub end_date: Option<String>,
}

impl Default for MaintenanceWindowConfig {
    fn default() -> Self {
        MaintenanceWindowConfig {
            name: String::new(),
            targets: Vec::new(),
            matchers: MatcherStrings::default(),
            weekdays: Vec::new(),
            times: Vec::new(),
            time_zone: "UTC".into(),
            start_date: None,
            end_date: None,
        }
    }
}

/// An inhibition rule, as Alertmanager's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitRuleConfig {
    /// Firing alerts matching all of these inhibit. Required (at least one matcher).
    pub source_matchers: MatcherStrings,
    /// Events matching all of these are inhibited. Required (at least one matcher).
    pub target_matchers: MatcherStrings,
    /// Labels (or pseudo-labels such as `service`) that source and target must agree on; a
    /// label missing on both counts as equal. Default: none (any source inhibits any target).
    pub equal: Vec<String>,
}

/// Matcher lists as written: one string (`'{a="1", b=~"2|3"}'`) or a list of strings (each
/// holding one or more matchers; all of them must match). Parsed by
/// [`Suppressor::new`](super::Suppressor::new), so errors can name the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MatcherStrings(pub Vec<String>);

impl From<&str> for MatcherStrings {
    fn from(s: &str) -> Self {
        MatcherStrings(vec![s.to_string()])
    }
}

impl<'de> Deserialize<'de> for MatcherStrings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatcherStrings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a matcher string like '{service="checkout-api"}' or a list of them"#)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MatcherStrings, E> {
                Ok(MatcherStrings(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MatcherStrings, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(MatcherStrings(out))
            }
        }
        d.deserialize_any(V)
    }
}
