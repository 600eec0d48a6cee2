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
    for t in 0..TREES {
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
