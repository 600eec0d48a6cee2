//! RFC runs through the engine: approval first, the automation stage's reports, verification by
//! the incident resolving (successful) or not (unsuccessful, escalated), across a checkpoint.

use std::path::Path;

use super::*;
use crate::change::ChangePolicy;
use crate::model::{ChangeDecision, DecisionStatus, RfcStatus, RunOutcome, RunReport};

const POLICY: &str = r#"
[[rules]]
name = "restart-payments-api"
services = ["payments-api"]
category = "normal"
action = "Restart {service}"
approval = "required"
automation = "restart"
verify_within = "10m"

[[rules]]
name = "restart-catalog"
services = ["catalog-api"]
category = "standard"
action = "Restart {service}"
automation = "restart"
verify_within = "10m"
"#;

fn engine() -> Engine {
    let s = Settings::embedded().unwrap();
    let policy = ChangePolicy::from_str(POLICY, Path::new("policy.toml")).unwrap();
    Engine::new(s.topology, Arc::new(policy), at_once())
}

fn report(rfc: &str, outcome: RunOutcome, t: i64) -> RunReport {
    RunReport {
        change: rfc.into(),
        outcome,
        call: Some("PATCH /apis/apps/v1/namespaces/shop/deployments/x (rollout restart)".into()),
        answer: Some("accepted".into()),
        reason: None,
        time: at(t),
    }
}

fn last_rfc(out: &[Output]) -> Rfc {
    rfcs(out).last().copied().cloned().expect("an RFC version")
}

#[test]
fn an_approved_run_is_implemented_and_successful_once_the_incident_resolves() {
    let mut e = engine();
    let out = run(
        &mut e,
        &[ev(
            "HighErrorRate",
            "payments-api-7f9c",
            Severity::Critical,
            Status::Firing,
            0,
        )],
    );
    let rfc = last_rfc(&out);
    let runbook = rfc.automation.as_ref().expect("the rule names a runbook");
    assert_eq!(runbook.runbook, "restart");
    assert_eq!(runbook.target.deployment.as_deref(), Some("payments-api"));
    assert_eq!(runbook.target.namespace.as_deref(), Some("shop"));
    assert_eq!(rfc.status, RfcStatus::Proposed);

    // No approval yet: a report of a run is refused and publishes nothing but its DLQ record.
    let refused = e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implementing, 10)));
    assert!(
        matches!(&refused.outputs[..], [Output::Dlq(d)] if d.reason == "invalid_transition"),
        "{:?}",
        refused.outputs
    );
    assert!(
        refused
            .refused
            .unwrap()
            .detail
            .contains("never runs without one")
    );

    let decision = ChangeDecision {
        change: rfc.id.clone(),
        decision: DecisionStatus::Approved,
        by: "cab".into(),
        comment: None,
        time: at(20),
    };
    let approved = last_rfc(&e.apply(Input::Decision(&decision)).outputs);
    assert_eq!(
        (approved.status, approved.version),
        (RfcStatus::Approved, 2)
    );
    let v3 = last_rfc(
        &e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implementing, 30)))
            .outputs,
    );
    assert_eq!((v3.status, v3.version), (RfcStatus::Implementing, 3));
    let v4 = last_rfc(
        &e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implemented, 40)))
            .outputs,
    );
    assert_eq!((v4.status, v4.version), (RfcStatus::Implemented, 4));
    assert_eq!(
        v4.automation.as_ref().unwrap().approved_by.as_deref(),
        Some("cab")
    );
    // A report repeated after a crash publishes nothing.
    assert!(
        e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implemented, 45)))
            .outputs
            .is_empty()
    );

    let mut out = run(
        &mut e,
        &[ev(
            "HighErrorRate",
            "payments-api-7f9c",
            Severity::Critical,
            Status::Resolved,
            100,
        )],
    );
    out.extend(e.tick(at(100 + 60)));
    let done = last_rfc(&out);
    assert_eq!((done.status, done.version), (RfcStatus::Successful, 5));
    let run = done.automation.unwrap();
    assert_eq!(
        run.verified_at,
        Some(at(100)),
        "verified as of the incident's resolution"
    );
    // The timer that would have ended verification changes nothing any more.
    assert!(rfcs(&e.tick(at(40 + 600))).is_empty());
}

