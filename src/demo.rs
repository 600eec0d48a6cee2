//! `d2c demo`: the real pipeline against librdkafka's mock cluster (a Kafka-protocol broker in
//! this process, on a real local port), a generator that plays a believable outage against the
//! example topology, and a printer that shows incidents and RFCs as they appear on their topics.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::engine::Settings;
use crate::model::{Approval, Incident, IncidentStatus, Output, Rfc};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the embedded Kafka broker: {0}")]
    Broker(rdkafka::error::KafkaError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
}

/// Options of `d2c demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
    /// Seconds between generator steps; 1.0 plays the scenario in real time.
    pub step: Duration,
}

/// Runs the demo until `shutdown` is cancelled or the duration has passed.
pub async fn run(
    mut settings: Settings,
    opts: DemoOptions,
    shutdown: CancellationToken,
) -> Result<(), DemoError> {
    let cluster = mock_cluster(&settings.config)?;
    let cfg = &mut settings.config;
    cfg.kafka.brokers = cluster.bootstrap_servers();
    // The mock broker has no CreateTopics API; the topics were made above.
    cfg.kafka.create_topics = false;
    // A resolve hold of ten generator steps (10 s in real time), so the recovery shows
    // within the scenario's cycle rather than after a minute.
    cfg.correlation.resolve_hold = cfg.correlation.resolve_hold.min(opts.step * 10);
    // The group wait and interval in generator steps too (3 steps after the root cause stops
    // moving, at most 8; updates every 5), with ticks every step so they end on time.
    let c = &mut cfg.correlation;
    c.group_wait = c.group_wait.min(opts.step * 3);
    c.group_wait_max = c.group_wait_max.min(opts.step * 8).max(c.group_wait);
    c.group_interval = c.group_interval.min(opts.step * 5);
    cfg.ingest.tick_interval = cfg.ingest.tick_interval.min(opts.step);
    let settings = Arc::new(settings);
    let cfg = &settings.config;

    let stop = shutdown.child_token();
    let app = crate::app::start(
        settings.clone(),
        crate::app::Parts {
            http: true,
            delivery: false,
        },
        stop.clone(),
    )
    .await?;
    println!(
        "d2c demo: the real pipeline on an embedded Kafka-protocol broker at {}",
        cfg.kafka.brokers
    );
    let http = app
        .http_addr
        .map_or(cfg.http.listen.clone(), |a| a.to_string());
    println!("  console: http://{http}/   (the live incident board)");
    println!(
        "  metrics: http://{http}/metrics   topology: {}   policy: {}",
        settings.topology_file.display(),
        settings.policy_file.display()
    );
    println!(
        "  playing an outage: the payments database fails, the services above it alert, then it recovers."
    );
    println!("  Ctrl-C to stop.\n");

    if let Some(d) = opts.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let generator = tokio::spawn(generate(settings.clone(), opts.step, stop.clone()));
    let printer = tokio::spawn(print(settings.clone(), stop.clone()));

    stop.cancelled().await;
    let result = app.wait().await;
    // The generator and the printer end with `stop`; their clients close while the broker is
    // still up (else librdkafka reports each lost connection as an error on the way out).
    stop.cancel();
    let ended = async {
        let _ = generator.await;
        let _ = printer.await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), ended).await;
    drop(cluster);
    result.map_err(DemoError::from)
}

/// Starts librdkafka's mock cluster (one broker, on a local port) with every configured topic,
/// `kafka.partitions` partitions each.
pub fn mock_cluster(
    cfg: &crate::config::Config,
) -> Result<MockCluster<'static, rdkafka::producer::DefaultProducerContext>, DemoError> {
    let cluster = MockCluster::new(1).map_err(DemoError::Broker)?;
    for (_, topic) in cfg.topics.all() {
        cluster
            .create_topic(topic, cfg.kafka.partitions, 1)
            .map_err(DemoError::Broker)?;
    }
    Ok(cluster)
}

