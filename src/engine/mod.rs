//! The pure core: `(state, input) -> (state, outputs)`. One [`Input`] enum holds everything
//! that can change the state (an event, a tick of the clock, an acknowledgement, a silence, a
//! decision on an RFC, a problem action, a report on an RFC's run), and one [`Engine::apply`]
//! takes it: the Kafka stage and `d2c replay` both call it, so they cannot differ. Composes
//! correlation, suppression, impact, change policy and problems into versioned incident, RFC and
//! problem records. No I/O and no wall clock, so the same input always gives the same output.
//!
//! - `state.rs`: what the engine remembers (checkpointed by the shell);
//! - `publish.rs`: building incident records and publishing new versions with their RFCs;
//! - `aspects.rs`: what an operator sees of an incident, hashed aspect by aspect;
//! - `settle.rs`: when a version is due (group wait before the first, group interval after);
//! - `problems.rs`: incidents linked to problems, problem actions;
//! - `changes.rs`: RFC runs reported by the automation stage, and their verification;
//! - `security.rs`: the engine's security side (security events go to
//!   `correlate::security`, their incidents through the same publishing path);
//! - `summary.rs`: the counts the shell turns into gauges ([`Summary`]);
//! - `settings.rs`: the settings, topology and policy an engine is built from;
//! - `guard.rs`: inputs refused for their times (outside the years d2c accepts, or far behind
//!   the clock), and panics caught per input ([`Engine::try_apply`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::change::ChangePolicy;
use crate::change::lifecycle::{self, Step};
use crate::config::{CorrelationConfig, ProblemConfig};
use crate::correlate::{self, Outcome};
use crate::model::{
    Ack, Category, ChangeDecision, Decision, Event, Output, ProblemAction, RunReport,
};
use crate::suppress::{Silence, Suppression, Suppressor};
use crate::topology::{Name, Topology};

mod aspects;
mod assessed;
mod changes;
mod guard;
mod problems;
mod publish;
mod security;
mod settings;
mod settle;
mod state;
mod summary;
mod suppressed;

pub use changes::RunState;
pub use guard::{Panicked, Refusal};
pub use publish::{Milestone, MilestoneKind};
pub use security::SecuritySummary;
pub use settings::Settings;
pub use state::{
    Account, EngineDelta, EngineState, MAX_SUPPRESSED, Origin, Pending, Published, SuppressedAlert,
    Whole,
};
pub use summary::Summary;

/// One input of the engine: everything that can change its state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// A normalised event, with its raw origin when known (a redelivery of an event already
    /// applied is skipped).
    Event(&'a Event, Option<Origin>),
    /// The clock moves to this time (the pipeline's ticks, a replay's tick lines): the timers
    /// due by then run.
    Tick(DateTime<Utc>),
    /// Someone acknowledged an incident.
    Ack(&'a Ack),
    /// A silence added at run time.
    Silence(&'a Silence),
    /// A change authority decided on an RFC.
    Decision(&'a ChangeDecision),
    /// Someone opened a problem, marked one a known error, or resolved one.
    Problem(&'a ProblemAction),
    /// The automation stage reports on the run of an RFC.
    Run(&'a RunReport),
}

impl<'a> From<&'a Event> for Input<'a> {
    fn from(ev: &'a Event) -> Self {
        Input::Event(ev, None)
    }
}

/// What applying one input did, for the shell to count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// What an event did; `None` for the other inputs.
    pub outcome: Option<Outcome>,
    /// Why the event was suppressed, when it was.
    pub suppressed: Option<Suppression>,
    pub outputs: Vec<Output>,
    /// State forgotten to stay within the caps while applying this event.
    pub evicted: correlate::Evicted,
    /// Why the input was refused (a time the engine cannot trust, a silence that breaks the
    /// rules), when it was; its DLQ record is in `outputs`.
    pub refused: Option<Refusal>,
}

impl Applied {
    fn outputs(outputs: Vec<Output>) -> Applied {
        Applied {
            outputs,
            ..Applied::default()
        }
    }
}

/// Lookups of a memo: answered from what it kept (`hits`), and made afresh (`misses`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lookups {
    pub hits: u64,
    pub misses: u64,
}

impl Lookups {
    /// Counts a lookup.
    pub fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }

    pub fn add(&mut self, o: Lookups) {
        self.hits += o.hits;
        self.misses += o.misses;
    }
}

/// Lookups of the build memos: the impact assessments of incidents (`assessment`) and what was
/// made of an incident summary's shape (`build`). A high share of misses in a storm means each
/// new alert changes what its incident hurts, and builds cost their full price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoCounts {
    pub assessment: Lookups,
    pub build: Lookups,
}

