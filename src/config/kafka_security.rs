//! `[kafka.security]`: how d2c reaches a secured Kafka (TLS, SASL), as first-class settings
//! mapped onto librdkafka's properties, with the checks `d2c check` and start-up run on them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::secret::{SecretError, SecretRef};

/// How every Kafka client of d2c connects and authenticates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSecurity {
    /// `plaintext`, `ssl` (TLS), `sasl_plaintext` (SASL without TLS: test set-ups only) or
    /// `sasl_ssl` (SASL over TLS: Confluent Cloud, MSK, Aiven, Strimzi). Default: `plaintext`.
    pub protocol: Protocol,
    /// PEM file of the certificate authorities that sign the brokers' certificates. Default:
    /// none (the system's CA store, found where the distribution keeps it — librdkafka's
    /// `ssl.ca.location = probe` — enough for public clouds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of d2c's own certificate, for brokers that require client certificates (mutual
    /// TLS). Needs `key_file`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// PEM file of the private key of `certificate_file`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted `key_file`: `env:NAME` or `file:PATH`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_password: Option<SecretRef>,
    /// Check that a broker's certificate names the host d2c connected to. Turn off only for
    /// brokers reached by an address their certificate does not list. Default: `true`.
    pub verify_hostname: bool,
    /// SASL mechanism with a `sasl_*` protocol: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or
    /// `OAUTHBEARER`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name (PLAIN, SCRAM). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SASL password (PLAIN, SCRAM): `env:NAME` or `file:PATH`, read at start-up, never
    /// logged. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// OAUTHBEARER without a token endpoint: librdkafka's unsecured JWT with this
    /// configuration (`principal=<name>`; test set-ups only). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauthbearer_config: Option<String>,
}

impl Default for KafkaSecurity {
    fn default() -> Self {
        KafkaSecurity {
            protocol: Protocol::Plaintext,
            ca_file: None,
            certificate_file: None,
            key_file: None,
            key_password: None,
            verify_hostname: true,
            sasl_mechanism: None,
            username: None,
            password: None,
            oauthbearer_config: None,
        }
    }
}

/// `security.protocol` of librdkafka.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// `sasl.mechanism` of librdkafka.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "OAUTHBEARER")]
    OauthBearer,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }

    fn needs_password(self) -> bool {
        !matches!(self, SaslMechanism::OauthBearer)
    }
}

/// A setting of `[kafka.security]` that cannot work, with its key.
#[derive(Debug, thiserror::Error)]
#[error("`{key}` {message}")]
pub struct SecurityError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> SecurityError {
    SecurityError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// librdkafka properties `[kafka.security]` sets; `kafka.properties` may not set them too.
pub const PROPERTIES: [&str; 11] = [
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
];

impl KafkaSecurity {
    /// Whether any setting differs from the default (plain TCP, no authentication).
    pub fn is_set(&self) -> bool {
        *self != KafkaSecurity::default()
    }

    /// The checks that need no file or secret: settings that contradict each other.
    pub fn check(
        &self,
        properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), SecurityError> {
        let p = self.protocol;
        if self.is_set()
            && let Some(k) = PROPERTIES.iter().find(|k| properties.contains_key(**k))
        {
            return Err(err(
                &format!("kafka.properties.\"{k}\""),
                "is also set by [kafka.security]; set the connection's security in one place (prefer [kafka.security])",
            ));
        }
        match (p.sasl(), self.sasl_mechanism) {
            (true, None) => {
                return Err(err(
                    "kafka.security.sasl_mechanism",
                    format!(
                        "is not set, but protocol `{}` authenticates with SASL; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                        p.as_librdkafka()
                    ),
                ));
            }
            (false, Some(m)) => {
                return Err(err(
                    "kafka.security.sasl_mechanism",
                    format!(
                        "is `{}`, but protocol `{}` does no SASL; use protocol `sasl_ssl`",
                        m.as_str(),
                        p.as_librdkafka()
                    ),
                ));
            }
            (true, Some(m)) if m.needs_password() => {
                if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                    return Err(err(
                        "kafka.security.username",
                        format!("is not set; SASL {} needs a user name", m.as_str()),
                    ));
                }
                if self.password.is_none() {
                    return Err(err(
                        "kafka.security.password",
                        format!(
                            "is not set; SASL {} needs a password (`env:NAME` or `file:PATH`)",
                            m.as_str()
                        ),
                    ));
                }
            }
            _ => {}
        }
        if !p.tls() {
            for (key, set) in [
                ("kafka.security.ca_file", self.ca_file.is_some()),
                (
                    "kafka.security.certificate_file",
                    self.certificate_file.is_some(),
                ),
                ("kafka.security.key_file", self.key_file.is_some()),
            ] {
                if set {
                    return Err(err(
                        key,
                        format!(
                            "is set, but protocol `{}` does not use TLS; use protocol `ssl` or `sasl_ssl`",
                            p.as_librdkafka()
                        ),
                    ));
                }
            }
        }
        match (&self.certificate_file, &self.key_file) {
            (Some(_), None) => {
                return Err(err(
                    "kafka.security.key_file",
                    "is not set; a client certificate needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "kafka.security.certificate_file",
                    "is not set; a private key needs its certificate",
                ));
            }
            _ => {}
        }
        if self.key_password.is_some() && self.key_file.is_none() {
            return Err(err(
                "kafka.security.key_password",
                "is set without `kafka.security.key_file`",
            ));
        }
        Ok(())
    }

