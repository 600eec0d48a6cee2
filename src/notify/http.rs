//! The HTTP side every connector shares: one client with the connector's timeouts, its base
//! URL and credentials, and answers classified for the retry policy.

use super::retry::{self, Failure};
use crate::config::secret::Secret;

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
