//! Correlation without a complete service model: alerts whose service the model does not know
//! are grouped by the values of `correlation.fallback_group_by` labels (one namespace of one
//! cluster), and such an incident's probable cause is a guess: the earliest of its most severe
//! alerts. Every alert has a subject for this and for learned links ([`subject`]): its service,
//! or the service its labels name, or its CI.

use chrono::{DateTime, Utc};

use crate::model::{AlertRef, Labels, RootCause, Severity};

/// Labels that name the service of an alert the model does not know, in this order.
pub const SUBJECT_LABELS: [&str; 3] = ["service", "app", "app_kubernetes_io_name"];

/// What an alert is about, as a name: its service in the model; else the first of
/// [`SUBJECT_LABELS`] it carries; else its CI; else its name.
pub fn subject(a: &AlertRef) -> &str {
    subject_of(a.service.as_deref(), a.ci.as_deref(), &a.labels, &a.name)
}

/// [`subject`] of an alert with these fields.
pub(super) fn subject_of<'a>(
    service: Option<&'a str>,
    ci: Option<&'a str>,
    labels: &'a Labels,
    name: &'a str,
) -> &'a str {
    if let Some(s) = service {
        return s;
    }
    SUBJECT_LABELS
        .iter()
        .find_map(|l| labels.get(l).filter(|v| !v.is_empty()))
        .or(ci)
        .unwrap_or(name)
}

/// The probable cause of an incident none of whose alerts the model knows: the subject of the
/// earliest of its most severe alerts, said to be a guess.
pub fn guess_root_cause<'a>(alerts: impl IntoIterator<Item = &'a AlertRef>) -> Option<RootCause> {
    let mut subjects = std::collections::BTreeSet::new();
    let mut best: Option<&AlertRef> = None;
    for a in alerts {
        subjects.insert(subject(a));
        if best.is_none_or(|b| {
            (a.severity, a.first_seen, &a.fingerprint) < (b.severity, b.first_seen, &b.fingerprint)
        }) {
            best = Some(a);
        }
    }
    let a = best?;
    Some(guess(
        subject(a),
        &a.name,
        a.severity,
        a.first_seen,
        subjects.len(),
    ))
}

/// The cause [`guess_root_cause`] gives when the earliest of the most severe alerts is `name`
/// on `subject`, of `severity` since `first_seen`, and the alerts have `subjects` subjects.
pub fn guess(
    subject: &str,
    name: &str,
    severity: Severity,
    first_seen: DateTime<Utc>,
    subjects: usize,
) -> RootCause {
    let service = subject.to_owned();
    let reason = if subjects == 1 {
        format!(
            "a guess: the service model does not know {service}, the only one alerting ({name} since {})",
            crate::model::format_rfc3339(first_seen).as_str()
        )
    } else {
        format!(
            "a guess: the service model knows none of the {subjects} alerting services; {service} raised the earliest of the most severe alerts ({} {name} at {})",
            severity.as_str(),
            crate::model::format_rfc3339(first_seen).as_str()
        )
    };
    RootCause {
        service,
        reason,
        guess: true,
    }
}
