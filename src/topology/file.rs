//! The topology file as written: capabilities, services (with their dependencies, redundancy,
//! owners and links) and CIs, as serde types. `Topology` (in `mod.rs`) checks them and computes
//! the closures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How much the business needs a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    High,
    Medium,
    Low,
}

impl Criticality {
    /// Impact rank for the priority matrix: 1 (high) to 3 (low).
    pub fn impact(self) -> u8 {
        match self {
            Criticality::High => 1,
            Criticality::Medium => 2,
            Criticality::Low => 3,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::High => "high",
            Criticality::Medium => "medium",
            Criticality::Low => "low",
        }
    }
}

/// A business capability, as written in the topology file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// What the business can do with it, for people reading incidents.
    #[serde(default)]
    pub description: String,
    /// `high`, `medium` or `low`.
    pub criticality: Criticality,
    /// Revenue the business makes through this capability per minute; the revenue at risk while
    /// it is hurt. Default: 0.
    #[serde(default)]
    pub revenue_per_minute: f64,
    /// How many users rely on it. Default: 0.
    #[serde(default)]
    pub users: u64,
}

/// A service, as written in the topology file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    #[serde(default)]
    pub description: String,
    /// Services this one needs to work.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Capabilities this service delivers.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Correlation domain: services in one domain are correlated on one partition. Default: the
    /// connected component of the dependency graph, named after its first service by name.
    #[serde(default)]
    pub domain: Option<String>,
    /// How many of `depends_on` the service needs: `"all"` (default), `"any"` (redundant
    /// replicas: one is enough) or a number k (k of N, like a quorum).
    #[serde(default, skip_serializing_if = "Requires::is_all")]
    pub requires: Requires,
    /// Who owns the service (a person or group), carried into its incidents and tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The team that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Link to its runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Link to its dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<String>,
    /// Link to its on-call rota or paging service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oncall: Option<String>,
    /// Where the service runs in Kubernetes (`{ namespace = "shop", deployment = "payments-api" }`),
    /// for runbooks that restart or scale it (README "Automation"). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesRef>,
}

/// The Kubernetes Deployment of a service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRef {
    pub namespace: String,
    pub deployment: String,
}

/// How many of its dependencies a service needs to work (see [`ServiceDef::requires`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requires {
    /// Every dependency: one down takes the service down.
    #[default]
    All,
    /// At least this many (`"any"` is 1): fewer working takes it down; losing any while enough
    /// still work leaves it degraded.
    AtLeast(u32),
}

impl Requires {
    pub fn is_all(&self) -> bool {
        *self == Requires::All
    }
}

impl Serialize for Requires {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Requires::All => s.serialize_str("all"),
            Requires::AtLeast(1) => s.serialize_str("any"),
            Requires::AtLeast(k) => s.serialize_u32(*k),
        }
    }
}

impl<'de> Deserialize<'de> for Requires {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Count(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(Requires::All),
            Raw::Word(w) if w == "any" => Ok(Requires::AtLeast(1)),
            Raw::Count(k) if k >= 1 && k <= i64::from(u32::MAX) => Ok(Requires::AtLeast(k as u32)),
            _ => Err(serde::de::Error::custom(
                "expected \"all\", \"any\" or a number of dependencies (1 or more)",
            )),
        }
    }
}

/// A configuration item: a thing events are about (host, database, pod, queue …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CiDef {
    /// The CI's name; an event whose `ci` equals it is about this CI.
    pub id: String,
    /// The service this CI belongs to.
    pub service: String,
    /// Event labels that identify this CI: an event carrying all of them (equal values) is about
    /// it. Default: none (matched by `id` only).
    #[serde(default, rename = "match")]
    pub matchers: BTreeMap<String, String>,
}

/// The topology file as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    #[serde(default)]
    pub capabilities: BTreeMap<String, Capability>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceDef>,
    #[serde(default)]
    pub cis: Vec<CiDef>,
}
