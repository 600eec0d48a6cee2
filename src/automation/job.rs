//! What every automation tool takes and gives: the run to make ([`Job`]), what it did
//! ([`Done`]), and the failure no retry changes ([`permanent`]). The tools (`awx`, `kubernetes`,
//! `webhook`) and the dispatch over them (`runbook`) import these; nothing here imports them.

use chrono::{DateTime, Utc};

use crate::model::{Rfc, Run};
use crate::notify::retry::Failure;

/// One run to make: the RFC as read from the changes topic, and what the stage knows of it.
#[derive(Debug)]
pub struct Job<'a> {
    pub rfc: &'a Rfc,
    pub run: &'a Run,
    /// The record's bytes as published (what a webhook receives).
    pub raw: &'a [u8],
    /// When the RFC was approved: the moment the run stands for (Kubernetes' `restartedAt`,
    /// the earliest an AWX job of it can have been created).
    pub approved_at: DateTime<Utc>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// What was called.
    pub call: String,
    /// The tool's answer.
    pub answer: String,
    /// The tool showed the change done already (a run before a crash): nothing was called now.
    pub already: bool,
}

/// A failure that no retry changes, with `reason`.
pub fn permanent(reason: impl Into<String>) -> Failure {
    Failure::Permanent {
        status: None,
        body: String::new(),
        reason: reason.into(),
    }
}
