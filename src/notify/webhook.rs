//! Generic webhook: the record's JSON exactly as published, with `Idempotency-Key:
//! <id>:<version>` (the receiver drops repeats), `X-D2C-Timestamp: <unix seconds>` and
//! `X-D2C-Signature: sha256=<hex>`, an HMAC-SHA256 with the shared key of
//! `"<timestamp>.<body>"` (as Stripe and Slack sign theirs). A receiver recomputes the HMAC over
//! the timestamp header, a `.` and the raw body, compares it in constant time, and refuses a
//! timestamp more than a few minutes from its clock: a captured request then cannot be replayed
//! later, and the signature proves both came from d2c. Each attempt of a delivery is signed
//! afresh, so a retry after a long outage is still accepted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::http::Http;
use super::item::{Item, Sent};
use super::retry::Failure;
use crate::config::secret::Secret;

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying the signature of the timestamp and the body.
pub const SIGNATURE_HEADER: &str = "X-D2C-Signature";
/// Header carrying the time of signing, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-D2C-Timestamp";

#[derive(Debug)]
pub struct Webhook {
    pub http: Http,
    pub hmac: Option<Secret>,
}

/// `sha256=<lowercase hex of HMAC-SHA256(key, "<timestamp>.<body>")>`.
pub fn signature(key: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

impl Webhook {
    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        let mut req = self
            .http
            .request(reqwest::Method::POST, self.http.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, item.idempotency_key())
            .body(item.raw.clone());
        if let Some(key) = &self.hmac {
            let now = chrono::Utc::now().timestamp();
            req = req
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, signature(key, now, &item.raw));
        }
        self.http.send(req).await?;
        Ok(Sent::Delivered)
    }
}