impl MemoCounts {
    /// Adds another engine's counts.
    pub fn add(&mut self, o: MemoCounts) {
        self.assessment.add(o.assessment);
        self.build.add(o.build);
    }
}

/// The correlation engine for one stream of events (one input partition).
#[derive(Debug, Clone)]
pub struct Engine {
    topo: Arc<Topology>,
    policy: Arc<ChangePolicy>,
    cfg: CorrelationConfig,
    state: EngineState,
    /// Silences, maintenance windows and inhibition; `None` when there are no rules.
    suppressor: Option<Suppressor>,
    /// Milestones since the shell last took them (not state: metrics only).
    milestones: Vec<Milestone>,
    /// When the next ended silence is due to be forgotten; `None` when not known yet. A cache
    /// of the suppressor's silences, not state: recomputed after every change of them.
    prune_due: Option<DateTime<Utc>>,
    /// When recurring incidents become problems.
    problem_cfg: ProblemConfig,
    /// Problems forgotten since the shell last took the count (not state: metrics only).
    problems_evicted: u64,
    /// Suppressed alerts forgotten to stay within [`MAX_SUPPRESSED`], likewise.
    suppressed_evicted: u64,
    /// The last impact assessments and builds of a few incidents (memos, not state).
    memo: publish::Memo,
}

impl Engine {
    /// Suppresses events by `suppressor`'s rules from now on; inhibition picks up where the
    /// state's `inhibit` left it.
    pub fn with_suppressor(mut self, mut suppressor: Suppressor) -> Self {
        suppressor.restore_inhibit_state(self.state.inhibit.clone());
        for s in self.state.silences.values() {
            if let Err(e) = suppressor.add_silence(s.clone()) {
                tracing::warn!(id = %s.id, error = %e, "a silence of the checkpoint no longer applies");
            }
        }
        self.suppressor = Some(suppressor);
        self
    }

    /// Adds (or, with the id of an existing one, replaces) a silence at run time. Returns its
    /// id. At the cap ([`crate::suppress::MAX_SILENCES`]) the silences that ended by the
    /// engine's clock are forgotten first to make room.
    pub fn add_silence(&mut self, silence: Silence) -> Result<String, crate::suppress::Error> {
        let suppressor = match &mut self.suppressor {
            Some(s) => s,
            None => self.suppressor.insert(Suppressor::new(Default::default())?),
        };
        let (id, pruned) = suppressor.add_silence_at(silence, self.state.clock)?;
        for gone in pruned {
            self.state.silences.remove(&gone);
        }
        if let Some(s) = suppressor.silence(&id) {
            self.state.silences.insert(id.clone(), s.clone());
        }
        self.prune_due = None;
        Ok(id)
    }

    /// Forgets silences that ended `correlation.retention` or longer before `now` (event
    /// time), so ended silences do not pile up; late events of their time are still silenced
    /// within that retention, as closed incidents are remembered for late duplicates.
    fn prune_silences(&mut self, now: DateTime<Utc>) {
        let Some(suppressor) = &mut self.suppressor else {
            return;
        };
        let retention = self.cfg.retention;
        let due = *self.prune_due.get_or_insert_with(|| {
            suppressor
                .first_end()
                .map_or(DateTime::<Utc>::MAX_UTC, |end| {
                    crate::model::later(end, retention)
                })
        });
        if now < due {
            return;
        }
        let before = now - crate::model::span(retention);
        for gone in suppressor.prune_silences(before) {
            self.state.silences.remove(&gone);
        }
        self.prune_due = None;
    }

    /// The state with everything in it, for a checkpoint (the suppressor's inhibition state is
    /// copied in first).
    pub fn checkpoint_state(&mut self) -> &EngineState {
        if let Some(s) = &self.suppressor {
            self.state.inhibit = s.inhibit_state().clone();
        }
        &self.state
    }

