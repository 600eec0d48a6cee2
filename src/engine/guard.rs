//! The engine's door: inputs whose times cannot be trusted are refused with a reason before
//! they touch the state, and a panic while applying an input (a bug) is caught per input and
//! turned into a DLQ record ([`Engine::try_apply`]).
//!
//! Refused (each a DLQ record with its reason, outcome `refused` for events):
//! - `time_out_of_range`: an event or a control input with a time (tick, acknowledgement,
//!   decision, problem action, run report) outside the years 1970 to 9999 (ingest refuses such
//!   events already; this guards every other way in);
//! - `clock_behind`: an event or a control input (not a tick) more than
//!   `correlation.max_behind` behind the clock (see [`CorrelationConfig::max_behind`]);
//! - silences the suppressor refuses, with its reason (`invalid_value`, `too_many_silences`);
//! - problem actions and run reports that do not fit the problem's or RFC's state
//!   (`invalid_transition`), as `problems.rs` and `changes.rs` decide.
//!
//! Nothing is bounded *ahead* of the clock here: between two ticks the engine cannot tell a
//! future-dated event from the first event after a quiet hour (a replay's tick lines are as
//! sparse as their author wrote them). Events too far ahead of the wall clock are refused where
//! the wall clock is, at ingest (`ingest.max_ahead`, reason `clock_ahead`), so they never reach
//! the events topic, and replaying it gives what the pipeline gave.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Applied, Engine, Input};
use crate::config::CorrelationConfig;
use crate::correlate::Outcome;
use crate::model::{DlqRecord, FIRST_YEAR, LAST_YEAR, Output, format_rfc3339, in_range, later};

/// Why the engine refused an input: a machine-readable reason and a sentence for the person
/// reading the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub detail: String,
}

impl Refusal {
    /// Every reason the engine refuses an input for (besides a silence's own reasons), and
    /// `internal_error` for a caught panic: the label set of the correlate stage's DLQ metric.
    pub const REASONS: [&'static str; 8] = [
        "time_out_of_range",
        "clock_behind",
        "internal_error",
        "invalid_value",
        "too_many_silences",
        "unknown_silence",
        "already_expired",
        "invalid_transition",
    ];
}

/// A panic caught while applying one input: the bug's message, and the DLQ record of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Panicked {
    pub message: String,
    pub dlq: DlqRecord,
}

impl Engine {
    /// [`apply`](Self::apply), with a panic caught: `Err` holds the DLQ record (reason
    /// `internal_error`) of the input that caused it. After an `Err` the state may be half
    /// changed: the caller must not go on with this engine but rebuild it from its last
    /// checkpoint (the correlate stage) or snapshot (replay) and apply the inputs since again,
    /// skipping this one.
    pub fn try_apply<'a>(&mut self, input: impl Into<Input<'a>>) -> Result<Applied, Panicked> {
        let input = input.into();
        catch_unwind(AssertUnwindSafe(|| self.apply(input.clone()))).map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            let refusal = Refusal {
                reason: "internal_error",
                detail: format!(
                    "d2c failed on this input (a bug; please report it with this record): \
                     {message}; the partition's state was rebuilt without it"
                ),
            };
            Panicked {
                message,
                dlq: dlq_record(&refusal, &input),
            }
        })
    }

    /// Whether an input with time `t` may be applied (see the module docs). `behind`: whether
    /// the `max_behind` bound applies (not to ticks, which never move the clock back).
    pub(super) fn admit_time(
        &self,
        t: DateTime<Utc>,
        what: &str,
        behind: bool,
    ) -> Result<(), Refusal> {
        let text = |t: DateTime<Utc>| format_rfc3339(t).as_str().to_owned();
        if !in_range(t) {
            return Err(Refusal {
                reason: "time_out_of_range",
                detail: format!(
                    "the {what}'s time {} is outside the years {FIRST_YEAR} to {LAST_YEAR} d2c \
                     accepts; check the sender's clock and time unit",
                    text(t)
                ),
            });
        }
        let cfg: &CorrelationConfig = &self.cfg;
        if behind
            && !cfg.max_behind.is_zero()
            && let Some(clock) = self.state.clock
            && later(t, cfg.max_behind) < clock
        {
            return Err(Refusal {
                reason: "clock_behind",
                detail: format!(
                    "the {what}'s time {} is more than correlation.max_behind ({}) behind the \
                     partition's clock ({}); raise correlation.max_behind to accept late input",
                    text(t),
                    humantime::format_duration(cfg.max_behind),
                    text(clock)
                ),
            });
        }
        Ok(())
    }
}

impl Applied {
    /// What a refused input did: nothing but its DLQ record (events count as `refused`).
    pub(super) fn refused(refusal: Refusal, input: &Input<'_>) -> Applied {
        Applied {
            outcome: matches!(input, Input::Event(..)).then_some(Outcome::Refused),
            outputs: vec![Output::Dlq(dlq_record(&refusal, input))],
            refused: Some(refusal),
            ..Applied::default()
        }
    }
}

/// The DLQ record of a refused input: the input as JSON (an event as on the events topic, a
/// control input as a replay's control line).
fn dlq_record(refusal: &Refusal, input: &Input<'_>) -> DlqRecord {
    let raw = match input {
        Input::Event(ev, _) => serde_json::to_value(ev),
        Input::Tick(t) => Ok(json!({"tick": format_rfc3339(*t).as_str()})),
        Input::Ack(a) => serde_json::to_value(a).map(|a| json!({"ack": a})),
        Input::Silence(s) => serde_json::to_value(s).map(|s| json!({"silence": s})),
        Input::Decision(d) => serde_json::to_value(d).map(|d| json!({"decision": d})),
        Input::Problem(p) => serde_json::to_value(p).map(|p| json!({"problem": p})),
        Input::Run(r) => serde_json::to_value(r).map(|r| json!({"run": r})),
    };
    DlqRecord {
        reason: refusal.reason.to_owned(),
        detail: refusal.detail.clone(),
        raw: raw.map(|v| v.to_string()).unwrap_or_default(),
    }
}
