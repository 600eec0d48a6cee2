//! `[backstage]`: where the service model's Backstage catalog is read from, and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;

/// Where to fetch the Backstage catalog, and how often.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackstageConfig {
    /// Base URL of Backstage's backend, e.g. `https://backstage.example.com`; d2c reads
    /// `<url>/api/catalog/entities/by-query`. Default: empty (off).
    pub url: String,
    /// Bearer token for the catalog API (a Backstage static or service token): `env:NAME` or
    /// `file:PATH`, read at each refresh and never logged. Default: none (no token sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// How often the catalog and the topology file are read again. A failed read keeps the
    /// model in use. Default: `5m`.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Longest wait for one page of the catalog. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for BackstageConfig {
    fn default() -> Self {
        BackstageConfig {
            url: String::new(),
            token: None,
            refresh_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

impl BackstageConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}
