//! Offline replay: the same ingest and engine as the Kafka pipeline, over a file with one raw
//! payload per line; every output record is written as one line of JSON, exactly as it is
//! published on Kafka, plus `{"type":"dlq",…}` lines for input that could not be parsed.
//!
//! A line `{"tick":"<RFC 3339 time>"}` moves the clock as the pipeline's ticks do (see
//! `ingest.tick_interval`): timers due by then run (resolve holds, closing, flapping, resolve
//! timeouts). Without ticks, time moves only with event times. A line
//! `{"ack":{"incident":"INC-…","by":"alice","time":"<RFC 3339>"}}` acknowledges an incident,
//! as `POST /api/v1/incidents/{id}/ack` does, and `{"silence":{…}}` adds a silence, as
//! `POST /api/v1/silences` does.

use std::io::{BufRead, Write};

use crate::ingest::{self, Limits};
use crate::model::Output;
use crate::settings::Settings;

/// What a replay read and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub lines: u64,
    pub events: u64,
    pub dlq: u64,
    pub incidents: u64,
    pub changes: u64,
}

/// Replays `input` through ingest and one engine, writing outputs to `out`. Blank lines are
/// skipped. Fails only on I/O errors; bad input becomes dlq lines.
pub fn run(
    settings: &Settings,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<ReplayStats> {
    let limits = Limits {
        max_record_bytes: settings.config.ingest.max_record_bytes,
        max_events_per_record: settings.config.ingest.max_events_per_record,
    };
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
        let outputs = if let Some(now) = tick(raw) {
            engine.tick(now)
        } else if let Some(ack) = ack(raw) {
            engine.acknowledge(&ack.incident, &ack.by, ack.time)
        } else if let Some(silence) = silence(raw) {
            if let Err(e) = engine.add_silence(silence) {
                tracing::warn!(error = %e, "silence line refused");
            }
            Vec::new()
        } else {
            match ingest::parse(raw, &limits) {
                Ok((_, events)) => {
                    let mut outputs = Vec::new();
                    for ev in &events {
                        stats.events += 1;
                        outputs.extend(engine.apply(ev).outputs);
                    }
                    outputs
                }
                Err(e) => vec![Output::Dlq(e.to_dlq_record(raw))],
            }
        };
        for o in outputs {
            match &o {
                Output::Incident(_) => stats.incidents += 1,
                Output::Change(_) => stats.changes += 1,
                Output::Dlq(_) => stats.dlq += 1,
            }
            out.write_all(o.to_json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(stats)
}

/// The time of a tick line, `{"tick":"2026-11-28T10:30:00Z"}`.
fn tick(raw: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tick {
        #[serde(deserialize_with = "crate::model::deserialize_time")]
        tick: chrono::DateTime<chrono::Utc>,
    }
    if !raw.starts_with(b"{\"tick\"") {
        return None;
    }
    serde_json::from_slice::<Tick>(raw).ok().map(|t| t.tick)
}

/// The silence of a silence line, `{"silence":{…}}` (the body of `POST /api/v1/silences`).
fn silence(raw: &[u8]) -> Option<crate::suppress::Silence> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        silence: crate::suppress::Silence,
    }
    if !raw.starts_with(b"{\"silence\"") {
        return None;
    }
    serde_json::from_slice::<Line>(raw).ok().map(|l| l.silence)
}

/// The acknowledgement of an ack line.
fn ack(raw: &[u8]) -> Option<crate::pipeline::Ack> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        ack: crate::pipeline::Ack,
    }
    if !raw.starts_with(b"{\"ack\"") {
        return None;
    }
    serde_json::from_slice::<Line>(raw).ok().map(|l| l.ack)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}
