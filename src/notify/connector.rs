//! Dispatch to the tool-specific code: each configured connector built once, with its HTTP
//! client and secrets, and one attempt at delivering an item to it.

use std::sync::Arc;

use crate::config::secret::{Secret, SecretError, SecretRef};
use crate::config::{ConnectorConfig, ConnectorKind};

use super::http::{Auth, Http};
use super::item::{Item, Sent};
use super::retry::Failure;
use super::{jira, pagerduty, servicenow, slack, webhook};

/// Why a connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("notify connector `{name}`: cannot build its HTTP client: {reason}")]
    Client { name: String, reason: String },
}

/// A configured tool, ready to deliver.
#[derive(Debug)]
pub struct Connector {
    pub name: Arc<str>,
    pub kind: ConnectorKind,
    pub tool: Tool,
}

#[derive(Debug)]
pub enum Tool {
    Webhook(webhook::Webhook),
    ServiceNow(servicenow::ServiceNow),
    Jira(jira::Jira),
    PagerDuty(pagerduty::PagerDuty),
    Slack(slack::Slack),
}

impl Connector {
    /// Builds connector `index` of `[[notify.connectors]]`, reading its secrets.
    pub fn build(c: &ConnectorConfig, index: usize) -> Result<Connector, ConnectorError> {
        let field = |f: &str| format!("notify.connectors[{index}].{f}");
        let secret = |r: &Option<SecretRef>, f: &str| {
            r.as_ref().map(|r| r.resolve(&field(f), true)).transpose()
        };
        let url = c.url.resolve(&field("url"), false)?;
        let auth = match (
            &c.username,
            secret(&c.password, "password")?,
            secret(&c.token, "token")?,
        ) {
            (Some(user), Some(password), _) => Auth::Basic {
                user: user.clone(),
                password,
            },
            (_, _, Some(token)) => Auth::Bearer(token),
            _ => Auth::None,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(c.connect_timeout)
            .timeout(c.request_timeout)
            .user_agent(concat!("d2c/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::Client {
                name: c.name.clone(),
                reason: e.to_string(),
            })?;
        let http = Http { client, url, auth };
        let tool = match c.kind {
            ConnectorKind::Webhook => Tool::Webhook(webhook::Webhook {
                http,
                hmac: secret(&c.hmac_secret, "hmac_secret")?,
            }),
            ConnectorKind::Servicenow => Tool::ServiceNow(servicenow::ServiceNow {
                http,
                assignment_group: c.assignment_group.clone(),
            }),
            ConnectorKind::Jira => Tool::Jira(jira::Jira {
                http,
                project: c.project.clone().unwrap_or_default(),
                issue_type: c.issue_type.clone(),
                change_issue_type: c.change_issue_type.clone(),
                problem_issue_type: c.problem_issue_type.clone(),
                resolve_transition: c.resolve_transition.clone(),
                cancel_transition: c.cancel_transition.clone(),
            }),
            ConnectorKind::Pagerduty => Tool::PagerDuty(pagerduty::PagerDuty {
                http,
                // Checked by validation; an empty key would be refused by PagerDuty with a 400.
                routing_key: secret(&c.routing_key, "routing_key")?
                    .unwrap_or_else(|| Secret::new("")),
            }),
            ConnectorKind::Slack => Tool::Slack(slack::Slack { http }),
        };
        Ok(Connector {
            name: c.name.as_str().into(),
            kind: c.kind,
            tool,
        })
    }

    /// One attempt at delivering `item`.
    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        match &self.tool {
            Tool::Webhook(t) => t.deliver(item).await,
            Tool::ServiceNow(t) => t.deliver(item).await,
            Tool::Jira(t) => t.deliver(item).await,
            Tool::PagerDuty(t) => t.deliver(item).await,
            Tool::Slack(t) => t.deliver(item).await,
        }
    }
}
