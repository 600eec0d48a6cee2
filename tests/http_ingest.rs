//! HTTP ingest over real TCP: `POST /api/v1/events/{format}` on the d2c binary against tansu.
//! Accepted payloads land on `d2c.events.raw` byte for byte and become an incident; bad input
//! gets a 4xx with a readable reason and writes nothing; a stopped broker gets a 503.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// One answer: status, `Retry-After` if any, and the body as JSON (a body that is not JSON
/// fails the test: every answer of the endpoint is JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn http_post(http: &str, path: &str, source: Option<&str>, body: Vec<u8>) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{http}{path}"))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(30))
        .body(body);
    if let Some(s) = source {
        req = req.header("x-source", s);
    }
    let resp = req.send().await.expect("d2c answers");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"));
    Answer {
        status,
        retry_after,
        body,
    }
}

/// A chunked POST (no Content-Length) over a plain TCP stream: (status, body).
fn http_post_chunked(addr: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    // The server may answer 413 and close before it read everything; that is the point.
    let _ = s.write_all(&req);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_http_response(&String::from_utf8_lossy(&buf))
}

fn assert_rejected(a: &Answer, status: u16, reason: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.body["reason"], reason, "{a:?}");
    let error = a.body["error"].as_str().unwrap_or_default();
    assert!(error.len() > 20, "a readable sentence: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_writes_raw_records_and_rejects_bad_input() {
    let mut broker = Tansu::start();
    let brokers = broker.brokers();
    let d2c = D2c::start(
        &brokers,
        &[
            ("D2C_INGEST__MAX_RECORD_BYTES", "4096"),
            // No ticks and no later events: versions must not wait to be seen.
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
            ("D2C_CORRELATION__GROUP_INTERVAL", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let http = d2c.http.clone();
    let path = |f: &str| format!("/api/v1/events/{f}");

    // Bad input first: none of it may reach the raw topic, which is checked below.
    let unknown = http_post(&http, &path("nagios"), None, b"{}".to_vec()).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(
        unknown.body,
        json!({"error": "unknown format `nagios`; use one of: native, alertmanager, grafana, pagerduty, cloudevents, zabbix, otel, ecs, falco, suricata, wazuh, ocsf"})
    );
    let bad_json = http_post(
        &http,
        &path("alertmanager"),
        None,
        b"{\"alerts\": [".to_vec(),
    )
    .await;
    assert_rejected(&bad_json, 400, "malformed_json");
    assert!(
        bad_json.body["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let oversize = http_post(&http, &path("native"), None, vec![b' '; 5000]).await;
    assert_rejected(&oversize, 413, "oversize");
    assert!(
        oversize.body["error"]
            .as_str()
            .unwrap()
            .contains("limit of 4096 bytes"),
        "{oversize:?}"
    );
    let (status, body) = tokio::task::spawn_blocking({
        let http = http.clone();
        move || http_post_chunked(&http, "/api/v1/events/native", &[b' '; 20_000])
    })
    .await
    .unwrap();
    assert_eq!(status, 413, "chunked oversize: {body}");
    assert!(body.contains("\"reason\":\"oversize\""), "{body}");
    // A native event posted as Alertmanager is refused: the format is the URL's, not guessed.
    let wrong_format = http_post(
        &http,
        &path("alertmanager"),
        None,
        native_batch("2026-11-28T10:00:05Z"),
    )
    .await;
    assert_rejected(&wrong_format, 400, "invalid_value");
    let missing_time = http_post(
        &http,
        &path("native"),
        None,
        json!({"name": "HighErrorRate"}).to_string().into_bytes(),
    )
    .await;
    assert_rejected(&missing_time, 400, "missing_field");
    assert!(
        missing_time.body["error"]
            .as_str()
            .unwrap()
            .contains("time is missing")
    );
    // Odd bytes: each gets a 400 with a reason, and the server keeps answering.
    for (raw, reason) in [
        (Vec::new(), "unknown_format"),
        (vec![0xff, 0xfe, b'{'], "not_utf8"),
        ("[".repeat(3000).into_bytes(), "malformed_json"),
        (
            b"{\"name\":\"x\",\"name\":\"y\"}".to_vec(),
            "malformed_json",
        ),
        (b"[1e999999]".to_vec(), "malformed_json"),
        (b"\"just a string\"".to_vec(), "invalid_value"),
    ] {
        let a = http_post(&http, &path("native"), None, raw.clone()).await;
        assert_rejected(&a, 400, reason);
    }

    // Good input: accepted only after the broker acknowledged it, with the number of events.
    let am = am_payload("2026-11-28T10:00:00Z");
    let native = native_batch("2026-11-28T10:00:05Z");
    let a = http_post(
        &http,
        &path("alertmanager"),
        Some("prometheus-eu"),
        am.clone(),
    )
    .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.body["accepted"], 2, "{a:?}");
    let n = http_post(&http, &path("native"), None, native.clone()).await;
    assert_eq!(n.status, 202, "{n:?}");
    assert_eq!(n.body["accepted"], 2, "{n:?}");

    // Read back byte for byte, keyed by X-Source, else by the format name.
    let raw = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || {
            read_until(&b, "d2c.events.raw", 3, Duration::from_secs(30), |rs| {
                rs.len() >= 2
            })
        }
    })
    .await
    .unwrap();
    let by_key: BTreeMap<String, Vec<u8>> = raw
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap_or_default()).unwrap(),
                r.payload.clone(),
            )
        })
        .collect();
    assert_eq!(raw.len(), 2, "only the accepted payloads: {by_key:?}");
    assert_eq!(by_key.get("prometheus-eu"), Some(&am));
    assert_eq!(by_key.get("native"), Some(&native));

    // The pipeline turns them into one incident with all four alerts.
    let incidents = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || {
            read_until(&b, "d2c.incidents", 3, Duration::from_secs(90), |rs| {
                rs.iter()
                    .any(|r| r.json()["alerts"].as_array().is_some_and(|a| a.len() == 4))
            })
        }
    })
    .await
    .unwrap();
    let versions: Vec<Value> = incidents.iter().map(Record::json).collect();
    let last = versions
        .iter()
        .find(|v| v["alerts"].as_array().is_some_and(|a| a.len() == 4))
        .unwrap_or_else(|| panic!("an incident with the four alerts: {versions:#?}"));
    assert!(
        versions.iter().all(|v| v["id"] == last["id"]),
        "one incident: {versions:#?}"
    );
    assert_eq!(last["status"], "open");
    assert_eq!(last["root_cause"]["service"], "payments-db");

    // Acknowledged through the API: a new version says who and when.
    let id = last["id"].as_str().unwrap().to_string();
    let bad = http_post(
        &http,
        &format!("/api/v1/incidents/{id}/ack"),
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_rejected(&bad, 400, "malformed_json");
    let bad_id = http_post(
        &http,
        "/api/v1/incidents/no%20such/ack",
        None,
        b"{\"by\":\"x\"}".to_vec(),
    )
    .await;
    assert_rejected(&bad_id, 400, "invalid_id");
    let ack = http_post(
        &http,
        &format!("/api/v1/incidents/{id}/ack"),
        None,
        br#"{"by":"alice"}"#.to_vec(),
    )
    .await;
    assert_eq!(ack.status, 202, "{:?}", ack.body);
    assert_eq!(ack.body["partitions"], 3);
    let acked = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || {
            read_until(&b, "d2c.incidents", 3, Duration::from_secs(60), |rs| {
                rs.iter().any(|r| r.json()["acknowledged_by"] == "alice")
            })
        }
    })
    .await
    .unwrap();
    let acked: Vec<Value> = acked
        .iter()
        .map(Record::json)
        .filter(|v| v["acknowledged_by"] == "alice")
        .collect();
    assert_eq!(acked[0]["id"], id.as_str());
    assert!(acked[0]["acknowledged_at"].is_string());

    // A silence through the API: checked, then every engine suppresses what it matches.
    let bad_silence = http_post(
        &http,
        "/api/v1/silences",
        None,
        br#"{"matchers":"{service=~\"(\"}","starts_at":"2026-01-01T00:00:00Z","ends_at":"2027-01-01T00:00:00Z"}"#.to_vec(),
    )
    .await;
    assert_rejected(&bad_silence, 400, "invalid_value");
    let silence = http_post(
        &http,
        "/api/v1/silences",
        None,
        br#"{"id":"mail-maint","matchers":"{service=\"email-worker\"}","starts_at":"2026-01-01T00:00:00Z","ends_at":"2027-01-01T00:00:00Z","created_by":"bob"}"#.to_vec(),
    )
    .await;
    assert_eq!(silence.status, 202, "{:?}", silence.body);
    assert_eq!(silence.body["id"], "mail-maint");
    let mail = br#"{"name":"QueueBacklog","time":"2026-11-28T10:00:30Z","ci":"email-worker-1"}"#;
    let a = http_post(&http, &path("native"), None, mail.to_vec()).await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let mut silenced = None;
    for _ in 0..100 {
        silenced = metric(
            &http_get(&http, "/metrics").1,
            "d2c_events_suppressed_total{reason=\"silenced\"}",
        );
        if silenced == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(silenced, Some(1.0), "the silenced event is counted");
    // Listed: the silence in force, and the alert it mutes with who muted it (the read API
    // takes the engines' state within a second).
    let mut listed = (Value::Null, Value::Null);
    for _ in 0..50 {
        let s: Value = serde_json::from_str(&http_get(&http, "/api/v1/silences").1).unwrap();
        let a: Value =
            serde_json::from_str(&http_get(&http, "/api/v1/suppressed?reason=silenced").1).unwrap();
        listed = (s, a);
        // Two requests: the view may be updated between them, so wait until both show it.
        let shown = |v: &Value, key: &str| v[key].as_array().is_some_and(|a| !a.is_empty());
        if shown(&listed.0, "silences") && shown(&listed.1, "alerts") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (silences, suppressed) = listed;
    assert_eq!(silences["silences"][0]["id"], "mail-maint", "{silences}");
    assert_eq!(silences["silences"][0]["state"], "active", "{silences}");
    assert_eq!(silences["silences"][0]["created_by"], "bob", "{silences}");
    let muted = &suppressed["alerts"][0];
    assert_eq!(
        (&muted["name"], &muted["by"], &muted["service"]),
        (
            &json!("QueueBacklog"),
            &json!("mail-maint"),
            &json!("email-worker")
        ),
        "{suppressed}"
    );
    let (status, body) = http_get(&http, "/api/v1/suppressed?reason=bored");
    assert_eq!(status, 400, "{body}");

    // Counted per format and result; the ingest stage saw exactly the three accepted payloads.
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&http, "/metrics").1;
        if metric(
            &text,
            "d2c_events_consumed_total{format=\"native\",result=\"ok\"}",
        ) == Some(2.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = |series: &str| metric(&text, series).unwrap_or_else(|| panic!("{series}: {text}"));
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"alertmanager\",result=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"native\",result=\"accepted\"}"),
        2.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"unknown\",result=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"alertmanager\",result=\"rejected\"}"),
        2.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"native\",result=\"rejected\"}"),
        9.0
    );
    // Three payloads, one acknowledgement, one silence.
    assert_eq!(m("d2c_http_ingest_seconds_count{result=\"accepted\"}"), 5.0);
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"silence\",result=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"ack\",result=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        m("d2c_http_ingest_requests_total{format=\"ack\",result=\"rejected\"}"),
        2.0
    );
    assert_eq!(
        m("d2c_events_consumed_total{format=\"alertmanager\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        m("d2c_events_consumed_total{format=\"native\",result=\"ok\"}"),
        2.0
    );
    for reason in d2c::ingest::IngestError::REASONS {
        assert_eq!(
            m(&format!("d2c_dlq_records_total{{reason=\"{reason}\"}}")),
            0.0
        );
    }
    // The other endpoints are still there.
    assert_eq!(http_get(&http, "/healthz").0, 200);
    assert_eq!(http_get(&http, "/readyz").0, 200);

    // Without a broker: 503 with Retry-After once the delivery timeout (5 s) has passed.
    broker.stop();
    let started = std::time::Instant::now();
    let down = http_post(&http, &path("native"), None, native.clone()).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(down.retry_after.as_deref(), Some("1"));
    assert_eq!(down.body["reason"], "broker_unavailable");
    // The HTTP producer's delivery timeout is 5 s; librdkafka notices it on its own timer, and
    // a loaded test machine took just over 15 s once. What matters is that the request does not
    // wait for the pipeline producer's 60 s message timeout.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered well before the pipeline producer's 60 s timeout: {:?}",
        started.elapsed()
    );
}

