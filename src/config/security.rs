//! `[correlation.security]`: how security detections are grouped into security incidents
//! (`correlate::security`) and spread over the events partitions (`correlate::route`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Grouping of security detections per attacked entity (`correlate::security`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A detection joins an open security incident sharing a host, user or address with it only
    /// if the incident saw a detection at most this long before. Default: `30m`.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// A security incident closes when it saw no detection for this long (security tools send
    /// no resolves). Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub quiet_period: Duration,
    /// Detections less severe than this open no incident; they still join one that shares an
    /// entity with them. Default: `warning`.
    pub min_severity: crate::model::Severity,
    /// Addresses of known hosts, address → host name (`"10.0.1.5" = "web-1"`), so a network
    /// sensor's alert about an address groups with host detections about that host.
    /// Default: none.
    pub assets: std::collections::BTreeMap<String, String>,
    /// Addresses never used to group detections (NAT gateways, proxies, scanners of your own):
    /// many unrelated detections share them. Default: none.
    pub shared_ips: Vec<String>,
    /// How security detections are spread over the events partitions. `one` (the default):
    /// all of them meet in one correlation domain, so one partition, one instance, correlates
    /// them all and an attack that moves between hosts is one incident. `entity`: each goes to
    /// the partition of the entity it is about (its attacked host, see README "Security
    /// triage"), so several instances share the work; detections about different hosts are
    /// then correlated apart, and an address reaches its host's partition only through
    /// `assets`.
    pub partition: SecurityPartition,
}

/// See [`SecurityConfig::partition`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecurityPartition {
    #[default]
    One,
    Entity,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            window: Duration::from_secs(30 * 60),
            quiet_period: Duration::from_secs(60 * 60),
            min_severity: crate::model::Severity::Warning,
            assets: Default::default(),
            shared_ips: Vec::new(),
            partition: SecurityPartition::One,
        }
    }
}
