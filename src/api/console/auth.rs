//! Who is asking: the tokens of `http.token` and `[[http.tokens]]`, checked as bearer tokens by
//! the API and as the console's sign-in; the console's session cookie; and the check that an
//! action comes from the console's own pages (CSRF).
//!
//! The session cookie is `<name>.<expiry>.<mac>`, the MAC keyed by the holder's token, so any
//! instance with the same settings accepts it (a load balancer may send each request
//! elsewhere), and changing or removing a token ends its sessions. Actions need the
//! double-submit token of the `d2c_csrf` cookie in a form field or header (a cross-site page can
//! neither read the cookie nor, with `SameSite=Strict`, send it), and a browser's
//! `Sec-Fetch-Site` must not say another site.

use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::secret::SecretError;
use crate::config::{HttpConfig, Role};

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "d2c_session";

/// The console's double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "d2c_csrf";

/// The header htmx sends the CSRF token in (forms send the field `csrf`).
pub const CSRF_HEADER: &str = "x-d2c-csrf";

/// The name `http.token` signs in as.
pub const ADMIN: &str = "admin";

/// Whether the one asking sees security incidents (`http.restrict_security`), as the API's
/// token check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeesSecurity(pub bool);

/// Someone signed in (or anyone, when no token is configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// Whether a token identified them (false: the console and API are open).
    pub signed_in: bool,
}

impl Principal {
    /// Anyone, when no token is configured: every right, no name.
    pub fn anonymous() -> Principal {
        Principal {
            name: String::new(),
            role: Role::Security,
            signed_in: false,
        }
    }

    /// Whether they may acknowledge, silence and decide.
    pub fn can_act(&self) -> bool {
        self.role >= Role::Operator
    }
}

/// One known token.
struct Known {
    name: String,
    role: Role,
    /// SHA-256 of the token: compared instead of the token, so the comparison takes the same
    /// time however much of a guess matches.
    digest: [u8; 32],
    /// The key of this holder's session MACs, derived from the token.
    session_key: [u8; 32],
}

/// The configured tokens and what they allow.
pub struct Access {
    known: Vec<Known>,
    /// Only the security role sees security incidents.
    pub restrict_security: bool,
    pub session_lifetime: Duration,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field(
                "tokens",
                &self
                    .known
                    .iter()
                    .map(|k| (&k.name, k.role))
                    .collect::<Vec<_>>(),
            )
            .field("restrict_security", &self.restrict_security)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

impl Access {
    /// Reads every token of `http` (`env:`/`file:`); `None` when none is configured (the
    /// console and API are open).
    pub fn from_config(http: &HttpConfig) -> Result<Option<Access>, SecretError> {
        let mut known = Vec::new();
        if let Some(t) = &http.token {
            known.push((
                ADMIN.to_string(),
                Role::Security,
                t.resolve("http.token", true)?,
            ));
        }
        for (i, t) in http.tokens.iter().enumerate() {
            let field = format!("http.tokens[{i}].token");
            known.push((t.name.clone(), t.role, t.token.resolve(&field, true)?));
        }
        if known.is_empty() {
            return Ok(None);
        }
        Ok(Some(Access {
            known: known
                .into_iter()
                .map(|(name, role, secret)| Known {
                    name,
                    role,
                    digest: digest(secret.expose()),
                    session_key: Sha256::new()
                        .chain_update(b"d2c console session\0")
                        .chain_update(secret.expose().trim().as_bytes())
                        .finalize()
                        .into(),
                })
                .collect(),
            restrict_security: http.restrict_security,
            session_lifetime: http.session_lifetime,
        }))
    }

    /// Who holds `token`, if anyone.
    pub fn by_token(&self, token: &str) -> Option<Principal> {
        let d = digest(token);
        // Every entry is compared, so the time does not tell which one matched.
        let mut found = None;
        for k in &self.known {
            if k.digest == d && found.is_none() {
                found = Some(Principal {
                    name: k.name.clone(),
                    role: k.role,
                    signed_in: true,
                });
            }
        }
        found
    }

    /// Who an `Authorization: Bearer <token>` header names (the scheme in any case).
    pub fn by_bearer(&self, headers: &HeaderMap) -> Option<Principal> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.by_token(token)
    }

    /// A session cookie value for `p`, valid until `now` plus the session lifetime.
    pub fn session_for(&self, p: &Principal, now: DateTime<Utc>) -> Option<String> {
        let k = self.known.iter().find(|k| k.name == p.name)?;
        let expiry = now.timestamp() + self.session_lifetime.as_secs() as i64;
        let mac = session_mac(&k.session_key, &k.name, expiry);
        Some(format!("{}.{expiry}.{mac}", k.name))
    }

    /// Who a session cookie value names, if it is genuine and not expired.
    pub fn by_session(&self, value: &str, now: DateTime<Utc>) -> Option<Principal> {
        let mut parts = value.rsplitn(3, '.');
        let (mac, expiry, name) = (parts.next()?, parts.next()?, parts.next()?);
        let expiry: i64 = expiry.parse().ok()?;
        if expiry <= now.timestamp() {
            return None;
        }
        let k = self.known.iter().find(|k| k.name == name)?;
        let given = hex_decode(mac)?;
        let mut m = HmacSha256::new_from_slice(&k.session_key).ok()?;
        m.update(session_message(name, expiry).as_bytes());
        m.verify_slice(&given).ok()?;
        Some(Principal {
            name: k.name.clone(),
            role: k.role,
            signed_in: true,
        })
    }

    /// Whether `p` sees security incidents.
    pub fn sees_security(&self, p: &Principal) -> bool {
        !self.restrict_security || p.role == Role::Security
    }
}

fn session_message(name: &str, expiry: i64) -> String {
    format!("d2c-session\0{name}\0{expiry}")
}

fn session_mac(key: &[u8], name: &str, expiry: i64) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(session_message(name, expiry).as_bytes());
    hex(&m.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh CSRF token (128 random bits, hex).
pub fn new_csrf() -> String {
    hex(&rand::random::<[u8; 16]>())
}

/// Whether an action request may go on: it carries the CSRF cookie's value (`given`, from the
/// form or header) and does not come from another site.
pub fn csrf_ok(headers: &HeaderMap, cookie: Option<&str>, given: Option<&str>) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let (Some(cookie), Some(given)) = (cookie, given) else {
        return false;
    };
    // Equal length first (both are ours: 32 hex digits), then every byte, so the time does
    // not tell how much of a guess matched.
    let same = cookie.len() == given.len()
        && cookie
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    !cross_site && !cookie.is_empty() && same
}
