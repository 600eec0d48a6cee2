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
//! an RFC's run, as the automation stage does. A line `{"events":[{"origin":{…},"event":{…}},…]}`
//! applies normalised events as one record of the events topic does (what `d2c dump-events`
//! writes), origins and all.
//!
//! An input the engine refuses (a time outside 1970 to 9999 or beyond
//! `correlation.max_behind`, a silence past the cap) is a dlq line with the engine's reason, as
//! the correlate stage writes it to the DLQ. Replay has no wall clock, so it does not check
//! `ingest.max_ahead`. A panic while applying an input
//! (a bug) is caught: the input is a dlq line with reason `internal_error`, and the engine is
//! rebuilt as the correlate stage rebuilds it from its checkpoint: from a snapshot (a copy taken
//! every 10,000 lines or more, see [`Replayer`]) and the lines since, without that input.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use crate::engine::{Engine, Settings};
use crate::ingest::{self, Limits};
use crate::model::{DlqRecord, Output};
use crate::pipeline::EventsRecord;

/// Fewest lines between two snapshots of the engine (see [`Replayer`]); more when the state is
/// larger, so copying it costs at most about one state item per line.
const SNAPSHOT_LINES: usize = 10_000;

/// Most input bytes kept since the last snapshot; past it a new snapshot is taken.
const SNAPSHOT_BYTES: usize = 64 << 20;

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
/// skipped. Fails only on I/O errors; bad input becomes dlq lines (an input the engine refuses,
/// with the engine's reason; one that made it panic, a bug, with `internal_error`).
pub fn run(
    settings: &Settings,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<ReplayStats> {
    let mut replayer = Replayer::new(settings);
    let mut stats = ReplayStats::default();
    let max = settings.config.kafka.max_output_bytes();
    each_line(input, |raw| {
        stats.lines += 1;
        let outputs = replayer.line(raw, &mut stats.events);
        write_outputs(outputs, max, &mut stats, &mut out)
    })?;
    out.flush()?;
    Ok(stats)
}

/// Calls `f` with every line of `input` that is not blank, without its line end.
fn each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let raw = trim_line_end(&line);
        if !raw.iter().all(u8::is_ascii_whitespace) {
            f(raw)?;
        }
    }
}

