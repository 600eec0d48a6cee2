//! Secrets of the settings file (connector passwords, tokens, HMAC keys, webhook URLs; the API
//! and Backstage tokens): named as `env:NAME` or `file:PATH`, read where used, never printed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a secret comes from, as written in the settings file. Its `Debug`, `Display` and
/// serialised forms never show an inline value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`: the value of environment variable `NAME`.
    Env(String),
    /// `file:PATH`: the contents of file `PATH`, without a trailing newline.
    File(String),
    /// Any other string: the value itself (discouraged: it then sits in the settings file).
    Inline(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> SecretRef {
        if let Some(name) = s.strip_prefix("env:") {
            SecretRef::Env(name.to_string())
        } else if let Some(path) = s.strip_prefix("file:") {
            SecretRef::File(path.to_string())
        } else {
            SecretRef::Inline(s.to_string())
        }
    }

    /// Reads the secret. `field` names the setting in errors and in the warning about inline
    /// values (given when `warn_inline`); the value itself never appears in either.
    pub fn resolve(&self, field: &str, warn_inline: bool) -> Result<Secret, SecretError> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| SecretError::Env {
                field: field.to_string(),
                var: name.clone(),
            })?,
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| SecretError::File {
                    field: field.to_string(),
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            SecretRef::Inline(v) => {
                if warn_inline {
                    tracing::warn!(
                        field,
                        "secret written inline in the settings file; use `env:NAME` or `file:PATH` instead"
                    );
                }
                v.clone()
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty {
                field: field.to_string(),
            });
        }
        Ok(Secret(value))
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{p}"),
            SecretRef::Inline(_) => f.write_str("<redacted>"),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SecretRef::parse(&String::deserialize(d)?))
    }
}

/// A secret value read from its [`SecretRef`]. Only [`Secret::expose`] gives the value, for
/// the one place that sends it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be read. Names the setting and the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{field}` names environment variable {var}, which is not set (or not UTF-8)")]
    Env { field: String, var: String },
    #[error("`{field}` names file {path}, which cannot be read: {reason}")]
    File {
        field: String,
        path: String,
        reason: String,
    },
    #[error("`{field}` is empty")]
    Empty { field: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_never_show_in_debug_display_or_serialisation() {
        let r = SecretRef::parse("hunter2");
        assert_eq!(format!("{r:?} {r}"), "<redacted> <redacted>");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"<redacted>\"",
            "a printed config never carries the value"
        );
        let s = r.resolve("notify.connectors[0].password", false).unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}{s}").contains("hunter2"));
    }

    #[test]
    fn env_and_file_secrets_are_read_and_errors_name_the_field_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", path.display()));
        assert_eq!(r.resolve("token", false).unwrap().expose(), "s3cret");

        let missing = SecretRef::parse("env:D2C_TEST_SURELY_UNSET_VARIABLE");
        let e = missing
            .resolve("notify.connectors[1].token", false)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("notify.connectors[1].token")
                && text.contains("D2C_TEST_SURELY_UNSET_VARIABLE")
        );
        let gone = SecretRef::parse("file:/nonexistent/d2c/secret");
        assert!(
            gone.resolve("x", false)
                .unwrap_err()
                .to_string()
                .contains("cannot be read")
        );
    }
}
