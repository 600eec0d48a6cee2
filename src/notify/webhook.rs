//! Generic webhook: the record's JSON exactly as published, with `Idempotency-Key:
//! <id>:<version>` (the receiver drops repeats) and `X-D2C-Signature: sha256=<hex>`, an
//! HMAC-SHA256 of the body with the shared key, so the receiver can check it came from d2c.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::http::Http;
use super::item::{Item, Sent};
use super::retry::Failure;
use crate::config::secret::Secret;

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-D2C-Signature";

#[derive(Debug)]
pub struct Webhook {
    pub http: Http,
    pub hmac: Option<Secret>,
}

/// `sha256=<lowercase hex of HMAC-SHA256(key, body)>`.
pub fn signature(key: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
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
            req = req.header(SIGNATURE_HEADER, signature(key, &item.raw));
        }
        self.http.send(req).await?;
        Ok(Sent::Delivered)
    }
}
