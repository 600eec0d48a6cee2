//! `d2c demo`, as a new user runs it: incidents form within seconds, naming services and
//! capabilities, with an RFC, a DLQ record and a recovery, and `/metrics` is served.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_shows_incidents_forming_and_resolving() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_d2c"))
        .args([
            "demo",
            "--duration",
            "20s",
            "--step",
            "100ms",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("D2C_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("d2c demo starts");
    let started = Instant::now();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut out = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "demo exited with {status}:\n{out}\n{log}");
    // librdkafka's statistics (every 5 s) go to d2c's own clients only; a client with the
    // default context would log each as a multi-kilobyte INFO line.
    assert!(
        !log.contains("Client stats"),
        "the log carries librdkafka statistics:\n{}",
        &log[..log.len().min(4000)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "demo ran past --duration"
    );
    for expected in [
        "metrics: http://127.0.0.1:",
        "OPENED   P1 critical  payments-db: PostgresDown",
        "root cause: payments-db",
        "services: checkout-api, payments-api, payments-db, web-frontend",
        "capabilities: online-payments, order-checkout  revenue at risk: 2000/min",
        "Emergency change, High risk, approval required",
        "action: Fail over payments-db to its standby replica",
        "RESOLVED P1 critical  payments-db: PostgresDown and 4 more alerts",
        "OPENED   P4 warning  email-worker: QueueBacklog",
        "DLQ  {\"this is\": not json",
        // The redundant orders database: one replica down is degraded and no P1, both is P1.
        "OPENED   P2 critical  orders-db-a: PostgresDown",
        "order-tracking degraded (health 50): 150/min at risk",
        "order-tracking down (health 0): 300/min at risk, 25000 users affected",
    ] {
        assert!(
            out.contains(expected),
            "demo output lacks `{expected}`:\n{out}"
        );
    }
}
