//! The timeline of an incident, for the console's incident page: what each published version
//! (and each version of its RFCs) changed, worked out by comparing a version with the one the
//! view held before it. Pure: the view calls it as records arrive from the topics.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Incident, IncidentStatus, Priority, Rfc, RfcStatus, Status};

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Happening {
    Opened {
        priority: Priority,
        title: String,
    },
    AlertJoined {
        name: String,
        service: Option<String>,
    },
    AlertResolved {
        name: String,
        service: Option<String>,
    },
    AlertFiringAgain {
        name: String,
        service: Option<String>,
    },
    AlertLeft {
        name: String,
    },
    RootCauseMoved {
        from: Option<String>,
        to: Option<String>,
        reason: Option<String>,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    Resolved,
    Reopened,
    Closed,
    Acknowledged {
        by: String,
    },
    MergedInto {
        incident: String,
    },
    Absorbed {
        incident: String,
    },
    StageReached {
        tactic: String,
    },
    RfcRaised {
        rfc: String,
        action: String,
        approval_required: bool,
    },
    RfcDecided {
        rfc: String,
        decision: String,
        by: String,
        comment: Option<String>,
    },
    RfcStatusChanged {
        rfc: String,
        status: String,
        reason: Option<String>,
    },
    RfcUpdated {
        rfc: String,
    },
}

impl fmt::Display for Happening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |s: &Option<String>| s.as_deref().map(|s| format!(" on {s}")).unwrap_or_default();
        match self {
            Happening::Opened { priority, title } => {
                write!(f, "opened as {}: {title}", priority.as_str())
            }
            Happening::AlertJoined { name, service } => {
                write!(f, "alert {name}{} joined", on(service))
            }
            Happening::AlertResolved { name, service } => {
                write!(f, "alert {name}{} resolved", on(service))
            }
            Happening::AlertFiringAgain { name, service } => {
                write!(f, "alert {name}{} fires again", on(service))
            }
            Happening::AlertLeft { name } => write!(f, "alert {name} left the incident"),
            Happening::RootCauseMoved { from, to, reason } => {
                match (from, to) {
                    (None, Some(t)) => write!(f, "root cause: {t}")?,
                    (Some(a), Some(t)) => write!(f, "root cause moved from {a} to {t}")?,
                    (Some(a), None) => write!(f, "root cause {a} withdrawn")?,
                    (None, None) => f.write_str("root cause unknown")?,
                }
                match reason {
                    Some(r) => write!(f, " ({r})"),
                    None => Ok(()),
                }
            }
            Happening::PriorityChanged { from, to } => {
                write!(f, "priority {} → {}", from.as_str(), to.as_str())
            }
            Happening::Resolved => f.write_str("resolved"),
            Happening::Reopened => f.write_str("reopened"),
            Happening::Closed => f.write_str("closed"),
            Happening::Acknowledged { by } => write!(f, "acknowledged by {by}"),
            Happening::MergedInto { incident } => write!(f, "merged into {incident}"),
            Happening::Absorbed { incident } => write!(f, "{incident} merged into this incident"),
            Happening::StageReached { tactic } => write!(f, "attack reached {tactic}"),
            Happening::RfcRaised {
                rfc,
                action,
                approval_required,
            } => write!(
                f,
                "{rfc} raised ({}): {action}",
                if *approval_required {
                    "approval required"
                } else {
                    "pre-approved"
                }
            ),
            Happening::RfcDecided {
                rfc,
                decision,
                by,
                comment,
            } => {
                write!(f, "{rfc} {decision} by {by}")?;
                match comment {
                    Some(c) => write!(f, ": {c}"),
                    None => Ok(()),
                }
            }
            Happening::RfcStatusChanged {
                rfc,
                status,
                reason,
            } => {
                write!(f, "{rfc} {status}")?;
                match reason {
                    Some(r) => write!(f, ": {r}"),
                    None => Ok(()),
                }
            }
            Happening::RfcUpdated { rfc } => write!(f, "{rfc} updated"),
        }
    }
}

/// One entry: a version of the incident, or of one of its RFCs, and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// `INC-…` or `RFC-…`.
    pub record: String,
    pub version: u32,
    pub what: Vec<Happening>,
}

/// The entries of one incident, oldest first, at most a configured number (older ones are
/// dropped and counted).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub entries: VecDeque<Entry>,
    /// Entries dropped to stay within the bound.
    pub dropped: u64,
}

