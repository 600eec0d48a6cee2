//! Webhook runbooks, for anything else: the RFC's JSON exactly as published on the changes
//! topic, `X-D2C-Timestamp` and `X-D2C-Signature: sha256=<hex>` (HMAC-SHA256 of
//! `"<timestamp>.<body>"` with the shared key, as for delivery webhooks, so a receiver can
//! refuse replays), and `Idempotency-Key: <RFC id>`.
//!
//! Exactly once needs the receiver: d2c cannot look up what an arbitrary endpoint did, so a run
//! repeated after a crash between the call and its record sends the same body with the same
//! key again, and the receiver must act on a key once (as it must for any retried webhook).

use super::job::{Done, Job};
use crate::config::secret::Secret;
use crate::notify::http::Http;
use crate::notify::retry::Failure;
use crate::notify::webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};

#[derive(Debug)]
pub struct Webhook {
    pub http: Http,
    pub hmac: Option<Secret>,
}

impl Webhook {
    pub async fn run(&self, job: &Job<'_>) -> Result<Done, Failure> {
        let mut req = self
            .http
            .request(reqwest::Method::POST, self.http.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, job.rfc.id.as_str())
            .body(job.raw.to_vec());
        if let Some(key) = &self.hmac {
            let now = chrono::Utc::now().timestamp();
            req = req
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, signature(key, now, job.raw));
        }
        let answer = self.http.send(req).await?;
        Ok(Done {
            call: format!("POST (webhook) Idempotency-Key: {}", job.rfc.id),
            answer,
            already: false,
        })
    }
}
