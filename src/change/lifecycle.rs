//! The RFC lifecycle (IT4IT Change), every status change of an RFC in one place; each step
//! that changes an RFC bumps its version (a function that returns `false` or an error left it as
//! it was, so an input repeated after a crash publishes nothing new):
//!
//! ```text
//! proposed ──decided──► approved ──run──► implementing ──► implemented ──► successful
//!    │   └───decided──► rejected     │                  └──► failed        └─► unsuccessful
//!    └──────┴──withdrawn (root cause moved, merged, resolved before approval)
//! ```
//!
//! - [`advance`] takes a decision or a withdrawal ([`Step`]); [`no_longer_needed`] says when an
//!   incident version makes its RFC's withdrawal due;
//! - the automation stage's reports and the verification timer go through [`apply`],
//!   [`succeed`] and [`fail_verification`]; the automation stage asks [`may_run`] before it
//!   calls anything, so both sides agree on what may run.

use chrono::{DateTime, TimeDelta, Utc};

use super::Rule;
use crate::model::{
    Approval, Decision, DecisionStatus, Incident, IncidentStatus, Priority, Rfc, RfcStatus, Run,
    RunOutcome, RunReport, Target,
};
use crate::topology::Topology;

/// Longest call description, tool answer or reason kept on an RFC (in bytes).
pub const MAX_TEXT: usize = 2048;

/// The run `rule` asks for on the RFC it raised for `incident`: its runbook, and the target from
/// the service model. `None` when the rule names no runbook, or the incident has no service to
/// act on.
pub fn run_for(rule: &Rule, incident: &Incident, topo: &Topology) -> Option<Box<Run>> {
    let runbook = rule.automation.clone()?;
    let service = super::service_of(incident)?;
    let k8s = topo.service(service).and_then(|s| s.kubernetes.as_ref());
    Some(Box::new(Run {
        runbook,
        verify_within_seconds: rule.verify_within.as_secs(),
        target: Target {
            service: service.to_string(),
            namespace: k8s.map(|k| k.namespace.clone()),
            deployment: k8s.map(|k| k.deployment.clone()),
        },
        approved_by: None,
        dry_run: false,
        call: None,
        answer: None,
        reason: None,
        started_at: None,
        finished_at: None,
        verified_at: None,
        escalated_to: None,
    }))
}

/// Who approved `rfc`, or why it has no approval to run on.
pub fn approval(rfc: &Rfc) -> Result<String, String> {
    match (&rfc.decision, rfc.approval) {
        (Some(d), _) if d.status == DecisionStatus::Approved => Ok(d.by.clone()),
        (Some(d), _) => Err(format!("{} was rejected by {}", rfc.id, d.by)),
        (None, Approval::PreApproved) => Ok("pre-approved".into()),
        (None, Approval::Required) => Err(format!(
            "{} needs an approval and none is recorded; it never runs without one",
            rfc.id
        )),
    }
}

/// When `rfc` was approved: the decision's time, or when it was raised if pre-approved.
pub fn approved_at(rfc: &Rfc) -> DateTime<Utc> {
    match &rfc.decision {
        Some(d) if d.status == DecisionStatus::Approved => d.at,
        _ => rfc.created_at,
    }
}

/// Whether a run of `rfc` may start now: it names a runbook, carries a recorded approval (or is
/// pre-approved), and no run started (nor was dry-run) yet. The error says why not.
pub fn may_run(rfc: &Rfc) -> Result<&Run, String> {
    let Some(run) = rfc.automation.as_deref() else {
        return Err(format!("{} names no automation", rfc.id));
    };
    if !matches!(rfc.status, RfcStatus::Proposed | RfcStatus::Approved) {
        return Err(format!("{} is {} already", rfc.id, rfc.status.as_str()));
    }
    if run.dry_run {
        return Err(format!("{} was dry-run already", rfc.id));
    }
    approval(rfc)?;
    Ok(run)
}

/// Records a change authority's decision in the status of an RFC still proposed.
pub fn on_decision(rfc: &mut Rfc) {
    if rfc.status != RfcStatus::Proposed {
        return;
    }
    match rfc.decision.as_ref().map(|d| d.status) {
        Some(DecisionStatus::Approved) => rfc.status = RfcStatus::Approved,
        Some(DecisionStatus::Rejected) => rfc.status = RfcStatus::Rejected,
        None => {}
    }
}

