//! The `security` section of a security incident: the ATT&CK stages an attack went through, in
//! the order they were seen, the entities it touched, its techniques and the tools that saw it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a security incident adds to an incident record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SecurityInfo {
    /// The tactics seen, ordered by when each was first seen (ties by kill-chain order).
    pub stages: Vec<Stage>,
    pub entities: Entities,
    /// Every technique and sub-technique id seen, sorted.
    pub techniques: Vec<String>,
    /// The tools whose detections are on the incident (`falco`, `suricata`, …), sorted.
    pub tools: Vec<String>,
}

/// One ATT&CK tactic reached by the attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// `TA0002`.
    pub tactic_id: String,
    /// `Execution`.
    pub tactic: String,
    /// Kill-chain position of the tactic, 1 (Reconnaissance) to 14 (Impact).
    pub order: u8,
    pub first_seen: DateTime<Utc>,
    /// Techniques seen with this tactic, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

/// What the attack touched; each list sorted, absent when empty.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Entities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Every IP address seen on a detection (sources, destinations, the hosts' own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// The source addresses among `ips`: where the attack came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
}
