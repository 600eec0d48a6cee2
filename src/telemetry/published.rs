//! Output records the broker acknowledged, counted: incident versions (opened, resolved, the
//! latency from the raw event), RFCs and problems. What is counted of each output is kept from
//! its batch's sending to the acknowledgement ([`Counted`]), not the output itself.

use super::Metrics;
use super::events::TelemetryEvent;
use crate::model::{IncidentStatus, Output, Priority};

/// What the metrics count of one output record, kept from the batch's sending to the broker's
/// acknowledgement instead of the output itself: an incident version is counted by a few small
/// fields (it can be large, and the batch's outputs are freed once serialised); the rarer RFC
/// and problem versions are kept whole.
#[derive(Debug)]
pub enum Counted {
    Incident {
        first: bool,
        resolved: bool,
        priority: Priority,
        /// A first version linked to a problem: whether it came with a workaround.
        recurring: Option<bool>,
        /// Timestamp (ms) of the raw record that caused it.
        caused_at: Option<i64>,
    },
    Other(Box<Output>),
}

impl Counted {
    /// What will be counted of `o` once the broker acknowledges it (`caused_at`: the timestamp
    /// of the raw record that caused it): an incident version is dropped, its few fields kept;
    /// an RFC or problem version is kept whole; nothing of a dead letter.
    pub fn of(o: Output, caused_at: Option<i64>) -> Option<Counted> {
        match o {
            Output::Incident(i) => Some(Counted::Incident {
                first: i.version == 1,
                resolved: i.status == IncidentStatus::Resolved,
                priority: i.priority,
                recurring: (i.version == 1 && i.problem.is_some())
                    .then_some(i.workaround.is_some()),
                caused_at,
            }),
            o @ (Output::Change(_) | Output::Problem(_)) => Some(Counted::Other(Box::new(o))),
            Output::Dlq(_) => None,
        }
    }
}

/// Output records of one batch acknowledged by the broker, each with the timestamp (ms) of the
/// raw record that caused it, for the latency from a raw event entering Kafka to its incident.
#[derive(Debug)]
pub struct OutputsPublished<'a> {
    pub outputs: &'a [Counted],
    /// Wall-clock time of the acknowledgement, in ms since the epoch.
    pub now_ms: i64,
}

impl TelemetryEvent for OutputsPublished<'_> {
    fn emit(self, m: &Metrics) {
        for o in self.outputs {
            match o {
                Counted::Incident {
                    first,
                    resolved,
                    priority,
                    recurring,
                    caused_at,
                } => {
                    m.incident_versions.inc();
                    let p = priority.as_str();
                    if *first {
                        m.incidents_opened.with_label_values(&[p]).inc();
                    }
                    if *resolved {
                        m.incidents_resolved.with_label_values(&[p]).inc();
                    }
                    if let Some(ts) = caused_at {
                        // The raw record's timestamp is the producer's: any i64.
                        let secs = self.now_ms.saturating_sub(*ts).max(0) as f64 / 1000.0;
                        m.event_to_incident.observe(secs);
                    }
                    if let Some(workaround) = recurring {
                        m.changes.recurring(*workaround);
                    }
                }
                Counted::Other(o) => {
                    match &**o {
                        // A new RFC is counted once; its later versions by the status they reach.
                        Output::Change(r) if r.version <= 1 => {
                            m.rfcs_published
                                .with_label_values(&[r.category.as_str()])
                                .inc();
                        }
                        Output::Change(r) => {
                            m.rfc_transitions
                                .with_label_values(&[r.status.as_str()])
                                .inc();
                        }
                        Output::Incident(_) | Output::Problem(_) | Output::Dlq(_) => {}
                    }
                    m.changes.observe(o);
                }
            }
        }
    }
}
