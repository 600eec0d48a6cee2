//! Tests of the first JSON pass: lenient types, the caps on arrays, the marks and counts for
//! the formats read twice, and the JSON it refuses.

use super::*;

fn read_ok(text: &str) -> Top {
    read(text, 3).unwrap()
}

#[test]
fn keeps_wrongly_typed_fields_with_their_type() {
    let Top::Object(e) = read_ok(r#"{"name":5,"time":null,"ci":[1],"labels":"x","alerts":{}}"#)
    else {
        panic!("expected an object")
    };
    assert_eq!(e.name, Some(Text::Number("5".into())));
    assert_eq!(e.time, None, "null reads as absent");
    assert_eq!(e.ci, Some(Text::Other(Found::Array)));
    assert!(matches!(e.labels, Some(Object(Err(Found::String)))));
    assert!(matches!(e.alerts, Some(Err(Found::Object))));
}

#[test]
fn arrays_keep_at_most_the_cap_and_count_the_rest() {
    let Top::Array(items) = read_ok(r#"[{},{},1,{},{"name":"x"},[]]"#) else {
        panic!("expected an array")
    };
    assert_eq!(items.total, 6);
    assert_eq!(items.items.len(), 3);
    assert!(matches!(items.items[2], Object(Err(Found::Number))));
}

#[test]
fn alerts_inside_batch_elements_are_counted_not_kept() {
    let Top::Array(items) = read_ok(r#"[{"alerts":[{},{}]}]"#) else {
        panic!("expected an array")
    };
    let Object(Ok(e)) = &items.items[0] else {
        panic!("expected an object")
    };
    let Some(Ok(alerts)) = &e.alerts else {
        panic!("expected alerts")
    };
    assert_eq!((alerts.items.len(), alerts.total), (0, 2));
}

#[test]
fn other_formats_keys_are_marked_and_log_records_counted_not_kept() {
    let Top::Object(e) = read_ok(
        r#"{"specversion":"1.0","event_action":{"x":1},"@timestamp":null,"trigger_id":5,
                "resourceLogs":[{"scopeLogs":[{"logRecords":[{},{},1]},{"logRecords":"x"}]},
                                {"scopeLogs":[{"logRecords":[{}]}],"logRecords":[{}]},7]}"#,
    ) else {
        panic!("expected an object")
    };
    let m = e.marks;
    assert!(m.specversion && m.pagerduty && m.timestamp && m.zabbix);
    assert_eq!(
        e.log_records,
        Some(4),
        "only resourceLogs[].scopeLogs[].logRecords[]"
    );
    let Top::Object(e) = read_ok(r#"{"name":"x","orgId":1}"#) else {
        panic!("expected an object")
    };
    let m = e.marks;
    assert!(!(m.specversion || m.pagerduty || m.timestamp || m.zabbix));
    assert_eq!(
        (e.log_records, e.org_id),
        (None, Some(Text::Number("1".into())))
    );
    assert!(read(r#"{"resourceLogs":[],"resourceLogs":[]}"#, 3).is_err());
}

#[test]
fn duplicate_keys_and_trailing_text_are_json_errors() {
    assert!(read(r#"{"name":"a","name":"b"}"#, 3).is_err());
    assert!(read(r#"{"alerts":[],"alerts":[]}"#, 3).is_err());
    assert!(read(r#"{"a":1} {"b":2}"#, 3).is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert!(read(&deep, 3).is_err());
    let deep = format!("{{\"attributes\":{}", "{\"a\":".repeat(100_000));
    assert!(read(&deep, 3).is_err());
}
