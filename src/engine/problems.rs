//! The engine's problem side: every incident version is shown to [`crate::problem`] as it is
//! published (it may link the incident, carry a workaround, open a problem or move its
//! totals), problem actions are applied, and the problem versions they cause are published
//! after the incident record that caused them.

use chrono::{DateTime, Utc};

use super::{Applied, Engine, Input, Refusal};
use crate::config::ProblemConfig;
use crate::model::{Incident, IncidentStatus, Output, ProblemAction};

impl Engine {
    /// Uses `cfg` for recurring incidents → problems (the default `[problem]` otherwise).
    pub fn with_problems(mut self, cfg: ProblemConfig) -> Self {
        self.problem_cfg = cfg;
        self
    }

    /// Before an incident version is hashed: links it to its problem (counting it toward one
    /// when new) and sets its problem id and workaround.
    /// An incident built but not yet published has no alert list: its alerts are read from its
    /// group, and only if its signature is needed.
    pub(super) fn link_problem(&mut self, incident: &mut Incident) {
        let super::EngineState {
            problems,
            correlation,
            ..
        } = &mut self.state;
        let link = if incident.alerts.is_empty() {
            let alerts = || {
                correlation
                    .groups
                    .get(incident.id.as_str())
                    .into_iter()
                    .flat_map(|g| g.alerts.iter())
                    .filter_map(|f| correlation.alerts.get(f))
                    .map(|a| (a.alert.service.as_deref(), &*a.alert.name))
            };
            problems.link_with(&self.problem_cfg, incident, alerts)
        } else {
            problems.link(&self.problem_cfg, incident)
        };
        (incident.problem, incident.workaround) = match link {
            Some((id, workaround)) => (Some(id), workaround),
            None => (None, None),
        };
        self.problems_evicted += self.state.problems.evict(self.problem_cfg.max_problems);
    }

    /// After the incident version was published: the next version of its problem, if due.
    pub(super) fn account_problem(&mut self, incident: &Incident, outputs: &mut Vec<Output>) {
        outputs.extend(self.state.problems.account(incident).map(Output::Problem));
    }

    /// Applies a problem action (open by hand, known error, resolve). Incidents still open that
    /// are linked to the problem get a new version carrying its id and workaround as they are
    /// now.
    pub(super) fn act_on_problem(&mut self, action: &ProblemAction) -> Applied {
        let mut outputs = Vec::new();
        let at = self
            .state
            .clock
            .map_or(action.time(), |c| c.max(action.time()));
        let problem = match self.state.problems.act(action) {
            Ok(Some(p)) => p,
            Ok(None) => return Applied::default(),
            Err(detail) => {
                let refusal = Refusal {
                    reason: "invalid_transition",
                    detail,
                };
                return Applied::refused(refusal, &Input::Problem(action));
            }
        };
        let id = problem.id.clone();
        outputs.push(Output::Problem(problem));
        self.problems_evicted += self.state.problems.evict(self.problem_cfg.max_problems);
        for incident in self.state.problems.linked(&id) {
            let open = self
                .state
                .published
                .get(&incident)
                .is_some_and(|p| p.status == IncidentStatus::Open);
            if open {
                self.publish_if_changed(&incident, at, &mut outputs);
            }
        }
        self.advance(at, &mut outputs);
        Applied::outputs(outputs)
    }

    /// The problem timers: resolved problems past retention and stale counts are forgotten.
    pub(super) fn sweep_problems(&mut self, now: DateTime<Utc>) {
        self.problems_evicted += self.state.problems.sweep(&self.problem_cfg, now);
    }

    /// Problems forgotten to stay within `problem.max_problems` or after `problem.retention`,
    /// since the last call (metrics only).
    pub fn take_problems_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.problems_evicted)
    }

    /// Open and known-error problems, their incidents and cost, for the gauges.
    pub fn problem_summary(&self) -> crate::problem::Summary {
        self.state.problems.summary()
    }
}
