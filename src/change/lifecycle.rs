//! The RFC lifecycle (IT4IT Change): every status change of an RFC goes through [`advance`],
//! which checks that the lifecycle allows it and makes the RFC's next version. The engine calls
//! it when a change authority decides and when an incident no longer needs its RFC
//! ([`no_longer_needed`]); the steps of carrying a change out (implementing → implemented |
//! failed → successful | unsuccessful) belong in [`next`] too.
//!
//! ```text
//! proposed ──decided──► approved ──decided──► rejected
//!    │   └───decided──► rejected
//!    └──────┴──withdrawn (root cause moved, merged, resolved before approval)──► withdrawn
//! ```

use chrono::{DateTime, Utc};

use crate::model::{Decision, DecisionStatus, Incident, IncidentStatus, Rfc, RfcStatus};

/// Something that moves an RFC on.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A change authority decided (`POST /api/v1/changes/{id}/decision`).
    Decided(Decision),
    /// Its incident no longer needs it, for this reason (see [`no_longer_needed`]).
    Withdrawn(String),
}

/// The status `step` leads to from `from`, or `None` when the lifecycle does not allow it: a
/// decision is taken until the change is being carried out (a later decision overrides an
/// approval), and an RFC is withdrawn only before it is carried out.
pub fn next(from: RfcStatus, step: &Step) -> Option<RfcStatus> {
    use RfcStatus::*;
    match (from, step) {
        (Proposed | Approved, Step::Decided(d)) => Some(match d.status {
            DecisionStatus::Approved => Approved,
            DecisionStatus::Rejected => Rejected,
        }),
        (Proposed | Approved, Step::Withdrawn(_)) => Some(Withdrawn),
        _ => None,
    }
}

/// Moves `rfc` on by `step` at `at`, as its next version. Returns whether it moved: not when
/// the lifecycle does not allow the step, nor for a decision the RFC carries already.
pub fn advance(rfc: &mut Rfc, step: Step, at: DateTime<Utc>) -> bool {
    let Some(to) = next(rfc.status, &step) else {
        return false;
    };
    match step {
        Step::Decided(d) => {
            if rfc
                .decision
                .as_ref()
                .is_some_and(|old| old.status == d.status)
            {
                return false;
            }
            rfc.decision = Some(Box::new(d));
            rfc.reason = None;
        }
        Step::Withdrawn(reason) => rfc.reason = Some(reason),
    }
    rfc.status = to;
    rfc.version += 1;
    rfc.updated_at = Some(at);
    true
}

/// Why `incident` (a version about to be published) no longer needs `rfc`, if it does not: it
/// was merged into another incident, it resolved before the RFC was approved, or its root cause
/// moved away from the service the RFC acts on. Containment RFCs of security incidents stay:
/// an attack that went quiet still needs containing.
pub fn no_longer_needed(rfc: &Rfc, incident: &Incident) -> Option<String> {
    if rfc.containment.is_some() || rfc.status.is_final() {
        return None;
    }
    if let Some(into) = &incident.merged_into {
        return Some(format!(
            "incident {} was merged into {into}, which carries its alerts",
            incident.id
        ));
    }
    if incident.status != IncidentStatus::Open {
        return (rfc.status == RfcStatus::Proposed).then(|| {
            format!(
                "incident {} resolved before the change was approved",
                incident.id
            )
        });
    }
    let (Some(was), Some(root)) = (&rfc.service, &incident.root_cause) else {
        return None;
    };
    (was != &root.service).then(|| {
        format!(
            "the root cause of incident {} moved from {was} to {}",
            incident.id, root.service
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Approval, Priority, RfcCategory, Risk};

    fn rfc(status: RfcStatus) -> Rfc {
        Rfc {
            id: "RFC-1".into(),
            version: 1,
            incident_id: "INC-1".into(),
            rule: "r".into(),
            category: RfcCategory::Emergency,
            action: "fail over".into(),
            service: Some("db".into()),
            cis: vec![],
            services: vec![],
            risk: Risk::High,
            approval: Approval::Required,
            status,
            reason: None,
            priority: Priority::P1,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: None,
            decision: None,
            containment: None,
        }
    }

    fn decision(status: DecisionStatus) -> Step {
        Step::Decided(Decision {
            status,
            by: "cab".into(),
            at: DateTime::UNIX_EPOCH,
            comment: None,
        })
    }

    #[test]
    fn decisions_and_withdrawals_follow_the_lifecycle() {
        let at = DateTime::UNIX_EPOCH;
        let mut r = rfc(RfcStatus::Proposed);
        assert!(advance(&mut r, decision(DecisionStatus::Approved), at));
        assert_eq!((r.status, r.version), (RfcStatus::Approved, 2));
        assert!(
            !advance(&mut r, decision(DecisionStatus::Approved), at),
            "a repeat"
        );
        assert!(advance(&mut r, Step::Withdrawn("moved".into()), at));
        assert_eq!(
            (r.status, r.version, r.reason.as_deref()),
            (RfcStatus::Withdrawn, 3, Some("moved"))
        );
        assert!(
            !advance(&mut r, decision(DecisionStatus::Approved), at),
            "nothing moves a withdrawn RFC"
        );
        let mut r = rfc(RfcStatus::Rejected);
        assert!(!advance(&mut r, Step::Withdrawn("x".into()), at));
        assert_eq!(r.version, 1);
    }
}
