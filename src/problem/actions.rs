//! Problem actions people take (open one by hand, known error, resolve), applied to the state.

use std::collections::BTreeSet;

use super::{Candidate, Entry, Member, Signature, State};
use crate::model::{Problem, ProblemAction, ProblemStatus};

impl State {
    /// Applies a person's action. `Ok(None)`: nothing to publish here (the problem is another
    /// engine's, or the action repeats one already applied); `Err`: refused, with the reason.
    pub fn act(&mut self, action: &ProblemAction) -> Result<Option<Problem>, String> {
        let at = action.time();
        match action {
            ProblemAction::Open {
                problem,
                title,
                service,
                alert_names,
                incidents,
                priority,
                by,
                comment,
                ..
            } => {
                if self.problems.contains_key(problem) {
                    return Ok(None);
                }
                let mut names = alert_names.clone();
                names.sort();
                names.dedup();
                let sig = Signature {
                    service: service.clone(),
                    alert_names: names,
                };
                let mut entry = Entry::new(Problem {
                    id: problem.clone(),
                    version: 0,
                    status: ProblemStatus::Open,
                    title: title.clone(),
                    service: service.clone(),
                    alert_names: sig.alert_names.clone(),
                    priority: *priority,
                    incidents: Vec::new(),
                    incident_count: 0,
                    first_occurrence: None,
                    last_occurrence: None,
                    outage_seconds: 0,
                    cost: 0.0,
                    opened_at: at,
                    updated_at: at,
                    opened_by: by.clone(),
                    workaround: None,
                    known_error_at: None,
                    known_error_by: None,
                    resolved_at: None,
                    resolved_by: None,
                    comment: comment.clone(),
                });
                // The incidents counted toward it so far join it: those named, and those of
                // every signature it covers.
                let named: BTreeSet<&str> = incidents.iter().map(String::as_str).collect();
                let keys: Vec<String> = self
                    .candidates
                    .iter()
                    .filter(|(_, c)| {
                        sig.covers(&c.signature)
                            || c.occurrences.iter().any(|o| named.contains(&*o.incident))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    let Some(c) = self.candidates.remove(&k) else {
                        continue;
                    };
                    let whole = sig.covers(&c.signature);
                    let mut rest = Vec::new();
                    for o in c.occurrences {
                        if whole || named.contains(&*o.incident) {
                            if let Some(m) = self.members.get_mut(&*o.incident) {
                                *m = Member::Problem(problem.clone());
                            }
                            entry.add(o);
                        } else {
                            rest.push(o);
                        }
                    }
                    if !rest.is_empty() {
                        self.candidates.insert(
                            k,
                            Candidate {
                                signature: c.signature,
                                occurrences: rest,
                            },
                        );
                    }
                }
                entry
                    .recent
                    .sort_by(|a, b| (a.at, &a.incident).cmp(&(b.at, &b.incident)));
                let first = entry.publish(at);
                self.problems.insert(problem.clone(), entry);
                self.problems_changed();
                self.candidates_changed();
                Ok(first)
            }
            ProblemAction::KnownError {
                problem,
                workaround,
                by,
                comment,
                ..
            } => {
                let Some(entry) = self.problems.get_mut(problem) else {
                    return Ok(None);
                };
                let p = &mut entry.problem;
                if p.status == ProblemStatus::Resolved {
                    return Err(format!(
                        "problem {problem} is resolved; open a new one for a recurrence"
                    ));
                }
                if p.status == ProblemStatus::KnownError
                    && p.workaround.as_deref() == Some(workaround.as_str())
                {
                    return Ok(None);
                }
                p.status = ProblemStatus::KnownError;
                p.workaround = Some(workaround.clone());
                p.known_error_at = Some(at);
                p.known_error_by = Some(by.clone());
                if comment.is_some() {
                    p.comment.clone_from(comment);
                }
                entry.dirty = true;
                Ok(entry.publish(at))
            }
            ProblemAction::Resolve {
                problem,
                by,
                comment,
                ..
            } => {
                let Some(entry) = self.problems.get_mut(problem) else {
                    return Ok(None);
                };
                let p = &mut entry.problem;
                if p.status == ProblemStatus::Resolved {
                    return Ok(None);
                }
                p.status = ProblemStatus::Resolved;
                p.resolved_at = Some(at);
                p.resolved_by = Some(by.clone());
                if comment.is_some() {
                    p.comment.clone_from(comment);
                }
                entry.dirty = true;
                Ok(entry.publish(at))
            }
        }
    }
}
