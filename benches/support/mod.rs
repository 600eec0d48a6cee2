//! The generated large topology both benchmarks run on: 200 binary dependency trees of 10
//! services (2,000 services), 5 CIs per service (10,000 CIs, one per service also matched by an
//! `instance` label), and 100 capabilities delivered by the upper services of each tree.

#![allow(dead_code)]

use std::collections::BTreeMap;

use d2c::topology::{Capability, CiDef, Criticality, ServiceDef, Topology, TopologyFile};

pub const TREES: usize = 200;
/// Services per tree: a binary tree whose root (`s0`, a database) everything else needs.
pub const SERVICES_PER_TREE: usize = 10;
/// CIs per service.
pub const CIS_PER_SERVICE: usize = 5;
/// Business capabilities shared by the trees.
pub const CAPABILITIES: usize = 100;

pub fn service_name(tree: usize, s: usize) -> String {
    format!("t{tree:03}-s{s}")
}

pub fn ci_name(tree: usize, s: usize, c: usize) -> String {
    format!("t{tree:03}-s{s}-ci{c}")
}

/// 200 dependency trees of 10 services (2,000 services), 5 CIs each (10,000 CIs, one per
/// service also matched by an `instance` label), 100 capabilities delivered by the upper
/// services of each tree.
pub fn large_topology() -> Topology {
    topology_of(TREES)
}

/// [`large_topology`] with `trees` trees: `10 * trees` services, `50 * trees` CIs.
pub fn topology_of(trees: usize) -> Topology {
    let mut f = TopologyFile::default();
    for k in 0..CAPABILITIES {
        f.capabilities.insert(
            format!("cap-{k:03}"),
            Capability {
                description: format!("Business capability {k}"),
                criticality: [Criticality::High, Criticality::Medium, Criticality::Low][k % 3],
                revenue_per_minute: (k * 10) as f64,
                users: (k * 1000) as u64,
            },
        );
    }
    for t in 0..trees {
        for s in 0..SERVICES_PER_TREE {
            let capabilities = match s {
                1 | 2 => vec![format!("cap-{:03}", t % CAPABILITIES)],
                3 => vec![format!("cap-{:03}", (t + 37) % CAPABILITIES)],
                _ => Vec::new(),
            };
            let depends_on = if s == 0 {
                Vec::new()
            } else {
                vec![service_name(t, (s - 1) / 2)]
            };
            f.services.insert(
                service_name(t, s),
                ServiceDef {
                    description: String::new(),
                    depends_on,
                    capabilities,
                    domain: None,
                    requires: Default::default(),
                    kubernetes: None,
                    ..Default::default()
                },
            );
            for c in 0..CIS_PER_SERVICE {
                let matchers = if c == 0 {
                    BTreeMap::from([("instance".to_owned(), format!("10.{t}.{s}.{c}:9100"))])
                } else {
                    BTreeMap::new()
                };
                f.cis.push(CiDef {
                    id: ci_name(t, s, c),
                    service: service_name(t, s),
                    matchers,
                });
            }
        }
    }
    Topology::build(f).expect("the generated topology is valid")
}

/// The event time every bench starts from.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .expect("valid literal")
        .with_timezone(&chrono::Utc)
}

/// The firing events of outage burst `b` into `out`: `count` new alerts (at most 50) on the CIs
/// of tree `(b * 67) % trees` of [`topology_of`]`(trees)`, from `t0 + 2 s * b`, 10 ms apart,
/// 4 labels each. The `pod` label differs per burst (pods are replaced between outages), so
/// every alert is new; with 67 prime to `trees`, a tree's next burst is `2 s * trees` later.
pub fn burst_events(
    trees: usize,
    b: usize,
    count: usize,
    t0: chrono::DateTime<chrono::Utc>,
    out: &mut Vec<d2c::model::Event>,
) {
    use chrono::Duration;
    use d2c::model::{Event, Severity, Status, stable_hash};
    const NAMES: [&str; 4] = ["HighErrorRate", "HighLatency", "DiskFull", "PodRestarts"];
    out.clear();
    let tree = (b * 67) % trees;
    let start = t0 + Duration::seconds(2) * b as i32;
    for i in 0..count {
        let per_tree = SERVICES_PER_TREE * CIS_PER_SERVICE;
        let (s, c) = ((i % per_tree) / CIS_PER_SERVICE, i % CIS_PER_SERVICE);
        let name = NAMES[(i / per_tree) % NAMES.len()];
        let ci = ci_name(tree, s, c);
        let service = service_name(tree, s);
        let labels = BTreeMap::from([
            ("service".to_owned(), service.clone()),
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), format!("team-{}", tree % 40)),
            ("pod".to_owned(), format!("{service}-{b:06x}-{c}")),
        ]);
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut parts = vec!["native", name, ci.as_str()];
        parts.extend(pairs.iter().map(String::as_str));
        let fingerprint = stable_hash(&parts);
        let time = start + Duration::milliseconds(10) * i as i32;
        out.push(Event {
            id: stable_hash(&[&fingerprint, &time.timestamp_millis().to_string()]),
            source: "native".into(),
            time,
            ci: Some(ci),
            name: name.to_owned(),
            severity: [Severity::Critical, Severity::Major, Severity::Warning][i % 3],
            status: Status::Firing,
            category: Default::default(),
            fingerprint,
            labels,
            attributes: Default::default(),
        });
    }
}

/// Alerts `from..to` of a mass outage of tree `tree` of [`topology_of`]: every one a new alert
/// (its own `host` label) on one of the tree's CIs, 1 ms apart from `t0`, all critical, so they
/// all join one incident.
pub fn outage_events(
    tree: usize,
    from: usize,
    to: usize,
    t0: chrono::DateTime<chrono::Utc>,
) -> Vec<d2c::model::Event> {
    use chrono::Duration;
    use d2c::model::{Event, Severity, Status, stable_hash};
    (from..to)
        .map(|i| {
            let (s, c) = (
                i % SERVICES_PER_TREE,
                (i / SERVICES_PER_TREE) % CIS_PER_SERVICE,
            );
            let ci = ci_name(tree, s, c);
            let host = format!("h{i}");
            let fingerprint = stable_hash(&["native", "NodeDown", &ci, &host]);
            let time = t0 + Duration::milliseconds(i as i64);
            Event {
                id: stable_hash(&[&fingerprint, &time.timestamp_millis().to_string()]),
                source: "native".into(),
                time,
                ci: Some(ci),
                name: "NodeDown".into(),
                severity: Severity::Critical,
                status: Status::Firing,
                category: Default::default(),
                fingerprint,
                labels: BTreeMap::from([("host".to_owned(), host)]),
                attributes: Default::default(),
            }
        })
        .collect()
}

/// Criterion's defaults, in a process with transparent huge pages off as the `d2c` binary's.
pub fn as_the_binary() -> criterion::Criterion {
    if let Err(e) = d2c::app::huge_pages_off() {
        eprintln!("transparent huge pages stay on: {e}");
    }
    criterion::Criterion::default()
}
