//! The security incident lifecycle after [`observe`](super::observe): timers (an incident closes
//! when it goes quiet and is forgotten after retention), acknowledgement, and eviction past the
//! incident cap.

use chrono::{DateTime, Utc};

use super::{State, Timer};
use crate::config::SecurityConfig;
use crate::correlate::Evicted;
use crate::model::{IncidentStatus, later};

/// Runs the timers due by `now`, one round: it stops before a timer of an incident this round
/// changed already, so the caller publishes it closed before it is forgotten, and calls again;
/// an empty answer means no timer is due. Returns the incidents that closed (with the time
/// they did) and those forgotten (no longer in the state).
pub fn run_timers(
    state: &mut State,
    cfg: &SecurityConfig,
    retention: std::time::Duration,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    let mut out: Vec<(String, DateTime<Utc>)> = Vec::new();
    while let Some(first) = state.timers.first().cloned() {
        if first.0 > now {
            break;
        }
        let (Timer::Quiet(id) | Timer::Forget(id)) = &first.1;
        if out.iter().any(|(o, _)| o == id) {
            break;
        }
        state.timers.remove(&first);
        let (due, timer) = first;
        match timer {
            Timer::Quiet(id) => {
                let Some(inc) = state.incidents.get(&id) else {
                    continue;
                };
                if inc.status != IncidentStatus::Open
                    || later(inc.last_event_at, cfg.quiet_period) > due
                {
                    continue;
                }
                state.unindex(&id);
                let inc = state.incidents.get_mut(&id).expect("checked above");
                inc.status = IncidentStatus::Closed;
                inc.closed_at = Some(due);
                state
                    .timers
                    .insert((later(due, retention), Timer::Forget(id.clone())));
                out.push((id, due));
            }
            Timer::Forget(id) => {
                state.unindex(&id);
                if state.incidents.remove(&id).is_some() {
                    out.push((id, due));
                }
            }
        }
    }
    out
}

/// Records an acknowledgement of incident `id`; `false` when it is unknown, closed or
/// acknowledged already.
pub fn acknowledge(state: &mut State, id: &str, by: &str, at: DateTime<Utc>) -> bool {
    match state.incidents.get_mut(id) {
        Some(inc) if inc.status == IncidentStatus::Open && inc.acknowledged.is_none() => {
            inc.acknowledged = Some((at, by.to_owned()));
            true
        }
        _ => false,
    }
}

/// Keeps at most `max_incidents` security incidents: past it, forgets down to 90%, closed ones
/// first (oldest first), then open ones (least recently active first).
pub fn evict(state: &mut State, max_incidents: usize) -> Evicted {
    let mut out = Evicted::default();
    if state.incidents.len() <= max_incidents {
        return out;
    }
    let goal = max_incidents - max_incidents / 10;
    let mut order: Vec<(bool, DateTime<Utc>, String)> = state
        .incidents
        .values()
        .map(|i| match i.closed_at {
            Some(c) => (false, c, i.id.clone()),
            None => (true, i.last_event_at, i.id.clone()),
        })
        .collect();
    order.sort();
    for (open, _, id) in order {
        if state.incidents.len() <= goal {
            break;
        }
        state.unindex(&id);
        if let Some(inc) = state.incidents.remove(&id) {
            out.alerts += inc.detections.len() as u64;
            out.open_incidents += u64::from(open);
            out.incidents.push(id);
        }
    }
    out
}
