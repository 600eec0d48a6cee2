//! A configured runbook, ready to run: its HTTP client (timeouts, extra CA), credentials from
//! `env:`/`file:` secrets, and the tool it calls. One attempt at a run is idempotent (each tool
//! looks for its own earlier run of the same RFC first), so the stage may repeat it after an
//! error or a crash.

use std::sync::Arc;

use super::job::{Done, Job};
use super::{awx, kubernetes, webhook};
use crate::config::secret::SecretError;
use crate::config::{AutomationConfig, RunbookConfig, RunbookKind};
use crate::notify::http::{Auth, Http};
use crate::notify::retry::Failure;

/// Why a runbook could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("automation.runbooks[{index}].ca_file: cannot read {path}: {reason}")]
    Ca {
        index: usize,
        path: String,
        reason: String,
    },
    #[error("automation runbook `{name}`: cannot build its HTTP client: {reason}")]
    Client { name: String, reason: String },
}

/// A configured runbook.
#[derive(Debug)]
pub struct Runbook {
    pub name: Arc<str>,
    pub kind: RunbookKind,
    tool: Tool,
}

#[derive(Debug)]
enum Tool {
    Kubernetes(kubernetes::Kubernetes),
    Awx(awx::Awx),
    Webhook(webhook::Webhook),
}

impl Runbook {
    /// Builds runbook `index` of `[[automation.runbooks]]`, reading its secrets and CA file.
    pub fn build(
        c: &RunbookConfig,
        index: usize,
        cfg: &AutomationConfig,
    ) -> Result<Runbook, RunbookError> {
        let field = |f: &str| format!("automation.runbooks[{index}].{f}");
        let url = c.url.resolve(&field("url"), false)?;
        let token = c
            .token
            .as_ref()
            .map(|t| t.resolve(&field("token"), true))
            .transpose()?;
        let password = c
            .password
            .as_ref()
            .map(|t| t.resolve(&field("password"), true))
            .transpose()?;
        let auth = match (&c.username, password, token) {
            (Some(user), Some(password), _) => Auth::Basic {
                user: user.clone(),
                password,
            },
            (_, _, Some(token)) => Auth::Bearer(token),
            _ => Auth::None,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(c.connect_timeout)
            .timeout(c.request_timeout)
            .user_agent(concat!("d2c/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &c.ca_file {
            let ca = |reason: String| RunbookError::Ca {
                index,
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca(e.kind().to_string()))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| RunbookError::Client {
            name: c.name.clone(),
            reason: e.to_string(),
        })?;
        let http = Http { client, url, auth };
        let tool = match c.kind {
            RunbookKind::Kubernetes => Tool::Kubernetes(kubernetes::Kubernetes {
                http,
                operation: c.operation,
                scale_by: c.scale_by,
                max_replicas: c.max_replicas,
            }),
            RunbookKind::Awx => Tool::Awx(awx::Awx {
                http,
                // Checked by validation.
                template: c.job_template.unwrap_or_default(),
                extra_vars: c.extra_vars.clone(),
                poll_interval: cfg.poll_interval,
                job_timeout: cfg.job_timeout,
            }),
            RunbookKind::Webhook => Tool::Webhook(webhook::Webhook {
                hmac: c
                    .hmac_secret
                    .as_ref()
                    .map(|s| s.resolve(&field("hmac_secret"), true))
                    .transpose()?,
                http,
            }),
        };
        Ok(Runbook {
            name: c.name.as_str().into(),
            kind: c.kind,
            tool,
        })
    }

    /// What a run of `job` calls, for the record of a dry run; an error when the RFC lacks
    /// what the tool needs (a Kubernetes Deployment for its service).
    pub fn describe(&self, job: &Job<'_>) -> Result<String, String> {
        match &self.tool {
            Tool::Kubernetes(k) => k.describe(job),
            Tool::Awx(a) => Ok(a.describe()),
            Tool::Webhook(_) => Ok(format!("POST (webhook) Idempotency-Key: {}", job.rfc.id)),
        }
    }

    /// One idempotent attempt at the run. `Failure::Retry` is worth another attempt (the tool
    /// was unreachable or answered 5xx); `Failure::Permanent` ends the run as failed.
    pub async fn attempt(&self, job: &Job<'_>) -> Result<Done, Failure> {
        match &self.tool {
            Tool::Kubernetes(k) => k.run(job).await,
            Tool::Awx(a) => a.run(job).await,
            Tool::Webhook(w) => w.run(job).await,
        }
    }
}
