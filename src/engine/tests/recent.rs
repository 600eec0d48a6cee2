//! Where a new alert looks for an incident to join: the index of recently active open
//! incidents (`correlate::state::Recent`) must find every incident the time window reaches.

use super::*;

/// An incident whose last event came within the window joins a linked alert, even when that
/// last event was a repeat too close to the previous one to move the incident in the index.
#[test]
fn an_incident_quiet_for_most_of_its_window_still_takes_a_linked_alert() {
    use Severity::*;
    let mut e = engine();
    let out = run(
        &mut e,
        &[
            ev("PostgresDown", "pg-payments-1", Critical, Status::Firing, 0),
            ev(
                "PostgresDown",
                "pg-payments-1",
                Critical,
                Status::Firing,
                50,
            ),
            // 290 s after the repeat (window 300 s), 340 s after the opening.
            ev(
                "HighErrorRate",
                "payments-api-7f9c",
                Critical,
                Status::Firing,
                340,
            ),
        ],
    );
    let ids: BTreeSet<&str> = incidents(&out).iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(incidents(&out).last().unwrap().alerts.len(), 2);
}

/// A restored engine (its index rebuilt from the checkpoint) groups as the one that ran on.
#[test]
fn a_restored_engine_groups_as_the_engine_that_ran_on() {
    use Severity::*;
    let before = [
        ev("PostgresDown", "pg-payments-1", Critical, Status::Firing, 0),
        ev(
            "PostgresDown",
            "pg-payments-1",
            Critical,
            Status::Firing,
            50,
        ),
        ev("SmtpDeferred", "smtp-1", Minor, Status::Firing, 60),
    ];
    let after = [
        ev(
            "HighErrorRate",
            "payments-api-7f9c",
            Critical,
            Status::Firing,
            340,
        ),
        ev(
            "QueueBacklog",
            "email-worker-1",
            Warning,
            Status::Firing,
            345,
        ),
        ev("Http5xxRate", "web-1", Critical, Status::Firing, 700),
    ];
    let mut live = engine();
    run(&mut live, &before);
    let state = live.checkpoint_state().clone();
    let mut restored = Engine::with_state(
        live.topo.clone(),
        live.policy.clone(),
        live.cfg.clone(),
        serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap(),
    );
    let (a, b) = (run(&mut live, &after), run(&mut restored, &after));
    assert_eq!(a, b);
    // Both joined their incidents of before, and the late one opened its own.
    let opened: Vec<_> = incidents(&a)
        .into_iter()
        .filter(|i| i.version == 1)
        .collect();
    assert_eq!(opened.len(), 1, "{a:#?}");
}