impl Timeline {
    /// Adds `entry` in time order (RFC and incident records arrive on two topics, so not
    /// necessarily in order), keeping at most `max` entries.
    pub fn add(&mut self, entry: Entry, max: usize) {
        let at = self.entries.partition_point(|e| e.at <= entry.at);
        self.entries.insert(at, entry);
        while self.entries.len() > max.max(1) {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }
}

/// What version `new` changed compared with `old` (the version the view held, if any).
pub fn incident_changes(old: Option<&Incident>, new: &Incident) -> Vec<Happening> {
    let mut out = Vec::new();
    let Some(old) = old else {
        out.push(Happening::Opened {
            priority: new.priority,
            title: new.title.clone(),
        });
        for a in &new.alerts {
            out.push(Happening::AlertJoined {
                name: a.name.to_string(),
                service: a.service.as_deref().map(str::to_owned),
            });
        }
        if let Some(rc) = &new.root_cause {
            out.push(Happening::RootCauseMoved {
                from: None,
                to: Some(rc.service.clone()),
                reason: Some(rc.reason.clone()),
            });
        }
        push_status(&mut out, None, new);
        return out;
    };
    let before: BTreeMap<&str, (&str, Status)> = old
        .alerts
        .iter()
        .map(|a| (&*a.fingerprint, (&*a.name, a.status)))
        .collect();
    for a in &new.alerts {
        let service = a.service.as_deref().map(str::to_owned);
        match before.get(&*a.fingerprint) {
            None => out.push(Happening::AlertJoined {
                name: a.name.to_string(),
                service,
            }),
            Some((_, was)) if *was != a.status => out.push(match a.status {
                Status::Resolved => Happening::AlertResolved {
                    name: a.name.to_string(),
                    service,
                },
                Status::Firing => Happening::AlertFiringAgain {
                    name: a.name.to_string(),
                    service,
                },
            }),
            Some(_) => {}
        }
    }
    // A set, not a scan of the new list per old alert: a mass outage's incident has thousands.
    let now: std::collections::HashSet<&str> = new.alerts.iter().map(|a| &*a.fingerprint).collect();
    // A record cut to fit the broker lists only its first alerts: the others did not leave.
    for (fp, (name, _)) in before.iter().filter(|_| new.alerts_omitted == 0) {
        if !now.contains(fp) {
            out.push(Happening::AlertLeft {
                name: name.to_string(),
            });
        }
    }
    let (was, is) = (
        old.root_cause.as_ref().map(|r| &r.service),
        new.root_cause.as_ref().map(|r| &r.service),
    );
    if was != is {
        out.push(Happening::RootCauseMoved {
            from: was.cloned(),
            to: is.cloned(),
            reason: new.root_cause.as_ref().map(|r| r.reason.clone()),
        });
    }
    if old.priority != new.priority {
        out.push(Happening::PriorityChanged {
            from: old.priority,
            to: new.priority,
        });
    }
    if old.acknowledged_by.is_none()
        && let Some(by) = &new.acknowledged_by
    {
        out.push(Happening::Acknowledged { by: by.clone() });
    }
    if let (Some(o), Some(n)) = (&old.security, &new.security) {
        for s in &n.stages {
            if !o.stages.iter().any(|x| x.tactic_id == s.tactic_id) {
                out.push(Happening::StageReached {
                    tactic: s.tactic.clone(),
                });
            }
        }
    }
    push_status(&mut out, Some(old), new);
    out
}

fn push_status(out: &mut Vec<Happening>, old: Option<&Incident>, new: &Incident) {
    let was = old.map(|o| o.status);
    if was == Some(new.status) {
        return;
    }
    match new.status {
        IncidentStatus::Open if was == Some(IncidentStatus::Resolved) => {
            out.push(Happening::Reopened)
        }
        IncidentStatus::Open => {}
        IncidentStatus::Resolved => out.push(Happening::Resolved),
        IncidentStatus::Closed => out.push(match &new.merged_into {
            Some(into) => Happening::MergedInto {
                incident: into.clone(),
            },
            None => Happening::Closed,
        }),
    }
}

/// What RFC version `new` changed compared with `old`.
pub fn rfc_changes(old: Option<&Rfc>, new: &Rfc) -> Vec<Happening> {
    let mut out = Vec::new();
    if old.is_none() {
        out.push(Happening::RfcRaised {
            rfc: new.id.clone(),
            action: new.action.clone(),
            approval_required: new.approval == crate::model::Approval::Required,
        });
    }
    let was = old.and_then(|o| o.decision.as_ref());
    let decided = new.decision.as_ref().filter(|d| was != Some(*d));
    if let Some(d) = decided {
        out.push(Happening::RfcDecided {
            rfc: new.id.clone(),
            decision: d.status.as_str().to_string(),
            by: d.by.clone(),
            comment: d.comment.clone(),
        });
    }
    let status_was = old.map_or(RfcStatus::Proposed, |o| o.status);
    // A decision says approved or rejected itself.
    let said = decided.is_some() && matches!(new.status, RfcStatus::Approved | RfcStatus::Rejected);
    if new.status != status_was && !said {
        out.push(Happening::RfcStatusChanged {
            rfc: new.id.clone(),
            status: new.status.as_str().to_string(),
            reason: new.automation.as_ref().and_then(|r| r.reason.clone()),
        });
    }
    if out.is_empty() {
        out.push(Happening::RfcUpdated {
            rfc: new.id.clone(),
        });
    }
    out
}

/// When RFC version `r` happened: the latest time it carries (creation, decision, its run's
/// start, end and verification).
pub fn rfc_time(r: &Rfc) -> DateTime<Utc> {
    let mut t = r.created_at;
    if let Some(d) = &r.decision {
        t = t.max(d.at);
    }
    if let Some(run) = &r.automation {
        for x in [run.started_at, run.finished_at, run.verified_at]
            .into_iter()
            .flatten()
        {
            t = t.max(x);
        }
    }
    t
}
