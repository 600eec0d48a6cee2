//! What every connector shares: the record being delivered, the HTTP client with its timeouts
//! and credentials, and dispatch to the tool-specific code.

use std::sync::Arc;

use crate::model::{Incident, IncidentStatus, Output, Priority, Rfc};

use super::config::{ConnectorConfig, ConnectorKind, RecordType, RouteCategory};
use super::retry::{self, Failure};
use super::secret::{Secret, SecretError};
use super::{jira, pagerduty, servicenow, slack, webhook};

/// One record read from `topics.incidents` or `topics.changes`, decoded.
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
    Change(Rfc),
}

/// Why a record cannot be delivered by any connector.
#[derive(Debug, thiserror::Error)]
#[error("not an incident or change record: {0}")]
pub struct DecodeError(String);

impl Item {
    pub fn decode(raw: &[u8]) -> Result<Item, DecodeError> {
        let record = match serde_json::from_slice::<Output>(raw) {
            Ok(Output::Incident(i)) => Record::Incident(Box::new(i)),
            Ok(Output::Change(r)) => Record::Change(r),
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
        }
    }

    pub fn version(&self) -> u32 {
        match &self.record {
            Record::Incident(i) => i.version,
            Record::Change(r) => r.version,
        }
    }

    pub fn kind(&self) -> RecordType {
        match &self.record {
            Record::Incident(_) => RecordType::Incident,
            Record::Change(_) => RecordType::Change,
        }
    }

    pub fn priority(&self) -> Priority {
        match &self.record {
            Record::Incident(i) => i.priority,
            Record::Change(r) => r.priority,
        }
    }

    pub fn status(&self) -> Option<IncidentStatus> {
        match &self.record {
            Record::Incident(i) => Some(i.status),
            Record::Change(_) => None,
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

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

/// The HTTP side of a connector: client with its timeouts, base URL, credentials.
#[derive(Debug, Clone)]
pub struct Http {
    pub client: reqwest::Client,
    /// Never logged: it may carry a secret (Slack webhook URLs do).
    pub url: Secret,
    pub auth: Auth,
}

impl Http {
    /// The base URL with `path` appended (`path` starts with `/`).
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url.expose().trim_end_matches('/'))
    }

    /// A request with the connector's credentials.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let b = self.client.request(method, url);
        match &self.auth {
            Auth::None => b,
            Auth::Basic { user, password } => b.basic_auth(user, Some(password.expose())),
            Auth::Bearer(t) => b.bearer_auth(t.expose()),
        }
    }

    /// Sends `req` and classifies the answer; `Ok(body)` for 2xx.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, Failure> {
        let response = req.send().await.map_err(|e| retry::transport(&e))?;
        retry::check(response).await
    }
}

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
        let secret = |r: &Option<super::secret::SecretRef>, f: &str| {
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
                resolve_transition: c.resolve_transition.clone(),
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

/// A human description shared by the ticketing connectors.
pub fn incident_description(i: &Incident) -> String {
    let mut d = format!(
        "d2c incident {} (version {}), {} {:?}, status {}.\n",
        i.id,
        i.version,
        i.priority.as_str(),
        i.severity,
        i.status.as_str()
    );
    if let Some(rc) = &i.root_cause {
        d.push_str(&format!(
            "Probable root cause: {} ({})\n",
            rc.service, rc.reason
        ));
    }
    if !i.services.is_empty() {
        d.push_str(&format!("Affected services: {}\n", i.services.join(", ")));
    }
    if !i.capabilities.is_empty() {
        d.push_str(&format!(
            "Business capabilities: {} (criticality {}, revenue at risk {:.0}/min)\n",
            i.capabilities.join(", "),
            i.impact.criticality,
            i.impact.revenue_at_risk_per_minute
        ));
    }
    d.push_str(&format!("Alerts: {}\n", i.alerts.len()));
    for a in i.alerts.iter().take(20) {
        d.push_str(&format!(
            "- {} on {} ({:?}, {:?})\n",
            a.name,
            a.ci.as_deref().or(a.service.as_deref()).unwrap_or("?"),
            a.severity,
            a.status
        ));
    }
    d
}

/// A human description of an RFC.
pub fn rfc_description(r: &Rfc) -> String {
    format!(
        "d2c change request {} for incident {} (rule {}).\nAction: {}\nCategory: {:?}, risk: {:?}, approval: {:?}, priority: {}\nServices: {}\nCIs: {}\n",
        r.id,
        r.incident_id,
        r.rule,
        r.action,
        r.category,
        r.risk,
        r.approval,
        r.priority.as_str(),
        r.services.join(", "),
        r.cis.join(", ")
    )
}
