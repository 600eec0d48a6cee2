//! The record being delivered: an incident version, an RFC or a problem read back from its
//! topic, decoded once and handed to every connector a route selects, and what a delivery came
//! to.

use crate::config::{RecordType, RouteCategory};
use crate::model::{Incident, IncidentStatus, Output, Priority, Problem, Rfc};

/// One record read from `topics.incidents`, `topics.changes` or `topics.problems`, decoded.
#[derive(Debug, Clone)]
pub struct Item {
    /// The bytes as published: what a webhook receives.
    pub raw: Vec<u8>,
    pub record: Record,
    /// Security for incidents with a `security` section and their containment RFCs (or a
    /// record with `"category": "security"`), else operational.
    pub category: RouteCategory,
}

#[derive(Debug, Clone)]
pub enum Record {
    Incident(Box<Incident>),
    Change(Box<Rfc>),
    Problem(Box<Problem>),
}

/// Why a record cannot be delivered by any connector.
#[derive(Debug, thiserror::Error)]
#[error("not an incident, change or problem record: {0}")]
pub struct DecodeError(String);

impl Item {
    pub fn decode(raw: &[u8]) -> Result<Item, DecodeError> {
        let record = match serde_json::from_slice::<Output>(raw) {
            Ok(Output::Incident(i)) => Record::Incident(Box::new(i)),
            Ok(Output::Change(r)) => Record::Change(Box::new(r)),
            Ok(Output::Problem(p)) => Record::Problem(Box::new(p)),
            Ok(Output::Dlq(_)) => return Err(DecodeError("a dlq record".into())),
            Err(e) => return Err(DecodeError(e.to_string())),
        };
        #[derive(serde::Deserialize)]
        struct Category {
            category: Option<String>,
        }
        let security = match &record {
            Record::Incident(i) => i.security.is_some(),
            Record::Change(r) => r.containment.is_some(),
            Record::Problem(_) => false,
        };
        let category = match serde_json::from_slice::<Category>(raw) {
            _ if security => RouteCategory::Security,
            Ok(Category { category: Some(c) }) if c == "security" => RouteCategory::Security,
            _ => RouteCategory::Operational,
        };
        Ok(Item {
            raw: raw.to_vec(),
            record,
            category,
        })
    }

    pub fn id(&self) -> &str {
        match &self.record {
            Record::Incident(i) => &i.id,
            Record::Change(r) => &r.id,
            Record::Problem(p) => &p.id,
        }
    }

    pub fn version(&self) -> u32 {
        match &self.record {
            Record::Incident(i) => i.version,
            Record::Change(r) => r.version,
            Record::Problem(p) => p.version,
        }
    }

    pub fn kind(&self) -> RecordType {
        match &self.record {
            Record::Incident(_) => RecordType::Incident,
            Record::Change(_) => RecordType::Change,
            Record::Problem(_) => RecordType::Problem,
        }
    }

    pub fn priority(&self) -> Priority {
        match &self.record {
            Record::Incident(i) => i.priority,
            Record::Change(r) => r.priority,
            Record::Problem(p) => p.priority,
        }
    }

    pub fn status(&self) -> Option<IncidentStatus> {
        match &self.record {
            Record::Incident(i) => Some(i.status),
            Record::Change(_) | Record::Problem(_) => None,
        }
    }

    /// The key that makes a delivery idempotent: `<id>:<version>`.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.id(), self.version())
    }
}

/// What a delivery came to, short of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The tool acknowledged it.
    Delivered,
    /// Nothing to send to this tool (e.g. an RFC to PagerDuty, which takes incidents only).
    Skipped,
}