    pub fn new(topo: Arc<Topology>, policy: Arc<ChangePolicy>, cfg: CorrelationConfig) -> Self {
        // Changes are recorded from the first full checkpoint on (`take_full`): an engine
        // that is never checkpointed (replay, benches) pays nothing for them.
        let mut state = EngineState::default();
        state.untrack();
        Engine {
            topo,
            policy,
            cfg,
            state,
            suppressor: None,
            milestones: Vec::new(),
            prune_due: None,
            problem_cfg: ProblemConfig::default(),
            problems_evicted: 0,
            suppressed_evicted: 0,
            memo: publish::Memo::default(),
        }
    }

    /// Uses `topo` from now on (the service model was refreshed). Incidents already open keep
    /// their alerts; their impact is assessed on the new model at their next version.
    pub fn set_topology(&mut self, topo: Arc<Topology>) {
        self.topo = topo;
        self.memo.clear();
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// How many entries the state's tracked collections hold (see [`EngineState::entries`]).
    pub fn entries(&mut self) -> usize {
        self.state.entries()
    }

    /// Restores an engine from a checkpointed state.
    pub fn with_state(
        topo: Arc<Topology>,
        policy: Arc<ChangePolicy>,
        cfg: CorrelationConfig,
        mut state: EngineState,
    ) -> Self {
        state.correlation.share_strings();
        // Changes are recorded from the first full checkpoint on (`take_full`); sharing the
        // strings marked every alert.
        state.untrack();
        Engine {
            topo,
            policy,
            cfg,
            state,
            suppressor: None,
            milestones: Vec::new(),
            prune_due: None,
            problem_cfg: ProblemConfig::default(),
            problems_evicted: 0,
            suppressed_evicted: 0,
            memo: publish::Memo::default(),
        }
        .with_runtime_silences()
    }

    /// A state with run-time silences needs a suppressor even when the settings have no rules.
    fn with_runtime_silences(self) -> Self {
        if self.state.silences.is_empty() {
            return self;
        }
        match Suppressor::new(Default::default()) {
            Ok(s) => self.with_suppressor(s),
            Err(_) => self,
        }
    }

    /// Applies one input; returns what it did and the records it caused, in order. The one
    /// entry point of the engine for the shell and for replay.
    /// An input whose time the engine cannot trust is refused (see `guard.rs`): it changes
    /// nothing, and its DLQ record is the one output.
    pub fn apply<'a>(&mut self, input: impl Into<Input<'a>>) -> Applied {
        let input = input.into();
        let admitted = match &input {
            Input::Event(..) => Ok(()), // after the redelivery check, in `apply_event`
            Input::Tick(now) => self.admit_time(*now, "tick", false),
            Input::Ack(ack) => self.admit_time(ack.time, "acknowledgement", true),
            Input::Decision(d) => self.admit_time(d.time, "decision", true),
            Input::Problem(p) => self.admit_time(p.time(), "problem action", true),
            Input::Run(r) => self.admit_time(r.time, "run report", true),
            Input::Silence(_) => Ok(()),
        };
        if let Err(refusal) = admitted {
            return Applied::refused(refusal, &input);
        }
        match input {
            Input::Event(ev, origin) => self.apply_event(ev, origin),
            Input::Tick(now) => Applied::outputs(self.tick(now)),
            Input::Ack(ack) => Applied::outputs(self.acknowledge(&ack.incident, &ack.by, ack.time)),
            Input::Decision(d) => Applied::outputs(self.decide_change(&d.change, d.to_decision())),
            Input::Problem(action) => self.act_on_problem(action),
            Input::Run(report) => self.report_run(report),
            Input::Silence(silence) => match self.add_silence(silence.clone()) {
                Ok(_) => Applied::default(),
                Err(e) => {
                    let refusal = Refusal {
                        reason: e.reason(),
                        detail: e.to_string(),
                    };
                    Applied::refused(refusal, &input)
                }
            },
        }
    }

