//! When and how long to retry a delivery: classification of answers and transport errors,
//! `Retry-After` (seconds or HTTP-date), and exponential backoff with jitter.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::config::RetryConfig;

/// Longest `Retry-After` obeyed: a tool asking for more is asked again after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Most bytes of a response body kept for logs and the dead-letter record.
pub const MAX_BODY_BYTES: usize = 4096;

/// Most bytes of a tool's answer read at all: what the connectors need (an issue key, a
/// ticket's `sys_id`) is near the start, and a tool streaming an endless or huge body must not
/// hold a delivery or its memory. The rest is left unread and the connection closed.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth another try: connection refused or reset, timeout, 408, 429, 5xx.
    #[error("{reason}")]
    Retry {
        /// What the tool asked for with `Retry-After`, if anything.
        after: Option<Duration>,
        reason: String,
    },
    /// Will fail the same way again: another 4xx, or a record the tool cannot take. The
    /// record goes to the delivery dead-letter topic with the answer.
    #[error("{reason}")]
    Permanent {
        status: Option<u16>,
        body: String,
        reason: String,
    },
}

impl Failure {
    pub fn retry(reason: impl Into<String>) -> Failure {
        Failure::Retry {
            after: None,
            reason: reason.into(),
        }
    }
}

/// The failure for a transport error. Connection and timeout errors are retried; so is any
/// other transport error (the request may not have reached the tool). Only the kind of error
/// is kept: reqwest's message would name the URL, which may hold a secret.
pub fn transport(e: &reqwest::Error) -> Failure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() {
        "cannot read the answer"
    } else {
        "transport error"
    };
    Failure::retry(what)
}

/// The failure for a non-2xx answer, or `None` for 2xx.
pub fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<&str>,
    body: &str,
    now: SystemTime,
) -> Option<Failure> {
    let code = status.as_u16();
    if status.is_success() {
        return None;
    }
    let body = truncate(body);
    if code == 408 || code == 429 || status.is_server_error() {
        return Some(Failure::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason: format!("answered {code}"),
        });
    }
    Some(Failure::Permanent {
        status: Some(code),
        reason: format!("answered {code}, which retrying will not change"),
        body,
    })
}

/// Reads the response and classifies it: `Ok(body)` for 2xx.
pub async fn check(response: reqwest::Response) -> Result<String, Failure> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_capped(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| transport(&e))?;
    match classify(status, retry_after.as_deref(), &body, SystemTime::now()) {
        None => Ok(body),
        Some(f) => Err(f),
    }
}

/// The first `cap` bytes of `response`'s body (lossy UTF-8); the rest is not read.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<String, reqwest::Error> {
    let mut kept = Vec::new();
    while kept.len() < cap {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let room = cap - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110), relative to `now`; a date in the
/// past is zero. Capped at [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        let at = SystemTime::from(at.with_timezone(&chrono::Utc));
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Truncates a response body for logs and dead letters, on a character boundary.
pub fn truncate(body: &str) -> String {
    if body.len() <= MAX_BODY_BYTES {
        return body.to_string();
    }
    let mut end = MAX_BODY_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// The waits between the attempts of one delivery.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    retries: u32,
}

impl Backoff {
    pub fn new(cfg: &RetryConfig) -> Backoff {
        Backoff {
            initial: cfg.initial_backoff,
            max: cfg.max_backoff,
            retries: 0,
        }
    }

    /// The wait before the next attempt: `initial × 2^n` capped at `max`, then a random
    /// point in its upper half ("equal jitter"), so that many records retried together do not
    /// hit the tool in lockstep when it comes back. A `Retry-After` wins when it asks for
    /// longer.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(self.retries.min(20)))
            .min(self.max);
        self.retries += 1;
        let half = exp / 2;
        let jittered = half + rand::rng().random_range(Duration::ZERO..=half);
        retry_after.map_or(jittered, |ra| ra.max(jittered.min(self.max)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn answers_are_ok_retried_or_permanent_by_status() {
        let now = SystemTime::now();
        assert_eq!(classify(StatusCode::CREATED, None, "", now), None);
        for code in [408, 429, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(classify(s, None, "", now), Some(Failure::Retry { .. })),
                "{code} is retried"
            );
        }
        for code in [400, 401, 403, 404, 409, 422] {
            let s = StatusCode::from_u16(code).unwrap();
            match classify(s, None, "{\"error\":\"bad field\"}", now) {
                Some(Failure::Permanent { status, body, .. }) => {
                    assert_eq!(status, Some(code));
                    assert_eq!(body, "{\"error\":\"bad field\"}");
                }
                other => panic!("{code} must be permanent, got {other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let f = classify(StatusCode::TOO_MANY_REQUESTS, Some("3"), "", now);
        assert!(
            matches!(f, Some(Failure::Retry { after: Some(d), .. }) if d == Duration::from_secs(3))
        );
    }

    #[test]
    fn backoff_grows_within_its_bounds_with_jitter_and_obeys_retry_after() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        let waits: Vec<Duration> = (0..8).map(|_| b.next(None)).collect();
        let caps = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (w, cap) in waits.iter().zip(caps) {
            let cap = Duration::from_millis(cap);
            assert!(
                *w >= cap / 2 && *w <= cap,
                "{w:?} within [{:?}, {cap:?}]",
                cap / 2
            );
        }
        let mut b = Backoff::new(&cfg);
        assert_eq!(b.next(Some(Duration::from_secs(5))), Duration::from_secs(5));
        let many: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| Backoff::new(&cfg).next(None)).collect();
        assert!(many.len() > 1, "waits are jittered");
    }

    #[test]
    fn long_bodies_are_truncated_on_a_character_boundary() {
        let body = "é".repeat(MAX_BODY_BYTES);
        let t = truncate(&body);
        assert!(t.len() <= MAX_BODY_BYTES + '…'.len_utf8());
        assert!(t.ends_with('…'));
    }
}
