//! Output: every record d2c publishes, tagged by `type`. The same JSON goes to Kafka and to
//! `d2c replay`'s standard output, so a scenario can be checked offline and online alike.

use serde::{Deserialize, Serialize};

use super::{Incident, Problem, Rfc};

/// A raw payload that could not become an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqRecord {
    /// Machine-readable reason. From ingest: `malformed_json`, `oversize`, `missing_field`,
    /// `unknown_format`, `invalid_value`, `not_utf8`, `too_many_events`, `time_out_of_range`,
    /// `clock_ahead`, `expansion_limit`, `internal_error`; from the engine:
    /// `time_out_of_range`, `clock_behind`, `internal_error`, `invalid_transition`, and a refused
    /// silence's reason.
    pub reason: String,
    /// A sentence saying what was wrong, for the person reading the DLQ.
    pub detail: String,
    /// The original payload (lossy UTF-8 for display; Kafka keeps the exact bytes).
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
// `allow`, not `expect`: whether the lint fires depends on how far Incident outgrows Rfc,
// which changes as either gains fields.
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every output is an incident; boxing it would add an allocation to each"
)]
pub enum Output {
    Incident(Incident),
    Change(Rfc),
    Problem(Problem),
    Dlq(DlqRecord),
}

impl Output {
    /// The record as one line of JSON, without the trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats
        // that are NaN (revenue is a sum of configured finite numbers).
        serde_json::to_string(self).expect("output records always serialise")
    }

    /// The record as one line of JSON of at most `max_bytes` where it can be: an incident
    /// that would be longer lists only as many of its alerts as fit, the first to join, and
    /// says in `alerts_omitted` how many it left out. A mass outage's incident (thousands of
    /// alerts) would otherwise be refused by the broker, and its readers would never see it.
    /// Other records, and an incident too long even without its alerts, are as
    /// [`to_json`](Self::to_json) gives them.
    pub fn to_json_within(&self, max_bytes: usize) -> String {
        let json = self.to_json();
        match self {
            Output::Incident(i) if json.len() > max_bytes && !i.alerts.is_empty() => {
                fit_alerts(i, json.len(), max_bytes).unwrap_or(json)
            }
            _ => json,
        }
    }
}

/// `i` as a record of at most `max_bytes`, listing the longest prefix of its alerts that fits
/// (`len`: the length of its record with them all); `None` when not even one fits.
fn fit_alerts(i: &Incident, len: usize, max_bytes: usize) -> Option<String> {
    let sizes: Vec<usize> = i
        .alerts
        .iter()
        // Each alert's JSON and the comma before the next.
        .map(|a| serde_json::to_string(a).map_or(0, |j| j.len() + 1))
        .collect();
    let without = len.saturating_sub(sizes.iter().sum::<usize>());
    // `,"alerts_omitted":` and up to 20 digits.
    let room = max_bytes.saturating_sub(without + 40);
    let mut keep = sizes
        .iter()
        .scan(0usize, |sum, s| {
            *sum += s;
            Some(*sum)
        })
        .take_while(|sum| *sum <= room)
        .count();
    while keep > 0 {
        let mut cut = i.clone();
        cut.alerts.truncate(keep);
        cut.alerts_omitted = (i.alerts.len() - keep) as u64;
        let json = Output::Incident(cut).to_json();
        if json.len() <= max_bytes {
            return Some(json);
        }
        keep /= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An incident record listing `n` alerts.
    fn incident(n: usize) -> Incident {
        let alerts: Vec<serde_json::Value> = (0..n)
            .map(|k| {
                serde_json::json!({
                    "fingerprint": format!("{k:016x}"), "name": "NodeDown", "service": "db",
                    "source": "alertmanager", "severity": "critical", "status": "firing",
                    "first_seen": "2026-11-28T10:00:00Z", "last_seen": "2026-11-28T10:00:00Z",
                    "count": 1, "labels": {"host": format!("h{k}")}
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": "INC-1", "version": 1, "status": "open", "severity": "critical",
            "priority": "P1", "title": "db: NodeDown", "opened_at": "2026-11-28T10:00:00Z",
            "updated_at": "2026-11-28T10:00:00Z", "failing_services": ["db"], "services": ["db"],
            "capabilities": [], "event_count": n,
            "impact": {"criticality": "none", "health": 0.0, "revenue_at_risk_per_minute": 0.0,
                       "users_affected": 0, "outage_seconds": 0, "cost": 0.0, "capabilities": []},
            "alerts": alerts
        }))
        .expect("a valid incident")
    }

    #[test]
    fn an_incident_too_long_for_a_record_lists_its_first_alerts_and_counts_the_rest() {
        let whole = Output::Incident(incident(1_000));
        let full = whole.to_json();
        assert_eq!(whole.to_json_within(full.len()), full, "it fits: unchanged");
        assert!(!full.contains("alerts_omitted"));

        let max = 20_000;
        let cut = whole.to_json_within(max);
        assert!(cut.len() <= max, "{} bytes", cut.len());
        let Output::Incident(read) = serde_json::from_str(&cut).expect("a record") else {
            panic!("an incident");
        };
        let listed = read.alerts.len();
        assert!(listed > 10, "as many as fit: {listed}");
        assert_eq!(read.alerts_omitted as usize + listed, 1_000);
        let Output::Incident(orig) = &whole else {
            unreachable!()
        };
        assert_eq!(read.alerts[..], orig.alerts[..listed], "the first to join");
        // Nearly full: one more alert would not have fitted.
        assert!(cut.len() + 200 > max, "{} bytes of {max}", cut.len());

        // Not even its other fields fit: as it is (the broker refuses it, as before).
        assert_eq!(whole.to_json_within(100), full);
    }
}