    /// Applies an event whose raw origin may be known: an event at or before the last applied
    /// position of its raw partition is skipped as a redelivery.
    fn apply_event(&mut self, ev: &Event, origin: Option<Origin>) -> Applied {
        if let Some(o) = origin {
            let pos = (o.offset, o.index);
            match self.state.origins.get(&o.partition) {
                Some(last) if *last >= pos => {
                    return Applied {
                        outcome: Some(Outcome::Redelivered),
                        ..Applied::default()
                    };
                }
                _ => {
                    self.state.origins.insert(o.partition, pos);
                }
            }
        }
        if let Err(refusal) = self.admit_time(ev.time, "event", true) {
            return Applied::refused(refusal, &Input::Event(ev, origin));
        }
        let mut outputs = Vec::new();
        // Timers due by now run before the event, as they would have had a tick come earlier.
        self.advance(ev.time, &mut outputs);
        let res = self.topo.resolve(ev);
        let fingerprint = correlate::fingerprint_for(&self.cfg, ev);
        // Free functions of the fields they need: `res` borrows the service model.
        if let Some(suppression) = suppressed::check(
            self.suppressor.as_mut(),
            &self.state,
            ev,
            &fingerprint,
            res.service.map(Name::as_str),
        ) {
            self.suppressed_evicted += suppressed::remember(
                &mut self.state.suppressed,
                ev,
                &fingerprint,
                &res,
                &suppression,
            );
            return Applied {
                outcome: Some(Outcome::Suppressed),
                suppressed: Some(suppression),
                outputs,
                ..Applied::default()
            };
        }
        if ev.category == Category::Security {
            return self.apply_security(ev, outputs);
        }
        let (outcome, touched) = correlate::observe(
            &mut self.state.correlation,
            &self.topo,
            &self.cfg,
            ev,
            &fingerprint,
            &res,
        );
        #[cfg(feature = "failpoints")]
        failpoint(ev);
        if outcome.may_change_incident() {
            for id in &touched {
                self.publish_if_changed(id, ev.time, &mut outputs);
            }
        }
        self.acknowledged_by_source(ev, &fingerprint, &mut outputs);
        let evicted = correlate::evict(
            &mut self.state.correlation,
            self.cfg.max_alerts,
            self.cfg.max_incidents,
        );
        self.applied(outcome, outputs, evicted)
    }

    /// What applying an event did: forgets what was published of the incidents `evicted` took
    /// away, and says so.
    fn applied(
        &mut self,
        outcome: Outcome,
        outputs: Vec<Output>,
        evicted: correlate::Evicted,
    ) -> Applied {
        for id in &evicted.incidents {
            self.forget(id);
        }
        Applied {
            outcome: Some(outcome),
            outputs,
            evicted,
            ..Applied::default()
        }
    }

