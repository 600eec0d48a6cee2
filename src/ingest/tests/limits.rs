//! What no record may do, whatever its format: carry an event time d2c cannot compute with, or
//! make its events cost many times its own size (`sink.rs`); and how the formats that copy a
//! part of the record into each event keep those copies small.

use super::*;

fn err(raw: &[u8]) -> IngestError {
    match parse(raw, &Limits::default()) {
        Ok(parsed) => panic!("parsed as {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn event_times_outside_1970_to_9999_are_refused_in_every_format() {
    let cases: Vec<(&str, String)> = vec![
        (
            "ocsf",
            // Milliseconds of the year 255,000: chrono holds it, a window added to it did not.
            r#"{"class_uid":2004,"time":8000000000000000,"finding_info":{"title":"X"}}"#.into(),
        ),
        (
            "native",
            r#"{"name":"X","status":"resolved","time":"+262142-01-01T00:00:00Z"}"#.into(),
        ),
        ("native", r#"{"name":"X","time":"1969-12-31T23:59:59Z"}"#.into()),
        (
            "alertmanager",
            r#"{"version":"4","alerts":[{"labels":{"alertname":"A"},"startsAt":"2026-11-28T10:00:00Z"},
                {"labels":{"alertname":"B"},"startsAt":"+12026-11-28T10:00:00Z"}]}"#
                .into(),
        ),
        (
            "ecs",
            r#"{"@timestamp":"+100000-01-01T00:00:00Z","event.kind":"alert","rule.name":"X"}"#
                .into(),
        ),
        (
            "falco",
            r#"{"rule":"X","time":"0100-01-01T00:00:00Z","output_fields":{}}"#.into(),
        ),
    ];
    for (format, raw) in cases {
        let e = err(raw.as_bytes());
        assert_eq!(e.reason(), "time_out_of_range", "{format}: {e}");
        assert_eq!(e.format().map(Format::as_str), Some(format));
        assert!(
            e.to_string().contains("outside the years 1970 to 9999"),
            "{e}"
        );
    }
    let e = err(br#"[{"name":"A","time":"2026-11-28T10:00:00Z"},{"name":"B","time":"9999-12-31T23:59:59Z"},{"name":"C","time":"+10000-01-01T00:00:00Z"}]"#);
    assert!(e.to_string().contains("event 3 of the record"), "{e}");
    // The edges are in.
    for t in ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"] {
        let raw = format!(r#"{{"name":"X","time":"{t}"}}"#);
        assert!(parse(raw.as_bytes(), &Limits::default()).is_ok(), "{t}");
    }
}

/// An Alertmanager group of `alerts` alerts whose `externalURL` is `url_bytes` long.
fn long_url_group(alerts: usize, url_bytes: usize) -> Vec<u8> {
    let url = format!("http://am/{}", "x".repeat(url_bytes));
    let list: Vec<String> = (0..alerts)
        .map(|i| {
            format!(r#"{{"labels":{{"alertname":"A{i}"}},"startsAt":"2026-11-28T10:00:00Z"}}"#)
        })
        .collect();
    format!(
        r#"{{"version":"4","receiver":"d2c","externalURL":"{url}","alerts":[{}]}}"#,
        list.join(",")
    )
    .into_bytes()
}

#[test]
fn a_long_group_url_is_not_copied_into_every_alert() {
    let short = parse(&long_url_group(2, 40), &Limits::default()).unwrap().1;
    assert!(
        short
            .iter()
            .all(|e| e.attributes.contains_key("externalURL"))
    );
    // 350 KB of URL over 5,000 alerts was 1.75 GB of copies.
    let raw = long_url_group(5000, 350_000);
    let events = parse(&raw, &Limits::default()).unwrap().1;
    assert_eq!(events.len(), 5000);
    assert!(
        events
            .iter()
            .all(|e| !e.attributes.contains_key("externalURL"))
    );
    assert!(
        events
            .iter()
            .all(|e| e.attributes["receiver"] == json!("d2c"))
    );
}

/// OTLP logs: one resource with `attrs` string attributes of `value_bytes` each, over
/// `records` log records.
fn big_resource_logs(attrs: usize, value_bytes: usize, records: usize) -> Vec<u8> {
    let mut resource: Vec<String> = vec![
        r#"{"key":"service.name","value":{"stringValue":"checkout"}}"#.into(),
        r#"{"key":"host.name","value":{"stringValue":"node-7"}}"#.into(),
    ];
    let value = "v".repeat(value_bytes);
    resource.extend(
        (0..attrs).map(|i| format!(r#"{{"key":"a{i:05}","value":{{"stringValue":"{value}"}}}}"#)),
    );
    let record = r#"{"timeUnixNano":"1795860000000000000","body":{"stringValue":"boom"}}"#;
    let records = vec![record; records].join(",");
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{}]}},"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#,
        resource.join(",")
    )
    .into_bytes()
}

#[test]
fn an_otlp_resource_is_copied_into_each_event_only_up_to_16_kib() {
    let events = parse(&big_resource_logs(40, 1000, 3), &Limits::default())
        .unwrap()
        .1;
    assert_eq!(events.len(), 3);
    for e in &events {
        let resource = e.attributes["resource"].as_object().unwrap();
        assert_eq!(resource["service.name"], json!("checkout"), "{resource:?}");
        let omitted = resource["d2c.omitted_attributes"].as_u64().unwrap();
        assert!((20..40).contains(&omitted), "{omitted}");
        assert_eq!(
            e.labels["service"], "checkout",
            "labels come from the whole resource"
        );
        assert_eq!(e.ci.as_deref(), Some("node-7"));
    }
    // 300 KB of resource over 5,000 records: refused while it is read, not after.
    let raw = big_resource_logs(300, 1000, 5000);
    let e = err(&raw);
    assert_eq!(e.reason(), "expansion_limit", "{e}");
    assert_eq!(e.format(), Some(Format::Otel));
}

#[test]
fn deeply_named_ecs_fields_cost_no_names_unless_read_and_are_bounded_when_read() {
    let leaves: Vec<String> = (0..20_000).map(|i| format!(r#""k{i}":1"#)).collect();
    let leaves = leaves.join(",");
    let long = "x".repeat(100_000);
    let doc = |parent: &str| {
        format!(
            r#"{{"@timestamp":"2026-11-28T10:00:00Z","event.kind":"alert","rule.name":"X",
                "{parent}":{{"{long}":{{{leaves}}}}}}}"#
        )
    };
    // Under a field d2c neither reads nor keeps: skipped, the alert is read.
    let e = parse(doc("custom").as_bytes(), &Limits::default())
        .unwrap()
        .1;
    assert_eq!(e[0].name, "X");
    assert!(!e[0].attributes.keys().any(|k| k.starts_with("custom")));
    // Under a kept prefix, every leaf's name would repeat the long key: refused.
    let e = err(doc("threat").as_bytes());
    assert_eq!(e.reason(), "expansion_limit", "{e}");
}

#[test]
fn the_expansion_budget_is_the_configured_multiple_of_the_record() {
    let raw = long_url_group(50, 100);
    let events = parse(&raw, &Limits::default()).unwrap().1;
    let cost: usize = events.iter().map(sink::event_cost).sum();
    let ratio = cost / raw.len();
    assert!((2..20).contains(&ratio), "{ratio}");
    let tight = Limits {
        max_expansion: ratio,
        ..Limits::default()
    };
    // A record this small gets the 64 KiB every record may use: the multiple does not bite.
    assert!(raw.len() * ratio < 64 << 10);
    assert!(parse(&raw, &tight).is_ok());
    let big = long_url_group(3000, 100);
    assert!(parse(&big, &Limits::default()).is_ok());
    let e = parse(&big, &tight).unwrap_err();
    assert_eq!(e.reason(), "expansion_limit");
    assert!(e.to_string().contains("ingest.max_expansion"), "{e}");
}

#[test]
fn counting_checks_what_parsing_checks() {
    let cases = [
        long_url_group(50, 10),
        big_resource_logs(300, 1000, 5000),
        br#"{"name":"X","time":"+262142-01-01T00:00:00Z"}"#.to_vec(),
        br#"[{"name":"X","time":"2026-11-28T10:00:00Z"},{"name":"Y"}]"#.to_vec(),
    ];
    for raw in cases {
        let format = parse(&raw, &Limits::default())
            .map_or_else(|e| e.format().unwrap_or(Format::Native), |(f, _)| f);
        let parsed = parse_as(format, &raw, &Limits::default());
        let counted = count_as(format, &raw, &Limits::default());
        match (parsed, counted) {
            (Ok(events), Ok(n)) => assert_eq!(events.len(), n),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("parse_as {a:?} but count_as {b:?}"),
        }
    }
}

#[test]
fn events_far_ahead_of_the_callers_clock_are_refused() {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
    let limits = Limits {
        now: Some(now),
        ..Limits::default()
    };
    let native = |t: &str| format!(r#"{{"name":"X","time":"{t}"}}"#).into_bytes();
    assert!(
        parse(&native("2026-11-28T10:59:59Z"), &limits).is_ok(),
        "within the hour"
    );
    assert!(
        parse(&native("2020-01-01T00:00:00Z"), &limits).is_ok(),
        "behind is fine"
    );
    let e = parse(&native("2036-11-28T10:00:00Z"), &limits).unwrap_err();
    assert_eq!(e.reason(), "clock_ahead");
    assert!(
        e.to_string().contains(
            "more than ingest.max_ahead (1h) ahead of d2c's clock (2026-11-28T10:00:00Z)"
        ),
        "{e}"
    );
    assert_eq!(
        count_as(Format::Native, &native("2036-11-28T10:00:00Z"), &limits)
            .unwrap_err()
            .reason(),
        "clock_ahead"
    );
    // Without a clock (replay), or with the check off, nothing is checked.
    assert!(parse(&native("2036-11-28T10:00:00Z"), &Limits::default()).is_ok());
    let off = Limits {
        max_ahead: std::time::Duration::ZERO,
        ..limits
    };
    assert!(parse(&native("2036-11-28T10:00:00Z"), &off).is_ok());
}
