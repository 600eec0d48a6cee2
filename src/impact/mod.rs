//! Impact: from the failing services of an incident to the services and business capabilities
//! it hurts, the revenue at risk, and the ITIL priority (impact × urgency).

use std::collections::BTreeSet;

use crate::model::{Impact, Priority, Severity};
use crate::topology::{Criticality, Topology};

/// What an incident hurts.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The failing services and every service that needs them.
    pub services: Vec<String>,
    pub capabilities: Vec<String>,
    pub impact: Impact,
    pub priority: Priority,
}

/// Assesses an incident whose alerts fail `failing` services with worst severity `severity`.
/// Impact comes from the most critical capability hurt (an incident that hurts no known
/// capability counts as low impact), urgency from the severity.
pub fn assess<'a>(
    topo: &Topology,
    failing: impl IntoIterator<Item = &'a str>,
    severity: Severity,
) -> Assessment {
    let services: BTreeSet<String> = topo.affected(failing);
    let capabilities = topo.capabilities_of(&services);
    let caps: Vec<_> = capabilities
        .iter()
        .filter_map(|c| topo.capability(c))
        .collect();
    let criticality: Option<Criticality> = caps.iter().map(|c| c.criticality).min();
    let revenue: f64 = caps.iter().map(|c| c.revenue_per_minute).sum();
    let impact_rank = criticality.map_or(3, Criticality::impact);
    Assessment {
        services: services.into_iter().collect(),
        capabilities: capabilities.into_iter().collect(),
        impact: Impact {
            criticality: criticality.map_or("none", Criticality::as_str).to_string(),
            revenue_at_risk_per_minute: revenue,
        },
        priority: Priority::from_matrix(impact_rank, severity.urgency()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn priority_follows_criticality_and_severity() {
        let t = Topology::from_str(
            "[capabilities.pay]\ncriticality = \"high\"\nrevenue_per_minute = 50.0\n[capabilities.blog]\ncriticality = \"low\"\nrevenue_per_minute = 1.5\n[services.db]\n[services.api]\ndepends_on = [\"db\"]\ncapabilities = [\"pay\", \"blog\"]\n[services.lone]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let a = assess(&t, ["db"], Severity::Critical);
        assert_eq!(a.services, ["api", "db"]);
        assert_eq!(a.capabilities, ["blog", "pay"]);
        assert_eq!(a.impact.criticality, "high");
        assert_eq!(a.impact.revenue_at_risk_per_minute, 51.5);
        assert_eq!(a.priority, Priority::P1);
        assert_eq!(assess(&t, ["db"], Severity::Warning).priority, Priority::P4);
        assert_eq!(assess(&t, ["db"], Severity::Major).priority, Priority::P2);
        let lone = assess(&t, ["lone"], Severity::Critical);
        assert_eq!(
            (lone.priority, lone.impact.criticality.as_str()),
            (Priority::P3, "none")
        );
    }
}