/// With `ingest.http_direct`, a payload is parsed once and its events go straight to the events
/// topic (one hop): the raw topic stays empty, the answer names the events records, the same
/// incident results, and bad input is still refused with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_direct_writes_events_in_one_hop() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let d2c = D2c::start(
        &brokers,
        &[
            ("D2C_INGEST__HTTP_DIRECT", "true"),
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
            ("D2C_CORRELATION__GROUP_INTERVAL", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let http = d2c.http.clone();
    let path = |f: &str| format!("/api/v1/events/{f}");

    let bad = http_post(&http, &path("native"), None, b"{\"name\":".to_vec()).await;
    assert_rejected(&bad, 400, "malformed_json");
    let a = http_post(
        &http,
        &path("alertmanager"),
        None,
        am_payload("2026-11-28T10:00:00Z"),
    )
    .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.body["accepted"], 2, "{a:?}");
    let written = a.body["written"].as_array().expect("the events records");
    assert!(!written.is_empty(), "{a:?}");
    let n = http_post(
        &http,
        &path("native"),
        None,
        native_batch("2026-11-28T10:00:05Z"),
    )
    .await;
    assert_eq!(n.status, 202, "{n:?}");

    let incidents = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || {
            read_until(&b, "d2c.incidents", 3, Duration::from_secs(90), |rs| {
                rs.iter()
                    .any(|r| r.json()["alerts"].as_array().is_some_and(|a| a.len() == 4))
            })
        }
    })
    .await
    .unwrap();
    let versions: Vec<Value> = incidents.iter().map(Record::json).collect();
    let last = versions
        .iter()
        .find(|v| v["alerts"].as_array().is_some_and(|a| a.len() == 4))
        .unwrap_or_else(|| panic!("an incident with the four alerts: {versions:#?}"));
    assert!(
        versions.iter().all(|v| v["id"] == last["id"]),
        "one incident: {versions:#?}"
    );
    assert_eq!(last["root_cause"]["service"], "payments-db");
    let raw = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || read_until(&b, "d2c.events.raw", 3, Duration::from_secs(3), |_| false)
    })
    .await
    .unwrap();
    assert!(
        raw.is_empty(),
        "nothing on the raw topic: {} records",
        raw.len()
    );
}

