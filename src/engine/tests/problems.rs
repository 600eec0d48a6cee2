//! Problems through the engine: recurring outages open one, a known error reaches the incident
//! still open (a new version) and later ones, the problem outlives the incidents.

use super::*;
use crate::model::{Problem, ProblemAction, ProblemStatus};

const DAY: i64 = 24 * 3600;

fn problems(out: &[Output]) -> Vec<&Problem> {
    out.iter()
        .filter_map(|o| match o {
            Output::Problem(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The payments database fails at `t` for 20 minutes; ticks end the incident and forget it.
fn night(e: &mut Engine, t: i64, resolve: bool) -> Vec<Output> {
    let mut out = run(e, &[pg(Status::Firing, t)]);
    if resolve {
        out.extend(run(e, &[pg(Status::Resolved, t + 1200)]));
        for after in [1800, 3600, 3 * 3600] {
            out.extend(e.tick(at(t + after)));
        }
    }
    out
}

#[test]
fn recurring_outages_open_one_problem_and_its_known_error_reaches_open_and_later_incidents() {
    let mut e = engine();
    let mut out = Vec::new();
    for n in 0..2 {
        out.extend(night(&mut e, n * DAY, true));
    }
    assert!(problems(&out).is_empty());
    assert!(e.state().published.is_empty(), "both incidents forgotten");
    let third = night(&mut e, 2 * DAY, false);
    let opened = problems(&third);
    assert_eq!(opened.len(), 1);
    let p = opened[0].clone();
    assert_eq!((p.incident_count, p.status), (3, ProblemStatus::Open));
    let open = incidents(&third)[0].clone();
    assert_eq!(open.problem.as_deref(), Some(p.id.as_str()));

    let known = ProblemAction::KnownError {
        problem: p.id.clone(),
        workaround: "fail over to the standby".into(),
        by: "dba".into(),
        comment: None,
        time: at(2 * DAY + 300),
    };
    let out = e.apply(Input::Problem(&known)).outputs;
    assert_eq!(problems(&out)[0].status, ProblemStatus::KnownError);
    let again = incidents(&out);
    assert_eq!(again.len(), 1, "the open incident gets a new version");
    assert_eq!(
        (again[0].id.as_str(), again[0].version),
        (open.id.as_str(), open.version + 1)
    );
    assert_eq!(
        again[0].workaround.as_deref(),
        Some("fail over to the standby")
    );
    assert!(
        e.apply(Input::Problem(&known)).outputs.is_empty(),
        "the same record again changes nothing"
    );

    // The third night ends; the fourth comes.
    run(&mut e, &[pg(Status::Resolved, 2 * DAY + 1200)]);
    e.tick(at(2 * DAY + 5 * 3600));
    let fourth = night(&mut e, 3 * DAY, false);
    let first = incidents(&fourth)[0];
    assert_eq!(first.version, 1);
    assert_eq!(
        first.workaround.as_deref(),
        Some("fail over to the standby")
    );
    assert_eq!(problems(&fourth)[0].incident_count, 4);
    assert_eq!(e.problem_summary().by_status[&ProblemStatus::KnownError], 1);
}
