//! `[automation]`: the runbooks that implement approved RFCs (Kubernetes, AWX / Automation
//! Controller, webhook), the kill switch, dry run and the per-service rate limit. Checked once
//! at start-up; secrets are `env:`/`file:` references read when the stage starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;

/// Running approved RFCs (README "Automation"). Without runbooks the automation stage does not
/// run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AutomationConfig {
    /// The kill switch: while `false`, nothing runs (the stage reads approved RFCs and passes
    /// them over, so turning it on later does not run a backlog). Default: `false`.
    pub enabled: bool,
    /// Record on each RFC what would run (`automation.dry_run`, `call`), and call nothing.
    /// Default: `false`.
    pub dry_run: bool,
    /// Most runs per service within `rate_window`; a run past it is refused and its RFC
    /// `failed` with the reason, for a person to take over. Default: `3`.
    pub max_runs_per_service: u32,
    /// See `max_runs_per_service`. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub rate_window: Duration,
    /// An RFC approved longer ago than this (the stage was down, or the kill switch was off) is
    /// not run. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// How often a running AWX job is polled. Default: `5s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Longest wait for an AWX job to end; then the run is `failed` (the job is left alone).
    /// Default: `30m`.
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    /// The runbooks change-policy rules name (`[[automation.runbooks]]`).
    pub runbooks: Vec<RunbookConfig>,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        AutomationConfig {
            enabled: false,
            dry_run: false,
            max_runs_per_service: 3,
            rate_window: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(5),
            job_timeout: Duration::from_secs(30 * 60),
            runbooks: Vec::new(),
        }
    }
}

/// The tool a runbook calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunbookKind {
    /// The Kubernetes API server: restart or scale the RFC's Deployment.
    Kubernetes,
    /// Ansible AWX / Automation Controller: launch a job template and follow the job.
    Awx,
    /// Any HTTP endpoint: the RFC's JSON, HMAC-signed, with `Idempotency-Key: <RFC id>`.
    Webhook,
}

impl RunbookKind {
    pub const ALL: [RunbookKind; 3] = [
        RunbookKind::Kubernetes,
        RunbookKind::Awx,
        RunbookKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunbookKind::Kubernetes => "kubernetes",
            RunbookKind::Awx => "awx",
            RunbookKind::Webhook => "webhook",
        }
    }
}

/// What a Kubernetes runbook does to the Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesOperation {
    /// A rolling restart, as `kubectl rollout restart` does it.
    Restart,
    /// Add `scale_by` replicas (at most `max_replicas`).
    Scale,
}

/// One runbook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunbookConfig {
    /// Unique name, named by change-policy rules (`automation = "…"`) and used as a metric label.
    pub name: String,
    /// `kubernetes`, `awx` or `webhook`.
    pub kind: RunbookKind,
    /// The API server (`https://kubernetes.default.svc`), the AWX base URL, or the webhook's
    /// endpoint. May be `env:NAME` or `file:PATH`.
    pub url: SecretRef,
    /// Bearer token: a Kubernetes service-account token (e.g.
    /// `file:/var/run/secrets/kubernetes.io/serviceaccount/token`) or an AWX OAuth2 token, as
    /// `env:NAME` or `file:PATH`.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// AWX basic authentication user (with `password`), when no token is used.
    #[serde(default)]
    pub username: Option<String>,
    /// See `username`; `env:NAME` or `file:PATH`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// A PEM file of CA certificates to trust besides the system ones (the cluster's CA, e.g.
    /// `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`). Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Kubernetes: `restart` or `scale`. Default: `restart`.
    #[serde(default = "default_operation")]
    pub operation: KubernetesOperation,
    /// Kubernetes `scale`: replicas to add. Default: `1`.
    #[serde(default = "default_scale_by")]
    pub scale_by: i32,
    /// Kubernetes `scale`: never scale past this many replicas. Default: `20`.
    #[serde(default = "default_max_replicas")]
    pub max_replicas: i32,
    /// AWX: id of the job template to launch. Its variables must be "Prompt on launch", so
    /// d2c's extra vars reach the job. Required for `awx`.
    #[serde(default)]
    pub job_template: Option<u64>,
    /// AWX: extra vars sent with every launch, besides d2c's own (`d2c_change`, `d2c_incident`,
    /// `d2c_service`, `d2c_namespace`, `d2c_deployment`). Default: none.
    #[serde(default)]
    pub extra_vars: BTreeMap<String, serde_json::Value>,
    /// Webhook: key of the HMAC-SHA256 signature sent in `X-D2C-Signature: sha256=<hex>`.
    #[serde(default)]
    pub hmac_secret: Option<SecretRef>,
    /// Longest wait to open a connection. Default: `5s`.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for one request. Default: `30s`.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
}