/// One step of the scenario: what to send, as raw payloads.
fn step_payloads(step: u64, now: DateTime<Utc>) -> Vec<String> {
    let t = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let am = |status: &str, alerts: Vec<serde_json::Value>| {
        json!({
            "version": "4", "groupKey": "{}:{alertname=~\".*\"}", "truncatedAlerts": 0,
            "status": status, "receiver": "d2c", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager.demo:9093",
            "alerts": alerts,
        })
        .to_string()
    };
    let am_alert = |status: &str, labels: serde_json::Value, summary: &str| {
        let ends = if status == "resolved" {
            t.clone()
        } else {
            "0001-01-01T00:00:00Z".to_string()
        };
        json!({
            "status": status, "labels": labels, "annotations": {"summary": summary},
            "startsAt": t, "endsAt": ends, "generatorURL": "http://prometheus.demo:9090/graph",
        })
    };
    let native = |name: &str, ci: &str, severity: &str, status: &str| {
        json!({"name": name, "time": t, "ci": ci, "severity": severity, "status": status,
               "source": "demo-probe", "attributes": {"summary": format!("{name} on {ci}")}})
        .to_string()
    };
    let pg = json!({"alertname": "PostgresDown", "job": "postgres", "cluster": "payments",
                    "instance": "10.0.3.11:9187", "severity": "critical"});
    let web = |i: u8| json!({"alertname": "Http5xxRate", "job": "web", "instance": format!("web-{i}:8080"), "severity": "critical"});
    let redis = json!({"alertname": "RedisMemoryHigh", "job": "redis", "instance": "10.0.5.2:9121", "severity": "warning"});
    let firing_outage = |s: u64| -> Vec<String> {
        let mut v = vec![am(
            "firing",
            vec![am_alert(
                "firing",
                pg.clone(),
                "payments primary is not accepting connections",
            )],
        )];
        if s >= 2 {
            v.push(native(
                "HighErrorRate",
                "payments-api-7f9c",
                "critical",
                "firing",
            ));
        }
        if s >= 4 {
            v.push(native(
                "HighLatency",
                "checkout-api-5c1a",
                "major",
                "firing",
            ));
        }
        if s >= 6 {
            v.push(am(
                "firing",
                vec![
                    am_alert("firing", web(1), "5xx above 5%"),
                    am_alert("firing", web(2), "5xx above 5%"),
                ],
            ));
        }
        v
    };
    // A 70-step cycle: outage from 2 to 30, recovery at 30, a cache incident from 40 to 55, and
    // the redundant orders database losing one replica at 56 (degraded, P2) and the other at 60
    // (down, P1), back at 66.
    match step % 70 {
        0 => vec![
            native("QueueBacklog", "email-worker-1", "warning", "firing"),
            // A configuration change on the database shortly before it fails.
            json!({"name": "postgresql.conf: max_connections 500 -> 50", "time": t,
                   "ci": "pg-payments-1", "category": "change", "source": "argocd",
                   "severity": "info", "id": format!("change-{step}")})
            .to_string(),
        ],
        s @ 2..=29 if s % 2 == 0 => {
            let mut v = firing_outage(s - 2);
            if s == 12 {
                v.push("{\"this is\": not json".to_string());
            }
            v
        }
        30 => vec![
            am("resolved", vec![am_alert("resolved", pg, "recovered")]),
            native("HighErrorRate", "payments-api-7f9c", "critical", "resolved"),
            native("HighLatency", "checkout-api-5c1a", "major", "resolved"),
            am(
                "resolved",
                vec![
                    am_alert("resolved", web(1), "recovered"),
                    am_alert("resolved", web(2), "recovered"),
                ],
            ),
            native("QueueBacklog", "email-worker-1", "warning", "resolved"),
        ],
        s @ 40..=54 if s % 3 == 1 => {
            let mut v = vec![am(
                "firing",
                vec![am_alert("firing", redis.clone(), "memory above 90%")],
            )];
            if s >= 43 {
                v.push(native("HighLatency", "catalog-api-2b7e", "major", "firing"));
            }
            v
        }
        55 => vec![
            am("resolved", vec![am_alert("resolved", redis, "recovered")]),
            native("HighLatency", "catalog-api-2b7e", "major", "resolved"),
        ],
        56 => vec![native("PostgresDown", "pg-orders-a", "critical", "firing")],
        60 => vec![native("PostgresDown", "pg-orders-b", "critical", "firing")],
        66 => vec![
            native("PostgresDown", "pg-orders-a", "critical", "resolved"),
            native("PostgresDown", "pg-orders-b", "critical", "resolved"),
        ],
        _ => Vec::new(),
    }
}

async fn generate(settings: Arc<Settings>, step: Duration, stop: CancellationToken) {
    let producer: FutureProducer = match crate::pipeline::kafka::base_config(&settings.config.kafka)
        .and_then(|c| c.create())
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "demo generator cannot create a producer");
            return;
        }
    };
    let mut n = 0u64;
    let mut tick = tokio::time::interval(step);
    loop {
        tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
        for p in step_payloads(n, Utc::now()) {
            // One key: the generator is one source, and its events must stay in order.
            let rec: FutureRecord<'_, str, String> = FutureRecord::to(&settings.config.topics.raw)
                .key("demo-generator")
                .payload(&p);
            if let Err((e, _)) = producer
                .send(rec, Timeout::After(Duration::from_secs(5)))
                .await
            {
                tracing::warn!(error = %e, "demo generator could not send an event");
            }
        }
        n += 1;
    }
}

