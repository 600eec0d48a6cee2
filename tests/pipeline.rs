//! End to end over real TCP: a tansu broker, the d2c binary, raw events produced with rdkafka;
//! incidents, RFCs, DLQ records and metrics checked where users would look for them.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn am_payload(status: &str, alerts: &[(&str, Value)], t: &str) -> Vec<u8> {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(s, labels)| {
            json!({"status": s, "labels": labels, "annotations": {"summary": "test"},
                   "startsAt": t, "endsAt": if *s == "resolved" { t } else { "0001-01-01T00:00:00Z" },
                   "generatorURL": "http://prometheus:9090/graph"})
        })
        .collect();
    json!({"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
           "receiver": "d2c", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://alertmanager:9093", "alerts": alerts})
    .to_string()
    .into_bytes()
}

fn native(name: &str, ci: &str, severity: &str, status: &str, t: &str) -> Vec<u8> {
    json!({"name": name, "ci": ci, "severity": severity, "status": status, "time": t})
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_becomes_one_incident_with_rfc_and_bad_records_go_to_dlq() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let mut d2c = D2c::start(
        &brokers,
        &[
            ("D2C_INGEST__MAX_RECORD_BYTES", "4096"),
            // Resolve as soon as every alert resolved: this test has no ticks.
            ("D2C_CORRELATION__RESOLVE_HOLD", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));

    let pg = json!({"alertname": "PostgresDown", "job": "postgres", "cluster": "payments",
                    "instance": "10.0.3.11:9187", "severity": "critical"});
    let web = json!({"alertname": "Http5xxRate", "instance": "web-1:8080", "severity": "critical"});
    let mut raw = vec![
        am_payload("firing", &[("firing", pg.clone())], "2026-11-28T10:00:00Z"),
        native(
            "HighErrorRate",
            "payments-api-7f9c",
            "critical",
            "firing",
            "2026-11-28T10:00:05Z",
        ),
        am_payload("firing", &[("firing", pg.clone())], "2026-11-28T10:00:00Z"),
        native(
            "HighLatency",
            "checkout-api-5c1a",
            "major",
            "firing",
            "2026-11-28T10:00:10Z",
        ),
        am_payload("firing", &[("firing", web.clone())], "2026-11-28T10:00:12Z"),
        // Bad input, one of each kind.
        b"{\"alerts\": [".to_vec(),
        vec![b'x'; 5000],
        json!({"time": "2026-11-28T10:00:00Z", "severity": "critical"})
            .to_string()
            .into_bytes(),
        json!({"hello": "world"}).to_string().into_bytes(),
    ];
    // Recovery.
    raw.push(am_payload(
        "resolved",
        &[("resolved", pg), ("resolved", web)],
        "2026-11-28T10:05:00Z",
    ));
    raw.push(native(
        "HighErrorRate",
        "payments-api-7f9c",
        "critical",
        "resolved",
        "2026-11-28T10:05:01Z",
    ));
    raw.push(native(
        "HighLatency",
        "checkout-api-5c1a",
        "major",
        "resolved",
        "2026-11-28T10:05:02Z",
    ));

    let p = producer(&brokers);
    produce_all(&p, "d2c.events.raw", &raw).await;

    let within = Duration::from_secs(90);
    let incidents = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || {
            read_until(&b, "d2c.incidents", 3, within, |rs| {
                rs.iter().any(|r| r.json()["status"] == "resolved")
            })
        }
    })
    .await
    .unwrap();
    let versions: Vec<Value> = incidents.iter().map(Record::json).collect();
    let ids: std::collections::BTreeSet<&str> =
        versions.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one incident for the whole outage: {versions:#?}"
    );
    let last = versions.last().unwrap();
    assert_eq!(last["type"], "incident");
    assert_eq!(last["status"], "resolved");
    assert_eq!(last["priority"], "P1");
    assert_eq!(last["root_cause"]["service"], "payments-db");
    assert_eq!(
        last["capabilities"],
        json!(["online-payments", "order-checkout"])
    );
    assert_eq!(last["alerts"].as_array().unwrap().len(), 4);
    for s in [
        "payments-db",
        "payments-api",
        "checkout-api",
        "web-frontend",
    ] {
        assert!(
            last["services"].as_array().unwrap().contains(&json!(s)),
            "{s} affected"
        );
    }
    // Keyed by incident id, versions 1..n without gaps.
    assert!(
        incidents
            .iter()
            .all(|r| r.key.as_deref() == Some(last["id"].as_str().unwrap().as_bytes()))
    );
    let nums: Vec<u64> = versions
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, (1..=nums.len() as u64).collect::<Vec<_>>());

    // One RFC, and its next version withdrawing it: the outage resolved before anyone
    // approved it.
    let changes = read_until(&brokers, "d2c.changes", 3, within, |rs| {
        rs.iter().any(|r| r.json()["status"] == "withdrawn")
    });
    assert_eq!(changes.len(), 2, "one RFC, two versions");
    assert_eq!(changes[1].json()["id"], changes[0].json()["id"]);
    assert_eq!(changes[1].json()["version"], 2);
    let rfc = changes[0].json();
    assert_eq!(rfc["status"], "proposed");
    assert_eq!(rfc["type"], "change");
    assert_eq!(rfc["incident_id"], last["id"]);
    assert_eq!(rfc["category"], "emergency");
    assert_eq!(rfc["approval"], "required");
    assert_eq!(rfc["cis"], json!(["pg-payments-1"]));
    assert_eq!(
        changes[0].key.as_deref(),
        Some(rfc["id"].as_str().unwrap().as_bytes())
    );

    let dlq = read_until(&brokers, "d2c.dlq", 3, within, |rs| rs.len() >= 4);
    assert_eq!(dlq.len(), 4);
    let reasons: BTreeMap<String, Vec<u8>> = dlq
        .iter()
        .map(|r| (r.header("d2c.reason").unwrap(), r.payload.clone()))
        .collect();
    assert_eq!(
        reasons.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "malformed_json",
            "missing_field",
            "oversize",
            "unknown_format"
        ]
    );
    assert_eq!(reasons["oversize"], vec![b'x'; 5000], "original bytes kept");
    assert_eq!(reasons["malformed_json"], b"{\"alerts\": [".to_vec());
    assert!(
        dlq.iter()
            .all(|r| r.header("d2c.error").is_some_and(|e| !e.is_empty()))
    );

    // Metrics reflect it, once the last batch's counters are in.
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&d2c.http, "/metrics").1;
        if metric(&text, "d2c_incidents_resolved_total{priority=\"P1\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(&text, "d2c_incidents_opened_total{priority=\"P1\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "d2c_incidents_resolved_total{priority=\"P1\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "d2c_incidents_open{priority=\"P1\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "d2c_rfcs_published_total{category=\"emergency\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "d2c_dlq_records_total{reason=\"oversize\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "d2c_events_consumed_total{format=\"alertmanager\",result=\"ok\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        metric(
            &text,
            "d2c_events_consumed_total{format=\"native\",result=\"ok\"}"
        ),
        Some(4.0)
    );
    assert_eq!(metric(&text, "d2c_alerts_active"), Some(0.0));
    assert!(metric(&text, "d2c_event_to_incident_seconds_count").unwrap() >= 1.0);
    // The build memos are counted with the gauges (every second): the incident's first build
    // made its shape and assessment afresh.
    let memo = |text: &str, memo: &str, result: &str| {
        metric(
            text,
            &format!("d2c_engine_memo_lookups_total{{memo=\"{memo}\",result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    for _ in 0..50 {
        if memo(&text, "build", "miss") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = http_get(&d2c.http, "/metrics").1;
    }
    assert!(memo(&text, "build", "miss") >= 1.0, "{text}");
    assert!(memo(&text, "assessment", "miss") >= 1.0, "{text}");

    // A clean shutdown on SIGTERM.
    let status = d2c.terminate(Duration::from_secs(30));
    assert!(status.success(), "d2c exited with {status}");
}

#[test]
fn metrics_pass_promtool_check() {
    let broker = Tansu::start();
    let d2c = D2c::start(&broker.brokers(), &[]);
    d2c.wait_ready(Duration::from_secs(60));
    // The lag gauge appears with librdkafka's first statistics report after assignment.
    let mut body = String::new();
    for _ in 0..150 {
        let (status, b) = http_get(&d2c.http, "/metrics");
        assert_eq!(status, 200);
        body = b;
        if body.contains("d2c_consumer_lag{") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for name in [
        "d2c_events_consumed_total",
        "d2c_dlq_records_total",
        "d2c_alerts_active",
        "d2c_incidents_open",
        "d2c_capability_open_incidents",
        "d2c_incidents_opened_total",
        "d2c_incidents_resolved_total",
        "d2c_rfcs_published_total",
        "d2c_event_to_incident_seconds",
        "d2c_consumer_lag",
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{body}"
        );
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; scripts/test.sh installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(http_get(&d2c.http, "/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_incidents_also_reach_their_own_topic_and_the_security_metrics() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let mut d2c = D2c::start(&brokers, &[("D2C_TOPICS__SECURITY", "d2c.security")]);
    d2c.wait_ready(Duration::from_secs(60));
    let scenario = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/attack.jsonl"
    ))
    .unwrap();
    let raw: Vec<Vec<u8>> = scenario
        .lines()
        .filter(|l| !l.starts_with("{\"tick\""))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    produce_all(&producer(&brokers), "d2c.events.raw", &raw).await;

    let within = Duration::from_secs(90);
    let p1 = |rs: &[Record]| rs.iter().any(|r| r.json()["priority"] == "P1");
    let security = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || read_until(&b, "d2c.security", 3, within, p1)
    })
    .await
    .unwrap();
    let ids: std::collections::BTreeSet<String> = security
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "the web-1 attack and the db-2 brute force");
    assert!(security.iter().all(|r| r.json()["security"].is_object()));
    // The same records are on the incidents topic, byte for byte.
    let incidents = read_until(&brokers, "d2c.incidents", 3, within, |rs| {
        rs.len() >= security.len()
    });
    for r in &security {
        assert!(
            incidents
                .iter()
                .any(|i| i.payload == r.payload && i.key == r.key),
            "{}",
            String::from_utf8_lossy(&r.payload)
        );
    }

    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&d2c.http, "/metrics").1;
        let web = "d2c_security_incidents_open{severity=\"critical\",tactic=\"TA0003\"}";
        if metric(&text, web) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (series, value) in [
        (
            "d2c_security_incidents_open{severity=\"critical\",tactic=\"TA0001\"}",
            1.0,
        ),
        (
            "d2c_security_incidents_open{severity=\"critical\",tactic=\"TA0003\"}",
            1.0,
        ),
        (
            "d2c_security_incidents_open{severity=\"major\",tactic=\"TA0006\"}",
            1.0,
        ),
        (
            "d2c_security_incidents_open{severity=\"major\",tactic=\"TA0001\"}",
            0.0,
        ),
        ("d2c_security_events_total{tool=\"falco\"}", 3.0),
        ("d2c_security_events_total{tool=\"suricata\"}", 3.0),
        ("d2c_security_events_total{tool=\"wazuh\"}", 4.0),
        ("d2c_security_events_total{tool=\"ocsf\"}", 1.0),
        ("d2c_security_events_total{tool=\"ecs\"}", 1.0),
        ("d2c_rfcs_published_total{category=\"emergency\"}", 2.0),
    ] {
        assert_eq!(metric(&text, series), Some(value), "{series}\n{text}");
    }
    let status = d2c.terminate(Duration::from_secs(30));
    assert!(status.success(), "d2c exited with {status}");
}

/// A producer that writes records up to 2 MB (librdkafka's own limit is 1,000,000 bytes), as a
/// tool with other settings would.
fn big_producer(brokers: &str) -> rdkafka::producer::FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_record_near_a_mebibyte_is_dead_lettered_cut_to_fit_and_ingest_goes_on() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    // The shipped limits: before, a 1,040,000-byte record passed ingest.max_record_bytes (1 MiB),
    // its dead letter (payload + headers) was over librdkafka's message.max.bytes, and the
    // ingest stage retried it for ever: nothing after it was ever correlated.
    // Ticks are off and the events stop: a group wait would never end.
    let mut d2c = D2c::start(
        &brokers,
        &[
            ("D2C_CORRELATION__RESOLVE_HOLD", "0s"),
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let mut huge = b"{\"alerts\": [".to_vec();
    huge.resize(1_040_000, b' ');
    let after = native(
        "DiskFull",
        "host-after-the-bomb",
        "major",
        "firing",
        "2026-11-28T10:00:00Z",
    );
    produce_all(&big_producer(&brokers), "d2c.events.raw", &[huge, after]).await;

    let within = Duration::from_secs(90);
    let incidents = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || read_until(&b, "d2c.incidents", 3, within, |rs| !rs.is_empty())
    })
    .await
    .unwrap();
    assert_eq!(
        incidents.len(),
        1,
        "the event after the large record is correlated"
    );
    assert!(
        incidents[0].json()["alerts"]
            .to_string()
            .contains("host-after-the-bomb"),
        "{}",
        incidents[0].json()
    );
    let dlq = read_until(&brokers, "d2c.dlq", 3, within, |rs| !rs.is_empty());
    assert_eq!(dlq.len(), 1);
    let letter = &dlq[0];
    assert_eq!(letter.header("d2c.reason").as_deref(), Some("oversize"));
    assert_eq!(letter.header("d2c.truncated").as_deref(), Some("1040000"));
    assert!(letter.payload.len() < 1_000_000);
    assert!(
        letter.payload.starts_with(b"{\"alerts\": ["),
        "the start is kept"
    );
    assert_eq!(http_get(&d2c.http, "/readyz").0, 200);
    let text = http_get(&d2c.http, "/metrics").1;
    assert_eq!(
        metric(&text, "d2c_dlq_truncated_total"),
        Some(1.0),
        "{text}"
    );
    let status = d2c.terminate(Duration::from_secs(30));
    assert!(status.success(), "d2c exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_undecodable_element_of_an_events_record_is_dead_lettered_alone() {
    use d2c::engine::Origin;
    use d2c::pipeline::RoutedEvent;
    let broker = Tansu::start();
    let brokers = broker.brokers();
    // Ticks are off and the events stop: a group wait would never end.
    let mut d2c = D2c::start(&brokers, &[("D2C_CORRELATION__GROUP_WAIT", "0s")]);
    d2c.wait_ready(Duration::from_secs(60));
    // An events record as the ingest stage writes it, with one element that is not an event.
    let event = |i: i64, ci: &str| {
        let raw = native("DiskFull", ci, "major", "firing", "2026-11-28T10:00:00Z");
        let (_, mut events) = d2c::ingest::parse(&raw, &Default::default()).unwrap();
        serde_json::to_string(&RoutedEvent {
            origin: Some(Origin {
                partition: 0,
                offset: i,
                index: 0,
            }),
            event: events.remove(0),
        })
        .unwrap()
    };
    let record = format!(
        "[{},{{\"origin\":{{\"partition\":0,\"offset\":2,\"index\":0}},\"event\":{{\"name\":7}}}},{}]",
        event(1, "host-good-1"),
        event(3, "host-good-2")
    );
    let p = producer(&brokers);
    p.send(
        rdkafka::producer::FutureRecord::<(), str>::to("d2c.events")
            .partition(0)
            .payload(&record),
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();

    let within = Duration::from_secs(90);
    let incidents = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || read_until(&b, "d2c.incidents", 3, within, |rs| rs.len() >= 2)
    })
    .await
    .unwrap();
    let text: String = incidents.iter().map(|r| r.json().to_string()).collect();
    assert!(
        text.contains("host-good-1") && text.contains("host-good-2"),
        "both good events are correlated: {text}"
    );
    let dlq = read_until(&brokers, "d2c.dlq", 3, within, |rs| !rs.is_empty());
    assert_eq!(dlq.len(), 1, "the bad element alone");
    assert_eq!(
        dlq[0].header("d2c.reason").as_deref(),
        Some("undecodable_event")
    );
    assert_eq!(
        String::from_utf8_lossy(&dlq[0].payload),
        "{\"origin\":{\"partition\":0,\"offset\":2,\"index\":0},\"event\":{\"name\":7}}"
    );
    let status = d2c.terminate(Duration::from_secs(30));
    assert!(status.success(), "d2c exited with {status}");
}

/// A mass outage on one incident: 3,000 hosts behind `web-1` alerting at once. Its record is
/// longer than the producer's `message.max.bytes` (lowered to 200,000 here), so it reaches the
/// incidents topic listing its first alerts and counting the rest in `alerts_omitted`, instead
/// of being refused by the broker and dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_outage_incident_reaches_the_topic_cut_to_fit() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let dir = tempfile::tempdir().unwrap();
    for f in ["topology.toml", "change-policy.toml"] {
        std::fs::copy(root.join(f), dir.path().join(f)).unwrap();
    }
    let example = std::fs::read_to_string(root.join("d2c.toml")).unwrap();
    let config = dir.path().join("d2c.toml");
    std::fs::write(
        &config,
        format!("{example}\n[kafka.properties]\n\"message.max.bytes\" = \"200000\"\n"),
    )
    .unwrap();
    let mut d2c = D2c::start_config(
        &config,
        &brokers,
        // What d2c ingests must fit the lower producer limit too.
        &[("D2C_INGEST__MAX_RECORD_BYTES", "100000")],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let hosts = 3_000;
    let at = |ms: i64| {
        (chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap()
            + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut raw: Vec<Vec<u8>> = (0..hosts)
        .map(|k| {
            json!({"name": "Down", "ci": "web-1", "severity": "critical", "status": "firing",
                   "time": at(k), "labels": {"host": format!("h{k}")}})
            .to_string()
            .into_bytes()
        })
        .collect();
    // Event time past the group wait, so the first version is due (ticks are off here).
    raw.push(native(
        "DiskFull",
        "pg-users-1",
        "warning",
        "firing",
        &at(300_000),
    ));
    produce_all(&producer(&brokers), "d2c.events.raw", &raw).await;

    let cut = |rs: &[Record]| rs.iter().any(|r| r.json()["alerts_omitted"].is_u64());
    let records = tokio::task::spawn_blocking({
        let b = brokers.clone();
        move || read_until(&b, "d2c.incidents", 3, Duration::from_secs(120), cut)
    })
    .await
    .unwrap();
    let r = records
        .iter()
        .find(|r| r.json()["alerts_omitted"].is_u64())
        .expect("the outage's incident, cut");
    assert!(
        r.payload.len() <= 200_000 - 1024,
        "{} bytes",
        r.payload.len()
    );
    let i = r.json();
    let listed = i["alerts"].as_array().unwrap().len() as u64;
    assert!(listed > 100, "as many as fit: {listed}");
    assert_eq!(listed + i["alerts_omitted"].as_u64().unwrap(), hosts as u64);
    assert!(
        i["title"]
            .as_str()
            .unwrap()
            .ends_with(&format!("and {} more alerts", hosts - 1)),
        "{}",
        i["title"]
    );
    let text = http_get(&d2c.http, "/metrics").1;
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("d2c_produce_failures_total") && l.contains("d2c.incidents")),
        "the broker refused no incident record"
    );
    let status = d2c.terminate(Duration::from_secs(30));
    assert!(status.success(), "d2c exited with {status}");
}