fn default_operation() -> KubernetesOperation {
    KubernetesOperation::Restart
}
fn default_scale_by() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    20
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

impl AutomationConfig {
    /// Whether the automation stage runs: there is a runbook to run.
    pub fn configured(&self) -> bool {
        !self.runbooks.is_empty()
    }

    /// The runbook named `name`.
    pub fn runbook(&self, name: &str) -> Option<&RunbookConfig> {
        self.runbooks.iter().find(|r| r.name == name)
    }

    /// Cross-field checks: `(key, message)` of the first mistake.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: String, message: &str| Err((key, message.to_string()));
        if self.max_runs_per_service == 0 {
            return err(
                "automation.max_runs_per_service".into(),
                "is 0, which refuses every run; set automation.enabled = false to stop runs",
            );
        }
        for (key, d) in [
            ("automation.rate_window", self.rate_window),
            ("automation.max_delay", self.max_delay),
            ("automation.poll_interval", self.poll_interval),
            ("automation.job_timeout", self.job_timeout),
        ] {
            if d.is_zero() {
                return err(key.into(), "must be above 0");
            }
        }
        for (i, r) in self.runbooks.iter().enumerate() {
            let key = |field: &str| format!("automation.runbooks[{i}].{field}");
            let name_ok = !r.name.is_empty()
                && r.name.len() <= 64
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                return err(
                    key("name"),
                    "must be 1 to 64 letters, digits, `-` or `_` (it is a metric label)",
                );
            }
            if self.runbooks[..i].iter().any(|o| o.name == r.name) {
                return err(key("name"), "is used by another runbook");
            }
            if let SecretRef::Inline(u) = &r.url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return err(
                    key("url"),
                    "must be an http:// or https:// URL, or `env:NAME` / `file:PATH` holding one",
                );
            }
            if r.connect_timeout.is_zero() || r.request_timeout.is_zero() {
                return err(
                    key("request_timeout"),
                    "and connect_timeout must be above 0",
                );
            }
            if r.username.is_some() != r.password.is_some() {
                return err(
                    key("password"),
                    "and `username` go together (basic authentication needs both)",
                );
            }
            match r.kind {
                RunbookKind::Awx if r.job_template.is_none() => {
                    return err(
                        key("job_template"),
                        "is required for an awx runbook (the id of the job template to launch)",
                    );
                }
                RunbookKind::Kubernetes if r.scale_by < 1 || r.max_replicas < 1 => {
                    return err(key("scale_by"), "and max_replicas must be at least 1");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), (String, String)> {
        toml::from_str::<AutomationConfig>(text)
            .map_err(|e| ("parse".to_string(), e.to_string()))?
            .validate()
    }

    #[test]
    fn mistakes_name_the_key_and_the_kill_switch_starts_off() {
        let d = AutomationConfig::default();
        assert!(!d.enabled && !d.dry_run && !d.configured());
        let e =
            check("[[runbooks]]\nname = \"a\"\nkind = \"awx\"\nurl = \"https://awx\"").unwrap_err();
        assert_eq!(e.0, "automation.runbooks[0].job_template");
        let e = check("[[runbooks]]\nname = \"a b\"\nkind = \"webhook\"\nurl = \"https://x\"")
            .unwrap_err();
        assert_eq!(e.0, "automation.runbooks[0].name");
        let two = "[[runbooks]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x\"\n";
        let e = check(&format!("{two}{two}")).unwrap_err();
        assert_eq!(e.0, "automation.runbooks[1].name");
        let e =
            check("[[runbooks]]\nname = \"a\"\nkind = \"kubernetes\"\nurl = \"k8s\"").unwrap_err();
        assert_eq!(e.0, "automation.runbooks[0].url");
        assert_eq!(
            check("max_runs_per_service = 0").unwrap_err().0,
            "automation.max_runs_per_service"
        );
        assert!(check("[[runbooks]]\nname = \"a\"\nkind = \"ssh\"\nurl = \"https://x\"").is_err());
        assert!(check("[[runbooks]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x\"\nsecret = \"s\"").is_err(), "unknown keys are refused");
        let ok = check(
            "enabled = true\n[[runbooks]]\nname = \"r\"\nkind = \"kubernetes\"\nurl = \"env:K8S_URL\"\ntoken = \"file:/t\"",
        );
        assert_eq!(ok, Ok(()));
    }
}