async fn print(settings: Arc<Settings>, stop: CancellationToken) {
    let topics = &settings.config.topics;
    let consumer: StreamConsumer = match ClientConfig::new()
        .set("bootstrap.servers", &settings.config.kafka.brokers)
        .set("group.id", "d2c-demo-printer")
        .set("auto.offset.reset", "earliest")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "demo printer cannot create a consumer");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[&topics.incidents, &topics.changes, &topics.dlq]) {
        tracing::error!(error = %e, "demo printer cannot subscribe");
        return;
    }
    loop {
        let m = tokio::select! { _ = stop.cancelled() => return, m = consumer.recv() => m };
        let Ok(m) = m else { continue };
        let payload = m.payload().unwrap_or(&[]);
        if m.topic() == topics.dlq {
            let reason = m
                .headers()
                .and_then(|h| {
                    use rdkafka::message::Headers;
                    h.iter()
                        .find(|h| h.key == "d2c.error")
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                })
                .unwrap_or_default();
            println!(
                "{}  DLQ  {}  ({reason})",
                clock(),
                String::from_utf8_lossy(payload)
            );
            continue;
        }
        match serde_json::from_slice::<Output>(payload) {
            Ok(Output::Incident(i)) => print_incident(&i),
            Ok(Output::Change(r)) => print_rfc(&r),
            _ => {}
        }
    }
}

fn clock() -> String {
    Utc::now().format("%H:%M:%S").to_string()
}

fn print_incident(i: &Incident) {
    let what = match (i.status, i.version) {
        (IncidentStatus::Resolved, _) => "RESOLVED",
        (IncidentStatus::Closed, _) if i.merged_into.is_some() => "MERGED",
        (IncidentStatus::Closed, _) => "CLOSED",
        (_, 1) => "OPENED",
        _ if i.reopened > 0 => "REOPENED",
        _ => "UPDATED",
    };
    let firing = i
        .alerts
        .iter()
        .filter(|a| a.status == crate::model::Status::Firing)
        .count();
    println!(
        "{}  {} v{} {what:<8} {} {}  {}",
        clock(),
        i.id,
        i.version,
        i.priority.as_str(),
        i.severity.as_str(),
        i.title
    );
    if let Some(rc) = &i.root_cause {
        println!("          root cause: {} ({})", rc.service, rc.reason);
    }
    for r in &i.related_changes {
        let c = &r.change;
        println!(
            "          related change: {} on {} ({} s before)",
            c.name,
            c.ci.as_deref().or(c.service.as_deref()).unwrap_or("?"),
            r.seconds_before_incident
        );
    }
    if let Some(into) = &i.merged_into {
        println!("          merged into {into}");
    }
    if i.services.is_empty() {
        // Open but every alert resolved: waiting out the resolve hold.
        println!("          services: none hurt now (all alerts resolved)");
    } else {
        println!("          services: {}", i.services.join(", "));
    }
    println!(
        "          capabilities: {}  revenue at risk: {:.0}/min  alerts: {} ({} firing)  events: {}",
        if i.capabilities.is_empty() {
            "none".to_string()
        } else {
            i.capabilities.join(", ")
        },
        i.impact.revenue_at_risk_per_minute,
        i.alerts.len(),
        firing,
        i.event_count
    );
    for c in &i.impact.capabilities {
        println!(
            "          {} {} (health {:.0}): {:.0}/min at risk, {} users affected",
            c.capability,
            c.state.as_str(),
            c.health,
            c.revenue_at_risk_per_minute,
            c.users_affected
        );
    }
    if i.impact.cost > 0.0 {
        println!(
            "          outage {} s, cost so far {:.0}",
            i.impact.outage_seconds, i.impact.cost
        );
    }
}

fn print_rfc(r: &Rfc) {
    if r.version > 1 {
        println!(
            "{}  {} v{} for {}: {}{}",
            clock(),
            r.id,
            r.version,
            r.incident_id,
            r.status.as_str(),
            r.reason
                .as_deref()
                .map(|why| format!(" ({why})"))
                .unwrap_or_default()
        );
        return;
    }
    let approval = match r.approval {
        Approval::Required => "approval required",
        Approval::PreApproved => "pre-approved",
    };
    println!(
        "{}  {} for {}: {:?} change, {:?} risk, {approval}\n          action: {}",
        clock(),
        r.id,
        r.incident_id,
        r.category,
        r.risk,
        r.action
    );
}
