//! The access and view parts of `[http]`: named tokens with roles (`[[http.tokens]]`), who sees
//! security incidents, the console's session lifetime, and the bounds of the incident view the
//! console and the read API serve (`[http.view]`). Checked once at start-up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;

/// What a person or tool signed in with a token may do. Each role can do what the one before
/// it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the console and the read API.
    Viewer,
    /// Also acknowledges incidents, creates silences and decides on RFCs (and may post events).
    Operator,
    /// Also sees security incidents when `http.restrict_security` is set.
    Security,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Security => "security",
        }
    }
}

/// One named token (`[[http.tokens]]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token: shown in the console and recorded as the `by` of every
    /// acknowledgement, silence and RFC decision made with it. Letters, digits, `.`, `_`, `-`
    /// and `@`, at most 64. Required, unique.
    pub name: String,
    /// `viewer`, `operator` or `security`. Required.
    pub role: Role,
    /// The token itself: `env:NAME` or `file:PATH`, read at start-up. At least 16 characters.
    /// Sent as `Authorization: Bearer <token>` to the API, or typed into the console's sign-in
    /// page. Required.
    pub token: SecretRef,
}

/// Bounds of the incident view materialised from the `incidents` and `changes` topics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ViewConfig {
    /// Most incidents kept (latest version of each). Past it, the view drops closed incidents
    /// first, then resolved ones, then open ones, least recently updated first, down to 90%,
    /// counted in `d2c_view_evictions_total`. Default: `10000`.
    pub max_incidents: usize,
    /// Most RFCs kept (latest version of each), evicted oldest first (and with their
    /// incident). Default: `10000`.
    pub max_changes: usize,
    /// Most problems kept (latest version of each), resolved ones first, then the least
    /// recently updated. Default: `10000`.
    pub max_problems: usize,
    /// Most entries kept on one incident's timeline (one per incident or RFC version); older
    /// entries are dropped first. Default: `200`.
    pub max_timeline: usize,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig {
            max_incidents: 10_000,
            max_changes: 10_000,
            max_problems: 10_000,
            max_timeline: 200,
        }
    }
}

/// A problem with the HTTP settings: the key and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfigError {
    pub key: String,
    pub message: String,
}

/// Shortest token accepted: a guessable token would protect nothing.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Whether `name` may name a token holder: it appears in cookies and control records.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl super::HttpConfig {
    /// Whether anyone must sign in: `http.token` or `http.tokens` is set.
    pub fn needs_sign_in(&self) -> bool {
        self.token.is_some() || !self.tokens.is_empty()
    }

    /// Checks the cross-field rules of `[http]` (tokens, roles, view bounds).
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        let err = |key: String, message: &str| HttpConfigError {
            key,
            message: message.to_string(),
        };
        for (i, t) in self.tokens.iter().enumerate() {
            let key = |field: &str| format!("http.tokens[{i}].{field}");
            if !valid_name(&t.name) {
                return Err(err(
                    key("name"),
                    "must be 1 to 64 letters, digits, `.`, `_`, `-` or `@` (it is recorded as the actor of actions)",
                ));
            }
            if self.tokens[..i].iter().any(|o| o.name == t.name) {
                return Err(err(key("name"), "is used by another token"));
            }
            if let SecretRef::Inline(v) = &t.token
                && v.chars().count() < MIN_TOKEN_CHARS
            {
                return Err(err(
                    key("token"),
                    "is shorter than 16 characters; use `env:NAME` or `file:PATH` holding a long random token",
                ));
            }
        }
        if self.restrict_security
            && !self.tokens.iter().any(|t| t.role == Role::Security)
            && self.token.is_none()
        {
            return Err(err(
                "http.restrict_security".into(),
                "is true but no token has the `security` role (and `http.token` is not set): nobody could see security incidents",
            ));
        }
        if self.session_lifetime < Duration::from_secs(60) {
            return Err(err(
                "http.session_lifetime".into(),
                "is below 1m; people would be signed out while they work",
            ));
        }
        let v = &self.view;
        for (key, n) in [
            ("http.view.max_incidents", v.max_incidents),
            ("http.view.max_changes", v.max_changes),
            ("http.view.max_problems", v.max_problems),
            ("http.view.max_timeline", v.max_timeline),
        ] {
            if n < 10 {
                return Err(err(
                    key.into(),
                    "is below 10; the console would show next to nothing",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    fn err(text: &str) -> String {
        load_str(text, Path::new("d2c.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn tokens_have_names_roles_and_secret_references() {
        let text = "[http]\nrestrict_security = true\n\n[[http.tokens]]\nname = \"alice\"\nrole = \"security\"\ntoken = \"env:ALICE_TOKEN\"\n\n[[http.tokens]]\nname = \"noc@example\"\nrole = \"viewer\"\ntoken = \"file:/run/secrets/noc\"\n";
        let l = load_str(text, Path::new("d2c.toml")).unwrap();
        let http = &l.config.http;
        assert!(http.needs_sign_in());
        assert_eq!(http.tokens[0].role, Role::Security);
        assert_eq!(http.tokens[1].token.to_string(), "file:/run/secrets/noc");
        assert_eq!(http.view, ViewConfig::default());
        assert!(!crate::config::Config::default().http.needs_sign_in());
    }

    #[test]
    fn bad_tokens_are_refused_naming_the_key() {
        let e = err("[[http.tokens]]\nname = \"a b\"\nrole = \"viewer\"\ntoken = \"env:X\"\n");
        assert!(e.contains("`http.tokens[0].name` must be 1 to 64"), "{e}");
        let e = err(
            "[[http.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken = \"env:X\"\n[[http.tokens]]\nname = \"a\"\nrole = \"operator\"\ntoken = \"env:Y\"\n",
        );
        assert!(
            e.contains("`http.tokens[1].name` is used by another"),
            "{e}"
        );
        let e = err("[[http.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken = \"short\"\n");
        assert!(
            e.contains("`http.tokens[0].token` is shorter than 16"),
            "{e}"
        );
        let e = err("[[http.tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"env:X\"\n");
        assert!(e.contains("admin"), "{e}");
    }

    #[test]
    fn restricting_security_needs_someone_who_may_see_it() {
        let e = err("[http]\nrestrict_security = true\n");
        assert!(
            e.starts_with("d2c.toml:2: `http.restrict_security` is true but no token"),
            "{e}"
        );
        let e = err("[http.view]\nmax_incidents = 3\n");
        assert!(e.contains("`http.view.max_incidents` is below 10"), "{e}");
    }
}