    /// The checks that read files and secrets (run by `d2c check` and at start-up): every file
    /// exists and reads as PEM of the right kind, every secret resolves.
    pub fn verify(&self) -> Result<(), SecurityError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        for (key, file) in [
            ("kafka.security.ca_file", &self.ca_file),
            ("kafka.security.certificate_file", &self.certificate_file),
        ] {
            let Some(path) = file else { continue };
            readable(key, path)?;
            let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    err(
                        key,
                        format!("is `{}`, which is not PEM: {e}", path.display()),
                    )
                })?
                .collect();
            match certs {
                Ok(c) if !c.is_empty() => {}
                Ok(_) => {
                    return Err(err(
                        key,
                        format!(
                            "is `{}`, which holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                            path.display()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(err(
                        key,
                        format!(
                            "is `{}`, whose certificates do not read: {e}",
                            path.display()
                        ),
                    ));
                }
            }
        }
        if let Some(path) = &self.key_file {
            let key = "kafka.security.key_file";
            let text = readable(key, path)?;
            let encrypted = text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----");
            if encrypted && self.key_password.is_none() {
                return Err(err(
                    key,
                    format!(
                        "is `{}`, an encrypted key; set kafka.security.key_password",
                        path.display()
                    ),
                ));
            }
            if !encrypted && PrivateKeyDer::from_pem_slice(text.as_bytes()).is_err() {
                return Err(err(
                    key,
                    format!(
                        "is `{}`, which holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)",
                        path.display()
                    ),
                ));
            }
        }
        self.resolved()?;
        Ok(())
    }

    /// The librdkafka properties of these settings, secrets resolved.
    pub fn properties(&self) -> Result<Vec<(&'static str, String)>, SecurityError> {
        let mut out = Vec::new();
        if !self.is_set() {
            return Ok(out);
        }
        let (key_password, password) = self.resolved()?;
        out.push((
            "security.protocol",
            self.protocol.as_librdkafka().to_string(),
        ));
        let path = |p: &Path| p.display().to_string();
        if let Some(p) = &self.ca_file {
            out.push(("ssl.ca.location", path(p)));
        } else if self.protocol.tls() {
            // The system's CA store, wherever this OpenSSL (built with d2c or the
            // distribution's) would not look by itself: librdkafka probes the usual paths.
            out.push(("ssl.ca.location", "probe".to_string()));
        }
        if let Some(p) = &self.certificate_file {
            out.push(("ssl.certificate.location", path(p)));
        }
        if let Some(p) = &self.key_file {
            out.push(("ssl.key.location", path(p)));
        }
        if let Some(p) = key_password {
            out.push(("ssl.key.password", p));
        }
        if self.protocol.tls() && !self.verify_hostname {
            out.push(("ssl.endpoint.identification.algorithm", "none".to_string()));
        }
        if let Some(m) = self.sasl_mechanism {
            out.push(("sasl.mechanism", m.as_str().to_string()));
        }
        if let Some(u) = &self.username {
            out.push(("sasl.username", u.clone()));
        }
        if let Some(p) = password {
            out.push(("sasl.password", p));
        }
        if let Some(c) = &self.oauthbearer_config {
            out.push(("sasl.oauthbearer.config", c.clone()));
            out.push(("enable.sasl.oauthbearer.unsecure.jwt", "true".to_string()));
        }
        Ok(out)
    }

    /// A short description for logs: protocol, mechanism and user, never a secret.
    pub fn describe(&self) -> String {
        let mut s = self.protocol.as_librdkafka().to_string();
        if let Some(m) = self.sasl_mechanism {
            s.push_str(&format!(" {}", m.as_str()));
        }
        if let Some(u) = &self.username {
            s.push_str(&format!(" as `{u}`"));
        }
        s
    }

    fn resolved(&self) -> Result<(Option<String>, Option<String>), SecurityError> {
        let resolve = |key: &str, r: &Option<SecretRef>| -> Result<Option<String>, SecurityError> {
            r.as_ref()
                .map(|r| {
                    r.resolve(key, true)
                        .map(|s| s.expose().to_string())
                        .map_err(|e: SecretError| err(key, secret_message(&e)))
                })
                .transpose()
        };
        Ok((
            resolve("kafka.security.key_password", &self.key_password)?,
            resolve("kafka.security.password", &self.password)?,
        ))
    }
}

/// The message of a secret error without its leading `` `field` `` (the key is shown apart).
fn secret_message(e: &SecretError) -> String {
    let text = e.to_string();
    match text.split_once("` ") {
        Some((_, rest)) => rest.to_string(),
        None => text,
    }
}

fn readable(key: &str, path: &Path) -> Result<String, SecurityError> {
    std::fs::read_to_string(path).map_err(|e| {
        err(
            key,
            format!("is `{}`, which cannot be read: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_location(s: &KafkaSecurity) -> Option<String> {
        let props = s.properties().unwrap();
        props
            .into_iter()
            .find(|(k, _)| *k == "ssl.ca.location")
            .map(|(_, v)| v)
    }

    #[test]
    fn tls_without_a_ca_file_probes_the_system_store_and_a_ca_file_is_used_as_given() {
        let mut s = KafkaSecurity {
            protocol: Protocol::Ssl,
            ..KafkaSecurity::default()
        };
        assert_eq!(ca_location(&s).as_deref(), Some("probe"));
        s.ca_file = Some(PathBuf::from("/etc/d2c/ca.pem"));
        assert_eq!(ca_location(&s).as_deref(), Some("/etc/d2c/ca.pem"));
        let plain = KafkaSecurity::default();
        assert_eq!(ca_location(&plain), None, "no TLS, no CA");
    }
}