/// An Alertmanager webhook payload: the payments database fails (two alerts on its CI).
fn am_payload(t: &str) -> Vec<u8> {
    let pg = |name: &str| {
        json!({"status": "firing",
               "labels": {"alertname": name, "job": "postgres", "cluster": "payments",
                          "instance": "10.0.3.11:9187", "severity": "critical"},
               "annotations": {"summary": "payments database"}, "startsAt": t,
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph",
               "fingerprint": format!("fp-{name}")})
    };
    json!({"version": "4", "groupKey": "{}:{alertname=\"PostgresDown\"}", "truncatedAlerts": 0,
           "status": "firing", "receiver": "d2c", "groupLabels": {}, "commonLabels": {},
           "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
           "alerts": [pg("PostgresDown"), pg("PostgresReplicationBroken")]})
    .to_string()
    .into_bytes()
}

/// A native batch: the services above the database alert.
fn native_batch(t: &str) -> Vec<u8> {
    json!([
        {"name": "HighErrorRate", "ci": "payments-api-7f9c", "severity": "critical",
         "status": "firing", "time": t},
        {"name": "HighLatency", "ci": "checkout-api-5c1a", "severity": "major",
         "status": "firing", "time": t},
    ])
    .to_string()
    .into_bytes()
}

/// With `http.token` set, every `/api/v1/…` request needs `Authorization: Bearer <token>`;
/// `/metrics` and the probes stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_token_when_one_is_set() {
    let broker = Tansu::start();
    let d2c = D2c::start(
        &broker.brokers(),
        &[
            ("D2C_HTTP__TOKEN", "env:D2C_TEST_API_TOKEN"),
            ("D2C_TEST_API_TOKEN", "s3cret"),
        ],
    );
    let http = d2c.http.clone();
    let client = reqwest::Client::new();
    let get = |token: Option<&str>| {
        let mut req = client
            .get(format!("http://{http}/api/v1/capabilities"))
            .timeout(Duration::from_secs(10));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let none = get(None).await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["reason"], "unauthorized", "{body}");
    assert_eq!(get(Some("wrong")).await.unwrap().status().as_u16(), 401);
    assert_eq!(get(Some("s3cret")).await.unwrap().status().as_u16(), 200);
    let post = client
        .post(format!("http://{http}/api/v1/events/native"))
        .body(r#"{"name":"X","time":"2026-11-28T10:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 401, "writes need it too");
    assert_eq!(http_get(&http, "/metrics").0, 200);
    assert_eq!(http_get(&http, "/healthz").0, 200);
}
