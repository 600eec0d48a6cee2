//! An alert as the correlator keeps it while it is active ([`StoredAlert`]): the fields of the
//! published [`AlertRef`] with its text shared rather than owned, since a million active alerts
//! repeat their fingerprints (map key, the alert, its incident's member list), names, sources,
//! CIs and services. Serialised exactly as the `AlertRef` it stands for, so checkpoints keep
//! their format.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::intern::Interner;
use crate::model::{AlertRef, Labels, Severity, Status};

/// The deduplicated state of one fingerprint. Field for field an [`AlertRef`] (the same JSON),
/// without `symptom_of`, which only published records carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// The same string as the alert's key in `State::alerts` and in its incident's members.
    pub fingerprint: Arc<str>,
    pub name: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Arc<str>>,
    pub source: Arc<str>,
    pub severity: Severity,
    pub status: Status,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub first_seen: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub last_seen: DateTime<Utc>,
    /// How many events this alert has absorbed (firing and resolved alike).
    pub count: u64,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub annotations: Labels,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_resolved: bool,
}

impl StoredAlert {
    /// The alert as an incident record lists it.
    pub fn to_ref(&self) -> AlertRef {
        AlertRef {
            fingerprint: self.fingerprint.clone(),
            name: self.name.clone(),
            ci: self.ci.clone(),
            service: self.service.clone(),
            source: self.source.clone(),
            severity: self.severity,
            status: self.status,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            count: self.count,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            flapping: self.flapping,
            auto_resolved: self.auto_resolved,
            symptom_of: None,
        }
    }

    /// Its fallback domain when the model does not know its service (see
    /// [`fallback_domain`](crate::topology::fallback_domain)), or `None`.
    pub fn fallback_domain(&self, keys: &[String]) -> Option<String> {
        if keys.is_empty() || self.service.is_some() {
            return None;
        }
        crate::topology::fallback_domain(|k| self.labels.get(k), keys)
    }

    /// What the alert is about (see [`subject`](super::fallback::subject)).
    pub fn subject(&self) -> &str {
        super::fallback::subject_of(
            self.service.as_deref(),
            self.ci.as_deref(),
            &self.labels,
            &self.name,
        )
    }

    /// Shares its text with the other alerts through `names`, and its fingerprint with `key`
    /// (after a restore every string is its own copy).
    pub(super) fn share(&mut self, key: &Arc<str>, names: &mut Interner) {
        self.fingerprint = key.clone();
        self.name = names.share(&self.name);
        self.source = names.share(&self.source);
        if let Some(ci) = &mut self.ci {
            *ci = names.share(ci);
        }
        if let Some(s) = &mut self.service {
            *s = names.share(s);
        }
    }
}