/// Writes `outputs` as JSON lines, each cut to `max` bytes as the pipeline cuts its records
/// (see `Output::to_json_within`).
fn write_outputs(
    outputs: Vec<Output>,
    max: usize,
    stats: &mut ReplayStats,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for o in outputs {
        match &o {
            Output::Incident(_) => stats.incidents += 1,
            Output::Change(_) => stats.changes += 1,
            Output::Problem(_) => stats.problems += 1,
            Output::Dlq(_) => stats.dlq += 1,
        }
        out.write_all(o.to_json_within(max).as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Replays `input` as a pipeline with `partitions` events partitions correlates it, one engine
/// per partition: each event goes to the engine of its correlation domain's partition
/// ([`crate::correlate::route::domain`], as the ingest stage routes it); ticks,
/// acknowledgements, decisions, silences, run reports and problem actions on an existing
/// problem go to every engine, as the control API writes them to every partition (an engine
/// that does not know the incident, RFC or problem ignores them); a problem opened by hand goes
/// to its service's partition. The outputs of a line are written partition by partition, so
/// their order differs from [`run`]'s where a line reaches several engines (a tick). With
/// `partitions` 1 this is [`run`].
pub fn run_partitioned(
    settings: &Settings,
    partitions: i32,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<ReplayStats> {
    if partitions <= 1 {
        return run(settings, input, out);
    }
    let mut engines: Vec<Replayer> = (0..partitions).map(|_| Replayer::new(settings)).collect();
    let limits = settings.config.ingest.limits();
    let max = settings.config.kafka.max_output_bytes();
    let topology = &settings.topology;
    let correlation = &settings.config.correlation;
    let mut stats = ReplayStats::default();
    each_line(input, |raw| {
        stats.lines += 1;
        let events = match control_line(raw) {
            Some(EventsRecord::Events(list)) => list,
            Some(EventsRecord::Problem(crate::model::ProblemAction::Open { service, .. })) => {
                let p = topology
                    .service_domain(&service)
                    .map_or(0, |d| crate::pipeline::partition_of(d, partitions));
                let outputs = engines[p as usize].line(raw, &mut stats.events);
                return write_outputs(outputs, max, &mut stats, &mut out);
            }
            Some(_) => {
                for engine in &mut engines {
                    let outputs = engine.line(raw, &mut stats.events);
                    write_outputs(outputs, max, &mut stats, &mut out)?;
                }
                return Ok(());
            }
            None => match ingest::parse(raw, &limits) {
                Ok((_, events)) => events.into_iter().map(|e| (e, None)).collect(),
                Err(e) => {
                    let dlq = vec![Output::Dlq(e.to_dlq_record(raw))];
                    return write_outputs(dlq, max, &mut stats, &mut out);
                }
            },
        };
        let mut by: std::collections::BTreeMap<i32, Vec<crate::pipeline::RoutedEvent>> =
            Default::default();
        for (event, origin) in events {
            let domain = crate::correlate::route::domain(topology, correlation, &event);
            let p = crate::pipeline::partition_of(&domain, partitions);
            by.entry(p)
                .or_default()
                .push(crate::pipeline::RoutedEvent { origin, event });
        }
        for (p, list) in by {
            let record = serde_json::to_vec(&serde_json::json!({ "events": list }))
                .expect("events always serialise");
            let outputs = engines[p as usize].line(&record, &mut stats.events);
            write_outputs(outputs, max, &mut stats, &mut out)?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(stats)
}

/// The engine of a replay, and what it takes to rebuild it after a caught panic the way the
/// correlate stage does from its checkpoint: a snapshot (a copy of the engine) and the lines
/// applied since. The rebuilt engine has applied every input but the one that panicked; outputs
/// already written are not written again.
struct Replayer {
    limits: Limits,
    engine: Engine,
    snapshot: Engine,
    /// Lines applied since the snapshot, by line number.
    since: Vec<(u64, Vec<u8>)>,
    since_bytes: usize,
    /// Inputs that panicked, as (line number, index of the input in its line): skipped.
    poisoned: BTreeSet<(u64, usize)>,
    next_line: u64,
}

impl Replayer {
    fn new(settings: &Settings) -> Replayer {
        let engine = settings.engine();
        Replayer {
            limits: settings.config.ingest.limits(),
            snapshot: engine.clone(),
            engine,
            since: Vec::new(),
            since_bytes: 0,
            poisoned: BTreeSet::new(),
            next_line: 0,
        }
    }

    /// Applies one line; returns its outputs. Counts its events into `events`.
    fn line(&mut self, raw: &[u8], events: &mut u64) -> Vec<Output> {
        let state = self.engine.state();
        let size = state.correlation.alerts.len()
            + state.correlation.groups.len()
            + state.security.incidents.len();
        if self.since.len() >= SNAPSHOT_LINES.max(size) || self.since_bytes >= SNAPSHOT_BYTES {
            self.snapshot = self.engine.clone();
            self.since.clear();
            self.since_bytes = 0;
        }
        let n = self.next_line;
        self.next_line += 1;
        self.since.push((n, raw.to_vec()));
        self.since_bytes += raw.len();
        let mut outputs = Vec::new();
        let record = match self.record(raw) {
            Ok(record) => record,
            Err(dlq) => return vec![Output::Dlq(dlq)],
        };
        if let EventsRecord::Events(list) = &record {
            *events += list.len() as u64;
        }
        let inputs = record.inputs();
        for (i, input) in inputs.iter().enumerate() {
            match self.engine.try_apply(input.clone()) {
                Ok(applied) => outputs.extend(applied.outputs),
                Err(panicked) => {
                    tracing::error!(line = n + 1, input = i, error = %panicked.message, "the engine failed on an input (a bug); it goes to the DLQ and the engine is rebuilt without it");
                    outputs.push(Output::Dlq(panicked.dlq));
                    self.poisoned.insert((n, i));
                    self.rebuild(&inputs[..i], n);
                }
            }
        }
        outputs
    }

    /// The record of a line: a control line, or the events ingest parses from it (a DLQ output
    /// when it cannot).
    fn record(&self, raw: &[u8]) -> Result<EventsRecord, DlqRecord> {
        if let Some(record) = control_line(raw) {
            return Ok(record);
        }
        match ingest::parse(raw, &self.limits) {
            Ok((_, events)) => Ok(EventsRecord::Events(
                events.into_iter().map(|e| (e, None)).collect(),
            )),
            Err(e) => Err(e.to_dlq_record(raw)),
        }
    }

    /// Rebuilds the engine from the snapshot: the lines since it but the current one (line
    /// `current`), then `before`, the current line's inputs before the one that panicked;
    /// outputs are dropped (written already). An input that panics again is poisoned too, and
    /// the rebuild starts over.
    fn rebuild(&mut self, before: &[crate::engine::Input<'_>], current: u64) {
        'again: loop {
            self.engine = self.snapshot.clone();
            let lines: Vec<(u64, Vec<u8>)> = self
                .since
                .iter()
                .filter(|(n, _)| *n != current)
                .cloned()
                .collect();
            for (n, raw) in &lines {
                let Ok(record) = self.record(raw) else {
                    continue;
                };
                if !self.reapply(&record.inputs(), *n) {
                    continue 'again;
                }
            }
            if self.reapply(before, current) {
                return;
            }
        }
    }

    /// Applies `inputs` of line `n` but the poisoned ones, dropping their outputs; false (and
    /// the input poisoned) when one panics.
    fn reapply(&mut self, inputs: &[crate::engine::Input<'_>], n: u64) -> bool {
        for (i, input) in inputs.iter().enumerate() {
            if self.poisoned.contains(&(n, i)) {
                continue;
            }
            if let Err(panicked) = self.engine.try_apply(input.clone()) {
                tracing::error!(line = n + 1, input = i, error = %panicked.message, "the engine failed again while being rebuilt; that input is skipped too");
                self.poisoned.insert((n, i));
                return false;
            }
        }
        true
    }
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
    if let Some(events) = control::<Vec<LineEvent>>(raw, "events") {
        return Some(EventsRecord::Events(
            events.into_iter().map(|e| (e.event, e.origin)).collect(),
        ));
    }
    control(raw, "silence").map(EventsRecord::Silence)
}

/// One event of an `{"events":[…]}` line.
#[derive(serde::Deserialize)]
struct LineEvent {
    #[serde(default)]
    origin: Option<crate::engine::Origin>,
    event: crate::model::Event,
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