    /// Suppressed alerts forgotten to stay within [`MAX_SUPPRESSED`] since the last call
    /// (metrics only).
    pub fn take_suppressed_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed_evicted)
    }

    /// How often the build memos answered and missed since the last call (metrics only).
    pub fn take_memo_counts(&mut self) -> MemoCounts {
        self.memo.take_counts()
    }

    /// Advances the engine's time to `now` (never backwards) and runs the timers due: ends of
    /// resolve holds, closing, ends of flapping, resolve timeouts, forgetting. Returns the
    /// records they caused.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        let mut outputs = Vec::new();
        self.advance(now, &mut outputs);
        outputs
    }

    /// Acknowledges incident `id` (someone is working on it), at `at` by `by`. Returns the new
    /// version, or nothing when the incident is unknown to this engine (another partition owns
    /// it), closed, or acknowledged already.
    pub fn acknowledge(&mut self, id: &str, by: &str, at: DateTime<Utc>) -> Vec<Output> {
        let mut outputs = Vec::new();
        self.advance(at, &mut outputs);
        let at = self.state.clock.unwrap_or(at);
        if correlate::acknowledge(&mut self.state.correlation, id, by, at) {
            self.publish_if_changed(id, at, &mut outputs);
        } else {
            self.acknowledge_security(id, by, at, &mut outputs);
        }
        outputs
    }

    /// A tool that tells an alert was acknowledged (attribute `acknowledged: true`, e.g. a
    /// PagerDuty `acknowledge` event) acknowledges the incident the alert is on, by that tool.
    fn acknowledged_by_source(&mut self, ev: &Event, fingerprint: &str, outputs: &mut Vec<Output>) {
        if ev.attributes.get("acknowledged") != Some(&serde_json::Value::Bool(true)) {
            return;
        }
        let Some(id) = self
            .state
            .correlation
            .alerts
            .get(fingerprint)
            .and_then(|a| a.incident.clone())
        else {
            return;
        };
        if correlate::acknowledge(&mut self.state.correlation, &id, &ev.source, ev.time) {
            self.publish_if_changed(&id, ev.time, outputs);
        }
    }

    fn advance(&mut self, now: DateTime<Utc>, outputs: &mut Vec<Output>) {
        let now = self.state.clock.map_or(now, |c| c.max(now));
        self.state.clock = Some(now);
        self.prune_silences(now);
        // In rounds: each step of an incident's lifecycle is published before the next one runs.
        loop {
            let touched = correlate::run_timers(&mut self.state.correlation, &self.cfg, now);
            if touched.is_empty() {
                break;
            }
            for (id, due) in touched {
                if self.state.correlation.groups.contains_key(id.as_str()) {
                    self.publish_at(&id, due, due, outputs);
                } else {
                    // Forgotten by its retention timer: forget what was published of it too.
                    self.forget(&id);
                }
            }
        }
        self.advance_security(now, outputs);
        self.verify_due(now, outputs);
        self.sweep_problems(now);
    }

    /// Records the change authority's decision on RFC `rfc_id` and returns the RFC's next
    /// version. Returns nothing when this engine did not raise the RFC (another partition did,
    /// or its incident was forgotten) or the RFC already carries the same decision, so the
    /// decision record sent to every partition and repeats of it publish one version.
    pub fn decide_change(&mut self, rfc_id: &str, decision: Decision) -> Vec<Output> {
        let mut outputs = Vec::new();
        let at = self.state.clock.map_or(decision.at, |c| c.max(decision.at));
        let Some(rfc) = self.state.changes.get_mut(rfc_id) else {
            return outputs;
        };
        let step = Step::Decided(Decision { at, ..decision });
        if !lifecycle::advance(rfc, step, at) {
            // The same decision again, or one the lifecycle no longer takes (withdrawn).
            return outputs;
        }
        outputs.push(Output::Change(rfc.clone()));
        // Timers run after the decision is recorded: one due by now may forget the RFC's
        // incident, and the decision must not be lost with it.
        self.advance(at, &mut outputs);
        outputs
    }

    fn forget(&mut self, id: &str) {
        self.settled(id);
        self.state.accounts.remove(id);
        self.state.published.remove(id);
        self.state.problems.forget_incident(id);
        let rfcs = self.state.rfcs.remove(id).unwrap_or_default();
        self.forget_runs(id, &rfcs);
        for rfc in rfcs {
            self.state.changes.remove(&rfc);
        }
    }

    /// The links this engine learned (services whose alerts opened and resolved together),
    /// without those the service model declares anyway.
    pub fn learned_links(&self) -> impl Iterator<Item = correlate::LearnedLink> + '_ {
        self.state
            .correlation
            .learned
            .learned_links()
            .filter(|l| !self.topo.linked(&l.services[0], &l.services[1]))
    }

    /// Every silence this engine applies (from the settings and added at run time).
    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.suppressor.iter().flat_map(|s| s.silences())
    }

    /// The milestones (openings, acknowledgements, resolutions) since the last call.
    pub fn take_milestones(&mut self) -> Vec<Milestone> {
        std::mem::take(&mut self.milestones)
    }
}

/// Test-only (feature `failpoints`): failpoint `engine-apply` set to `return(NAME)` makes
/// applying an event named `NAME` panic halfway, its alert observed but nothing published, as
/// a bug would.
#[cfg(feature = "failpoints")]
fn failpoint(ev: &Event) {
    fail::fail_point!("engine-apply", |name: Option<String>| {
        if name.is_none_or(|n| n == ev.name) {
            panic!(
                "failpoint engine-apply: injected panic on event {:?}",
                ev.name
            );
        }
    });
}

#[cfg(test)]
mod tests;