#[test]
fn a_run_whose_incident_stays_open_is_unsuccessful_and_escalates_it() {
    let mut e = engine();
    let out = run(
        &mut e,
        &[ev(
            "SlowQueries",
            "catalog-api-2b7e",
            Severity::Warning,
            Status::Firing,
            0,
        )],
    );
    let incident = incidents(&out)[0].clone();
    let rfc = last_rfc(&out);
    assert!(incident.priority > Priority::P1, "{:?}", incident.priority);
    // Pre-approved: it may run at once.
    e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implementing, 5)));
    e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implemented, 10)));
    assert!(e.tick(at(10 + 599)).is_empty(), "not due yet");
    let out = e.tick(at(10 + 600));
    let rfc = last_rfc(&out);
    assert_eq!(rfc.status, RfcStatus::Unsuccessful);
    let escalated = incidents(&out);
    assert_eq!(
        escalated.len(),
        1,
        "one new version of the incident: {out:#?}"
    );
    assert_eq!(escalated[0].priority, incident.priority.escalated());
    assert_eq!(escalated[0].version, incident.version + 1);
    let run = rfc.automation.unwrap();
    assert_eq!(run.escalated_to, Some(incident.priority.escalated()));
    assert!(
        run.reason
            .unwrap()
            .contains("did not resolve within 10 min")
    );
    // Later versions keep the escalated priority.
    let later = e.acknowledge(&incident.id, "alice", at(700));
    assert_eq!(incidents(&later)[0].priority, incident.priority.escalated());
}

#[test]
fn a_pending_verification_survives_a_checkpoint() {
    let mut e = engine();
    let out = run(
        &mut e,
        &[ev(
            "SlowQueries",
            "catalog-api-2b7e",
            Severity::Warning,
            Status::Firing,
            0,
        )],
    );
    let rfc = last_rfc(&out);
    e.apply(Input::Run(&report(&rfc.id, RunOutcome::Implemented, 10)));
    let json = serde_json::to_string(e.checkpoint_state()).unwrap();
    let state: EngineState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, e.state());
    let s = Settings::embedded().unwrap();
    let policy = ChangePolicy::from_str(POLICY, Path::new("policy.toml")).unwrap();
    let mut restored = Engine::with_state(s.topology, Arc::new(policy), at_once(), state);
    let out = restored.tick(at(10 + 600));
    assert_eq!(last_rfc(&out).status, RfcStatus::Unsuccessful);
    // Checkpoints written before problems and runs existed still load.
    let old: EngineState = serde_json::from_str(
        r#"{"correlation":{"alerts":{},"groups":{},"timers":[]},"published":{},"rfcs":{},"clock":null,"origins":{}}"#,
    )
    .unwrap_or_else(|e| panic!("an old checkpoint loads: {e}"));
    assert!(old.runs.is_empty() && old.problems == crate::problem::State::default());
}

#[test]
fn a_rule_naming_a_runbook_the_settings_lack_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let settings = |runbooks: &str| {
        let text = format!(
            "topology = \"{root}/config/topology.toml\"\nchange_policy = \"policy.toml\"\n{runbooks}"
        );
        std::fs::write(dir.path().join("d2c.toml"), text).unwrap();
        Settings::load(&dir.path().join("d2c.toml"))
    };
    let e = settings("").unwrap_err().to_string();
    assert!(
        e.contains(
            "policy.toml:8: `rules[restart-payments-api].automation` names runbook `restart`"
        ),
        "{e}"
    );
    let runbook =
        "[[automation.runbooks]]\nname = \"restart\"\nkind = \"webhook\"\nurl = \"https://x\"\n";
    assert!(settings(runbook).is_ok());
}