/// `s` cut to at most [`MAX_TEXT`] bytes at a character boundary.
pub fn clamp(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Applies the automation stage's `report` at `at`. `Ok(true)`: the RFC moved on (a new
/// version); `Ok(false)`: nothing new (a repeat, or a step it is past); `Err`: refused, with the
/// reason (a run reported for an RFC without approval).
pub fn apply(rfc: &mut Rfc, report: &RunReport, at: DateTime<Utc>) -> Result<bool, String> {
    if rfc.automation.is_none() {
        return Err(format!(
            "{} names no automation; run report ignored",
            rfc.id
        ));
    }
    let before = rfc.status;
    let startable = matches!(before, RfcStatus::Proposed | RfcStatus::Approved);
    let running = startable || before == RfcStatus::Implementing;
    let approved_by = match report.outcome {
        // A refusal runs nothing: it is recorded whatever the approval.
        RunOutcome::Failed => approval(rfc).ok(),
        _ if !running => return Ok(false),
        _ => Some(approval(rfc)?),
    };
    let Some(run) = rfc.automation.as_deref_mut() else {
        return Ok(false);
    };
    let text = |t: &Option<String>| t.as_deref().map(clamp);
    match report.outcome {
        RunOutcome::Implementing if startable => {
            rfc.status = RfcStatus::Implementing;
            run.started_at = Some(at);
        }
        RunOutcome::Implementing => return Ok(false),
        RunOutcome::Implemented if running => {
            rfc.status = RfcStatus::Implemented;
            run.started_at.get_or_insert(at);
            run.finished_at = Some(at);
        }
        RunOutcome::Failed if running => {
            rfc.status = RfcStatus::Failed;
            run.finished_at = Some(at);
        }
        RunOutcome::DryRun if startable && !run.dry_run => run.dry_run = true,
        RunOutcome::Implemented | RunOutcome::Failed | RunOutcome::DryRun => return Ok(false),
    }
    if run.approved_by.is_none() {
        run.approved_by = approved_by;
    }
    if report.call.is_some() {
        run.call = text(&report.call);
    }
    if report.answer.is_some() {
        run.answer = text(&report.answer);
    }
    if report.reason.is_some() {
        run.reason = text(&report.reason);
    }
    rfc.version += 1;
    Ok(true)
}

/// When verification of an implemented `rfc` ends: `verify_within` after it was implemented.
pub fn verify_due(rfc: &Rfc) -> Option<DateTime<Utc>> {
    let run = rfc.automation.as_deref()?;
    if rfc.status != RfcStatus::Implemented {
        return None;
    }
    let secs = i64::try_from(run.verify_within_seconds).ok()?;
    run.finished_at?
        .checked_add_signed(TimeDelta::try_seconds(secs)?)
}

/// The incident of an implemented `rfc` resolved at `at`: the RFC is `successful`.
pub fn succeed(rfc: &mut Rfc, at: DateTime<Utc>) -> bool {
    let Some(run) = rfc.automation.as_deref_mut() else {
        return false;
    };
    if rfc.status != RfcStatus::Implemented {
        return false;
    }
    rfc.status = RfcStatus::Successful;
    run.verified_at = Some(at);
    rfc.version += 1;
    true
}

/// `verify_within` passed at `at` with the incident still open: the RFC is `unsuccessful`, and
/// says so; `escalated_to` is the incident's new priority, when it could be raised.
pub fn fail_verification(rfc: &mut Rfc, at: DateTime<Utc>, escalated_to: Option<Priority>) -> bool {
    let Some(run) = rfc.automation.as_deref_mut() else {
        return false;
    };
    if rfc.status != RfcStatus::Implemented {
        return false;
    }
    rfc.status = RfcStatus::Unsuccessful;
    run.verified_at = Some(at);
    run.escalated_to = escalated_to;
    let minutes = run.verify_within_seconds / 60;
    let within = if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{} s", run.verify_within_seconds)
    };
    run.reason = Some(match escalated_to {
        Some(p) => format!(
            "incident {} did not resolve within {within} of the change; escalated to {}",
            rfc.incident_id,
            p.as_str()
        ),
        None => format!(
            "incident {} did not resolve within {within} of the change",
            rfc.incident_id
        ),
    });
    rfc.version += 1;
    true
}

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
    // Once being carried out (or over), it is past withdrawing.
    if rfc.containment.is_some() || !matches!(rfc.status, RfcStatus::Proposed | RfcStatus::Approved)
    {
        return None;
    }
    if let Some(into) = &incident.merged_into {
        return Some(format!(
            "incident {} was merged into {into}, which carries its alerts",
            incident.id
        ));
    }
    if incident.status != IncidentStatus::Open {
        // A pre-approved change counts as approved.
        return approval(rfc).is_err().then(|| {
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
    use crate::model::{ChangeDecision, RfcCategory, Risk};
    use chrono::DateTime;

    fn rfc(approval: Approval) -> Rfc {
        Rfc {
            id: "RFC-1".into(),
            version: 1,
            incident_id: "INC-1".into(),
            rule: "r".into(),
            category: RfcCategory::Normal,
            action: "restart".into(),
            service: Some("api".into()),
            cis: vec![],
            services: vec!["api".into()],
            risk: Risk::Low,
            approval,
            status: RfcStatus::Proposed,
            reason: None,
            priority: Priority::P2,
            created_at: "2026-11-28T10:00:00Z".parse().unwrap(),
            updated_at: None,
            decision: None,
            containment: None,
            automation: Some(Box::new(Run {
                runbook: "restart".into(),
                verify_within_seconds: 600,
                target: Target {
                    service: "api".into(),
                    namespace: None,
                    deployment: None,
                },
                approved_by: None,
                dry_run: false,
                call: None,
                answer: None,
                reason: None,
                started_at: None,
                finished_at: None,
                verified_at: None,
                escalated_to: None,
            })),
        }
    }

    fn report(outcome: RunOutcome) -> RunReport {
        RunReport {
            change: "RFC-1".into(),
            outcome,
            call: Some("PATCH x".into()),
            answer: Some("ok".into()),
            reason: None,
            time: "2026-11-28T10:05:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn an_rfc_that_needs_approval_never_starts_without_one() {
        let mut r = rfc(Approval::Required);
        assert!(may_run(&r).is_err());
        let t = report(RunOutcome::Implementing).time;
        let e = apply(&mut r, &report(RunOutcome::Implementing), t).unwrap_err();
        assert!(e.contains("never runs without one"), "{e}");
        assert_eq!((r.status, r.version), (RfcStatus::Proposed, 1));
        r.decision = Some(Box::new(
            ChangeDecision {
                change: "RFC-1".into(),
                decision: DecisionStatus::Approved,
                by: "cab".into(),
                comment: None,
                time: t,
            }
            .to_decision(),
        ));
        on_decision(&mut r);
        assert_eq!(r.status, RfcStatus::Approved);
        assert!(may_run(&r).is_ok());
        assert_eq!(
            apply(&mut r, &report(RunOutcome::Implementing), t),
            Ok(true)
        );
        assert_eq!(
            r.automation.as_ref().unwrap().approved_by.as_deref(),
            Some("cab")
        );
        assert!(may_run(&r).is_err(), "a started run does not start again");
    }

    #[test]
    fn a_run_goes_implementing_implemented_successful_and_repeats_change_nothing() {
        let mut r = rfc(Approval::PreApproved);
        let t = report(RunOutcome::Implementing).time;
        assert_eq!(
            apply(&mut r, &report(RunOutcome::Implementing), t),
            Ok(true)
        );
        assert_eq!(
            apply(&mut r, &report(RunOutcome::Implementing), t),
            Ok(false)
        );
        assert_eq!(apply(&mut r, &report(RunOutcome::Implemented), t), Ok(true));
        assert_eq!(
            apply(&mut r, &report(RunOutcome::Implemented), t),
            Ok(false)
        );
        assert_eq!(apply(&mut r, &report(RunOutcome::Failed), t), Ok(false));
        assert_eq!(r.status, RfcStatus::Implemented);
        assert_eq!(verify_due(&r), Some(t + TimeDelta::seconds(600)));
        assert!(succeed(&mut r, t + TimeDelta::seconds(60)));
        assert!(!succeed(&mut r, t + TimeDelta::seconds(61)));
        assert!(!fail_verification(&mut r, t, None));
        assert_eq!((r.status, r.version), (RfcStatus::Successful, 4));
    }

    #[test]
    fn an_unverified_run_says_why_and_a_dry_run_is_recorded_once() {
        let mut r = rfc(Approval::PreApproved);
        let t = report(RunOutcome::Implementing).time;
        assert_eq!(apply(&mut r, &report(RunOutcome::Implemented), t), Ok(true));
        assert!(fail_verification(&mut r, t, Some(Priority::P1)));
        let reason = r.automation.as_ref().unwrap().reason.clone().unwrap();
        assert_eq!(
            reason,
            "incident INC-1 did not resolve within 10 min of the change; escalated to P1"
        );
        let mut d = rfc(Approval::PreApproved);
        assert_eq!(apply(&mut d, &report(RunOutcome::DryRun), t), Ok(true));
        assert_eq!(apply(&mut d, &report(RunOutcome::DryRun), t), Ok(false));
        assert_eq!(
            d.status,
            RfcStatus::Proposed,
            "a dry run implements nothing"
        );
        assert!(may_run(&d).is_err());
        assert_eq!(clamp(&"é".repeat(MAX_TEXT)).len(), MAX_TEXT + "…".len());
    }

    fn rfc_in(status: RfcStatus) -> Rfc {
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
            automation: None,
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
        let mut r = rfc_in(RfcStatus::Proposed);
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
        let mut r = rfc_in(RfcStatus::Rejected);
        assert!(!advance(&mut r, Step::Withdrawn("x".into()), at));
        assert_eq!(r.version, 1);
    }
}
