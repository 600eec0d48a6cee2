//! `[notify]`: the connectors d2c delivers incidents, RFCs and problems to, the routes choosing which
//! records go where, and the retry policy. Checked once at start-up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;
use crate::model::{IncidentStatus, Priority};

/// Delivery to ITSM and paging tools. Without connectors the delivery stage does not run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The tools to deliver to, each with a unique `name` (`[[notify.connectors]]`).
    pub connectors: Vec<ConnectorConfig>,
    /// Which records go to which connector (`[[notify.routes]]`). A record goes to every
    /// connector with a matching route, once per connector.
    pub routes: Vec<RouteConfig>,
    /// How failed deliveries are retried.
    pub retry: RetryConfig,
}

/// The kind of tool a connector talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// Any HTTP endpoint: the record's JSON as published, `Idempotency-Key` and
    /// `X-D2C-Signature` headers.
    Webhook,
    /// ServiceNow Table API: tables `incident` and `change_request`.
    Servicenow,
    /// Jira REST API v2: one issue per incident or RFC, transitioned on resolve.
    Jira,
    /// PagerDuty Events API v2: trigger, acknowledge and resolve (incidents only).
    Pagerduty,
    /// Slack incoming webhook: one readable message per record.
    Slack,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "webhook",
            ConnectorKind::Servicenow => "servicenow",
            ConnectorKind::Jira => "jira",
            ConnectorKind::Pagerduty => "pagerduty",
            ConnectorKind::Slack => "slack",
        }
    }
}

/// One tool d2c delivers to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Unique name, used by routes and as the `connector` label of the metrics.
    pub name: String,
    /// `webhook`, `servicenow`, `jira`, `pagerduty` or `slack`.
    pub kind: ConnectorKind,
    /// Base URL (ServiceNow instance, Jira site) or endpoint URL (webhook, PagerDuty
    /// `https://events.pagerduty.com/v2/enqueue`, Slack incoming webhook). May be `env:NAME` or
    /// `file:PATH` (a Slack webhook URL is itself a secret); never logged.
    pub url: SecretRef,
    /// User for basic authentication (ServiceNow, Jira with `password` holding an API token).
    #[serde(default)]
    pub username: Option<String>,
    /// Password or API token for basic authentication, as `env:NAME` or `file:PATH`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Bearer token (ServiceNow OAuth, Jira personal access token), as `env:NAME` or
    /// `file:PATH`. Used when no `username` is set.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Webhook: key of the HMAC-SHA256 signature sent in `X-D2C-Signature: sha256=<hex>`.
    #[serde(default)]
    pub hmac_secret: Option<SecretRef>,
    /// PagerDuty: the integration (routing) key of the service. Required for `pagerduty`.
    #[serde(default)]
    pub routing_key: Option<SecretRef>,
    /// Longest wait to open a connection. Default: `5s`.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for a whole request (connect, send, answer). Default: `10s`.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// ServiceNow: `assignment_group` of created incidents and change requests. Default: none.
    #[serde(default)]
    pub assignment_group: Option<String>,
    /// Jira: key of the project issues are created in. Required for `jira`.
    #[serde(default)]
    pub project: Option<String>,
    /// Jira: issue type of incidents. Default: `Incident`.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Jira: issue type of RFCs. Default: `Change`.
    #[serde(default = "default_change_issue_type")]
    pub change_issue_type: String,
    /// Jira: issue type of problems (Jira Service Management has `Problem`). Default: `Problem`.
    #[serde(default = "default_problem_issue_type")]
    pub problem_issue_type: String,
    /// Jira: name of the transition applied when an incident resolves (case-insensitive).
    /// Default: `Done`.
    #[serde(default = "default_resolve_transition")]
    pub resolve_transition: String,
    /// Jira: name of the transition applied when an RFC is withdrawn (its incident no longer
    /// needs it); when the issue does not offer it, `resolve_transition` is applied instead.
    /// Default: `Cancel`.
    #[serde(default = "default_cancel_transition")]
    pub cancel_transition: String,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_issue_type() -> String {
    "Incident".into()
}
fn default_change_issue_type() -> String {
    "Change".into()
}
fn default_problem_issue_type() -> String {
    "Problem".into()
}
fn default_resolve_transition() -> String {
    "Done".into()
}
fn default_cancel_transition() -> String {
    "Cancel".into()
}

/// Record types a route can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// Incident versions from `topics.incidents`.
    Incident,
    /// RFCs from `topics.changes`.
    Change,
    /// Problems and known errors from `topics.problems`.
    Problem,
}

/// Operational or security incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteCategory {
    Operational,
    Security,
}

