//! Offline replay: the same ingest and engine as the Kafka pipeline, over a file with one raw
//! payload per line; every output record is written as one line of JSON, exactly as it is
//! published on Kafka, plus `{"type":"dlq",…}` lines for input that could not be parsed.
//!
//! A line `{"tick":"<RFC 3339 time>"}` moves the clock as the pipeline's ticks do (see
//! `ingest.tick_interval`): timers due by then run (resolve holds, closing, flapping, resolve
//! timeouts). Without ticks, time moves only with event times. A line
//! `{"ack":{"incident":"INC-…","by":"alice","time":"<RFC 3339>"}}` acknowledges an incident,
//! as `POST /api/v1/incidents/{id}/ack` does, `{"silence":{…}}` adds a silence, as
//! `POST /api/v1/silences` does, and
//! `{"decision":{"change":"RFC-…","decision":"approved","by":"cab","time":"<RFC 3339>"}}`
//! (optional `comment`) records a decision on an RFC, as `POST /api/v1/changes/{id}/decision`
//! does. `{"problem":{"action":"known_error","problem":"PRB-…","workaround":"…","by":"…",
//! "time":"…"}}` (or `"action":"open"` / `"resolve"`) acts on a problem, as the problem
//! endpoints do, and `{"run":{"change":"RFC-…","outcome":"implemented","time":"…"}}` reports on
//! an RFC's run, as the automation stage does.

use std::io::{BufRead, Write};

use crate::engine::Settings;
use crate::ingest;
use crate::model::Output;
use crate::pipeline::EventsRecord;

/// What a replay read and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub lines: u64,
    pub events: u64,
    pub dlq: u64,
    pub incidents: u64,
    pub changes: u64,
    pub problems: u64,
}

/// Replays `input` through ingest and one engine, writing outputs to `out`. Blank lines are
/// skipped. Fails only on I/O errors; bad input becomes dlq lines.
pub fn run(
    settings: &Settings,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<ReplayStats> {
    let limits = settings.config.ingest.limits();
    let mut engine = settings.engine();
    let mut stats = ReplayStats::default();
    let mut line = Vec::new();
    let mut input = input;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let raw = trim_line_end(&line);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        let outputs = match control_line(raw) {
            Some(record) => record
                .inputs()
                .into_iter()
                .flat_map(|input| {
                    let applied = engine.apply(input);
                    if let Some(reason) = &applied.refused {
                        tracing::warn!(reason, "control line refused");
                    }
                    applied.outputs
                })
                .collect(),
            None => match ingest::parse(raw, &limits) {
                Ok((_, events)) => {
                    let mut outputs = Vec::new();
                    for ev in &events {
                        stats.events += 1;
                        outputs.extend(engine.apply(ev).outputs);
                    }
                    outputs
                }
                Err(e) => vec![Output::Dlq(e.to_dlq_record(raw))],
            },
        };
        for o in outputs {
            match &o {
                Output::Incident(_) => stats.incidents += 1,
                Output::Change(_) => stats.changes += 1,
                Output::Problem(_) => stats.problems += 1,
                Output::Dlq(_) => stats.dlq += 1,
            }
            out.write_all(o.to_json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(stats)
}

/// The control record of a control line (`{"tick":…}`, `{"ack":…}`, `{"decision":…}`,
/// `{"silence":…}`, `{"problem":…}`, `{"run":…}`), if `raw` is one; the same records the HTTP control endpoints write to the
/// events topic.
fn control_line(raw: &[u8]) -> Option<EventsRecord> {
    if let Some(now) =
        control::<String>(raw, "tick").and_then(|t| crate::model::parse_rfc3339(&t).ok())
    {
        return Some(EventsRecord::Tick(now));
    }
    if let Some(a) = control(raw, "ack") {
        return Some(EventsRecord::Ack(a));
    }
    if let Some(d) = control(raw, "decision") {
        return Some(EventsRecord::Decision(d));
    }
    if let Some(p) = control(raw, "problem") {
        return Some(EventsRecord::Problem(p));
    }
    if let Some(r) = control(raw, "run") {
        return Some(EventsRecord::Run(r));
    }
    control(raw, "silence").map(EventsRecord::Silence)
}

/// The value of a control line `{"<key>": …}`, if `raw` is one.
fn control<T: serde::de::DeserializeOwned>(raw: &[u8], key: &str) -> Option<T> {
    let rest = raw.strip_prefix(b"{\"")?.strip_prefix(key.as_bytes())?;
    if !rest.starts_with(b"\"") {
        return None;
    }
    let mut line: std::collections::BTreeMap<String, T> = serde_json::from_slice(raw).ok()?;
    if line.len() != 1 {
        return None;
    }
    line.remove(key)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}
