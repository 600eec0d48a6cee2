//! What applying one event did: the outcome the engine counts (`d2c_events_correlated_total`)
//! and uses to decide whether an incident may need a new version.

/// What one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new alert opened a new incident.
    Opened,
    /// A new (or re-firing) alert joined an open incident.
    Joined,
    /// A re-firing alert reopened its resolved incident.
    Reopened,
    /// A repeat of a known alert with no change of status or severity.
    Deduplicated,
    /// A repeat of a firing alert with another severity.
    SeverityChanged,
    /// An alert of an incident resolved.
    AlertResolved,
    /// A resolve for an alert d2c never saw firing: remembered, no incident.
    UnmatchedResolve,
    /// An event older than the alert's current status; counted, status unchanged.
    Stale,
    /// A change event (deployment, configuration change), remembered for change correlation.
    Change,
    /// Matched a silence, maintenance window or inhibition rule: counted by reason, not
    /// correlated.
    Suppressed,
    /// An event already applied before (its raw record was read again after a restart of the
    /// ingest stage); skipped.
    Redelivered,
    /// A security event that opens nothing: a resolve, or a detection below
    /// `correlation.security.min_severity` that shares no entity with an open security incident.
    Ignored,
    /// Refused for its time (outside the years d2c accepts, or too far ahead of or behind
    /// the partition's clock); a DLQ record says why. Changes nothing.
    Refused,
}

impl Outcome {
    /// Every outcome: the label set of `d2c_events_correlated_total`.
    pub const ALL: [Outcome; 13] = [
        Outcome::Opened,
        Outcome::Joined,
        Outcome::Reopened,
        Outcome::Deduplicated,
        Outcome::SeverityChanged,
        Outcome::AlertResolved,
        Outcome::UnmatchedResolve,
        Outcome::Stale,
        Outcome::Change,
        Outcome::Suppressed,
        Outcome::Redelivered,
        Outcome::Ignored,
        Outcome::Refused,
    ];

    /// Whether the incidents the event touched may look different to an operator now (so the
    /// engine checks whether to publish a new version). Repeats only change counts.
    pub fn may_change_incident(self) -> bool {
        matches!(
            self,
            Outcome::Opened
                | Outcome::Joined
                | Outcome::Reopened
                | Outcome::AlertResolved
                | Outcome::SeverityChanged
                | Outcome::Change
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Opened => "opened",
            Outcome::Joined => "joined",
            Outcome::Reopened => "reopened",
            Outcome::Deduplicated => "deduplicated",
            Outcome::SeverityChanged => "severity_changed",
            Outcome::AlertResolved => "alert_resolved",
            Outcome::UnmatchedResolve => "unmatched_resolve",
            Outcome::Stale => "stale",
            Outcome::Change => "change",
            Outcome::Suppressed => "suppressed",
            Outcome::Redelivered => "redelivered",
            Outcome::Ignored => "ignored",
            Outcome::Refused => "refused",
        }
    }
}