/// Which records go to one connector. Every condition given must hold; a list holds when any
/// entry matches; an empty or absent list holds always.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name of the connector (`[[notify.connectors]]` `name`).
    pub connector: String,
    /// `incident`, `change`, `problem`. Default: all three.
    #[serde(default)]
    pub types: Vec<RecordType>,
    /// Priorities (`P1`…`P4`) of the incident, RFC or problem. Default: any.
    #[serde(default)]
    pub priorities: Vec<Priority>,
    /// Business capabilities the incident hurts (RFCs: those of their incident are not known,
    /// so a route with capabilities takes no RFCs). Default: any.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `operational`, `security`: an incident record with `"category": "security"` is a
    /// security one, every other record operational. Default: any.
    #[serde(default)]
    pub categories: Vec<RouteCategory>,
    /// Incident statuses (`open`, `resolved`, `closed`); RFCs and problems have none and pass.
    /// Leave `resolved` in to have tickets resolved. Default: any.
    #[serde(default)]
    pub statuses: Vec<IncidentStatus>,
}

/// Retries of a failed delivery: exponential backoff with jitter, `Retry-After` honoured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per record and connector before it goes to the delivery dead-letter topic;
    /// `0` retries without limit (the record then waits for the tool however long it is away).
    /// Default: `0`.
    pub max_attempts: u32,
    /// Time per record and connector after which it goes to the delivery dead-letter topic
    /// instead of being retried. Default: none (no limit).
    #[serde(default, with = "humantime_serde::option")]
    pub max_elapsed: Option<Duration>,
    /// Wait before the first retry; doubled for each next one, with jitter. Default: `500ms`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between retries (a `Retry-After` asking for longer is still obeyed, up to
    /// 1 hour). Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 0,
            max_elapsed: None,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A problem in `[notify]`: the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` {message}")]
pub struct NotifyConfigError {
    pub key: String,
    pub message: String,
}

impl NotifyConfig {
    /// Whether the delivery stage runs.
    pub fn enabled(&self) -> bool {
        !self.connectors.is_empty()
    }

    /// Cross-field checks; the error names the key (e.g. `notify.connectors[1].project`).
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let err = |key: String, message: &str| NotifyConfigError {
            key,
            message: message.to_string(),
        };
        for (i, c) in self.connectors.iter().enumerate() {
            let key = |field: &str| format!("notify.connectors[{i}].{field}");
            let name_ok = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !name_ok {
                return Err(err(
                    key("name"),
                    "must be 1 to 64 letters, digits, `-` or `_` (it is a metric label)",
                ));
            }
            if self.connectors[..i].iter().any(|o| o.name == c.name) {
                return Err(err(key("name"), "is used by another connector"));
            }
            if let SecretRef::Inline(u) = &c.url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(err(
                    key("url"),
                    "must be an http:// or https:// URL, or `env:NAME` / `file:PATH` holding one",
                ));
            }
            if c.request_timeout.is_zero() || c.connect_timeout.is_zero() {
                return Err(err(
                    key("request_timeout"),
                    "and connect_timeout must be above 0",
                ));
            }
            if c.username.is_some() != c.password.is_some() {
                return Err(err(
                    key("password"),
                    "and `username` go together (basic authentication needs both)",
                ));
            }
            match c.kind {
                ConnectorKind::Pagerduty if c.routing_key.is_none() => {
                    return Err(err(
                        key("routing_key"),
                        "is required for a pagerduty connector (the service's integration key)",
                    ));
                }
                ConnectorKind::Jira if c.project.as_deref().is_none_or(str::is_empty) => {
                    return Err(err(
                        key("project"),
                        "is required for a jira connector (the project key, e.g. OPS)",
                    ));
                }
                _ => {}
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !self.connectors.iter().any(|c| c.name == r.connector) {
                return Err(err(
                    format!("notify.routes[{i}].connector"),
                    &format!(
                        "is `{}`, which no [[notify.connectors]] is named",
                        r.connector
                    ),
                ));
            }
        }
        if let Some((i, c)) = self
            .connectors
            .iter()
            .enumerate()
            .find(|(_, c)| !self.routes.iter().any(|r| r.connector == c.name))
        {
            return Err(err(
                format!("notify.connectors[{i}].name"),
                &format!(
                    "`{}` has no route; add a [[notify.routes]] with connector = \"{}\"",
                    c.name, c.name
                ),
            ));
        }
        let r = &self.retry;
        if r.initial_backoff.is_zero() {
            return Err(err(
                "notify.retry.initial_backoff".into(),
                "must be above 0",
            ));
        }
        if r.max_backoff < r.initial_backoff {
            return Err(err(
                "notify.retry.max_backoff".into(),
                "must be at least notify.retry.initial_backoff",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_mistakes_name_the_key() {
        let bad = |text: &str| toml::from_str::<NotifyConfig>(text).map(|c| c.validate());
        let e = bad("[[connectors]]\nname = \"j\"\nkind = \"jira\"\nurl = \"http://x\"\n[[routes]]\nconnector = \"j\"")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.key, "notify.connectors[0].project");
        let e = bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\n[[routes]]\nconnector = \"b\"")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.key, "notify.routes[0].connector");
        let e = bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n[[routes]]\nconnector = \"a\"")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.key, "notify.connectors[0].url");
        assert!(
            bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"x\"")
                .is_err(),
            "unknown keys are refused"
        );
        assert!(bad("[[connectors]]\nname = \"a\"\nkind = \"fax\"\nurl = \"http://x\"").is_err());
        assert!(NotifyConfig::default().validate().is_ok() && !NotifyConfig::default().enabled());
    }
}
