//! The HTTP server against slow, numerous and oversized clients, over real TCP on the d2c
//! binary (tansu as the broker): headers and bodies must arrive within `http.header_timeout`
//! and `http.body_timeout` (408 for a slow body), at most `http.max_connections` are served at
//! once, and a payload that can never be written answers 413, not 503 + Retry-After.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn native(ci: &str) -> Vec<u8> {
    serde_json::json!({"name": "DiskFull", "ci": ci, "severity": "major", "status": "firing",
                       "time": "2026-11-28T10:00:00Z"})
    .to_string()
    .into_bytes()
}

/// A POST over a plain TCP stream, read to the end: (status, whole response).
fn post(addr: &str, path: &str, body: &[u8], within: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    (parse_http_response(&text).0, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_can_never_be_written_answers_413_not_retry_later() {
    let broker = Tansu::start();
    let d2c = D2c::start(&broker.brokers(), &[]);
    d2c.wait_ready(Duration::from_secs(60));
    // Valid JSON just over what librdkafka writes (1,000,000 bytes): before, it passed the
    // 1 MiB ingest limit, the producer refused it, and the answer was 503 with Retry-After: 1,
    // which a client retries for ever.
    let mut body = native("host-1");
    body.resize(1_000_500, b' ');
    let http = d2c.http.clone();
    let (status, text) = tokio::task::spawn_blocking(move || {
        post(
            &http,
            "/api/v1/events/native",
            &body,
            Duration::from_secs(30),
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 413, "{text}");
    assert!(!text.to_ascii_lowercase().contains("retry-after"), "{text}");
    assert!(text.contains("\"reason\":\"oversize\""), "{text}");
}

#[test]
fn clients_trickling_bodies_get_408_and_do_not_hold_the_body_budget() {
    let broker = Tansu::start();
    let d2c = D2c::start(&broker.brokers(), &[("D2C_HTTP__BODY_TIMEOUT", "6s")]);
    d2c.wait_ready(Duration::from_secs(60));
    // 80 bodies each declared at ~1 MB, a byte every half second: together more than the
    // 64 MiB body budget if it were taken as declared. Before, they held it for as long as they
    // trickled and the next valid POST waited behind them for ever; now the budget counts the
    // bytes that arrived, and a body is cut off after http.body_timeout.
    let trickles: Vec<_> = (0..80)
        .map(|_| {
            let addr = d2c.http.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let head = format!(
                    "POST /api/v1/events/native HTTP/1.1\r\nHost: {addr}\r\n\
                     Content-Type: application/json\r\nContent-Length: 980000\r\n\r\n{{"
                );
                s.write_all(head.as_bytes()).unwrap();
                let started = Instant::now();
                let mut buf = Vec::new();
                while started.elapsed() < Duration::from_secs(20) {
                    if s.write_all(b" ").is_err() {
                        break;
                    }
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(_) => {}
                    }
                }
                (
                    parse_http_response(&String::from_utf8_lossy(&buf)).0,
                    started.elapsed(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (status, text) = post(
        &d2c.http,
        "/api/v1/events/native",
        &native("host-valid"),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert_eq!(status, 202, "{text}");
    assert!(
        took < Duration::from_secs(5),
        "the valid POST did not wait for the trickling ones: {took:?}"
    );
    for t in trickles {
        let (status, after) = t.join().unwrap();
        assert_eq!(status, 408, "a trickled body is cut off with 408");
        assert!(after < Duration::from_secs(12), "after {after:?}");
    }
}

#[test]
fn connections_trickling_headers_are_closed_after_the_header_timeout() {
    let broker = Tansu::start();
    let d2c = D2c::start(&broker.brokers(), &[("D2C_HTTP__HEADER_TIMEOUT", "2s")]);
    d2c.wait_ready(Duration::from_secs(60));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", d2c.http).into_bytes();
    let conns: Vec<_> = (0..20)
        .map(|_| {
            let addr = d2c.http.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let started = Instant::now();
                // One header byte a second, never the end of the headers.
                for b in request.iter().take(request.len() - 2).cycle() {
                    if started.elapsed() > Duration::from_secs(15) {
                        return None;
                    }
                    if s.write_all(&[*b]).is_err() {
                        return Some(started.elapsed());
                    }
                    let mut buf = [0u8; 256];
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_secs(1) {
                        match s.read(&mut buf) {
                            Ok(0) => return Some(started.elapsed()),
                            Ok(_) => {}
                            Err(e)
                                if e.kind() == std::io::ErrorKind::WouldBlock
                                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => return Some(started.elapsed()),
                        }
                    }
                }
                None
            })
        })
        .collect();
    for c in conns {
        let closed = c.join().unwrap();
        let after = closed.expect("the server closed the connection");
        assert!(after < Duration::from_secs(8), "closed after {after:?}");
    }
    // The server may close a connection a moment before it counts it: the count is read until
    // it has them all, for a few seconds at most.
    let counted = Instant::now();
    let timeouts = loop {
        let text = http_get(&d2c.http, "/metrics").1;
        let timeouts = metric(
            &text,
            "d2c_http_connection_errors_total{kind=\"header_timeout\"}",
        )
        .unwrap_or(0.0);
        if timeouts >= 20.0 || counted.elapsed() > Duration::from_secs(5) {
            break timeouts;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(timeouts >= 20.0, "{timeouts}");
}

#[test]
fn connections_past_max_connections_wait_for_a_free_slot() {
    let broker = Tansu::start();
    let d2c = D2c::start(
        &broker.brokers(),
        &[
            ("D2C_HTTP__MAX_CONNECTIONS", "8"),
            ("D2C_HTTP__HEADER_TIMEOUT", "3s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    // Eight silent connections take every slot until the header timeout closes them.
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(&d2c.http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, _) = http_get(&d2c.http, "/healthz");
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "the ninth connection is served once a slot frees: {took:?}"
    );
    drop(idle);
}

#[test]
fn control_bodies_too_large_answer_413_and_too_slow_408() {
    let broker = Tansu::start();
    let d2c = D2c::start(&broker.brokers(), &[("D2C_HTTP__BODY_TIMEOUT", "2s")]);
    d2c.wait_ready(Duration::from_secs(60));
    let mut big = b"{\"by\": \"".to_vec();
    big.resize(70_000, b'a');
    big.extend_from_slice(b"\"}");
    let (status, text) = post(
        &d2c.http,
        "/api/v1/incidents/INC-1/ack",
        &big,
        Duration::from_secs(30),
    );
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"reason\":\"oversize\""), "{text}");
    // Half a body, then nothing.
    let mut s = TcpStream::connect(&d2c.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/v1/incidents/INC-1/ack HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Length: 40\r\n\r\n{{\"by\":",
        d2c.http
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(parse_http_response(&text).0, 408, "{text}");
    assert!(text.contains("\"reason\":\"body_timeout\""), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
