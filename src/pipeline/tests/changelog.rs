//! Incremental checkpoints (`checkpoint`): an engine run over the scenario inputs, checkpointed
//! as the correlate stage does (a full checkpoint, then deltas of what changed, a full one
//! again every few), rebuilds from its state topic to exactly the state it had, and carries on
//! with exactly its outputs. A torn or missing delta stops the restore at the watermark before
//! it; a full-only partition (as every d2c before deltas wrote it) restores as before.

use std::collections::BTreeMap;

use chrono::DateTime;

use crate::engine::{Engine, EngineState, Input, Settings};
use crate::model::{Event, ProblemAction};
use crate::pipeline::checkpoint::{self, Chunk, Restored, Taken};
use crate::pipeline::kafka::OutRecord;

const EVENTS: &str = "d2c.events";
const STATE: &str = "d2c.state";
/// Small, so documents span several chunks.
const CHUNK: usize = 2048;

/// One line of a scenario as the engine's inputs.
enum Line {
    Events(Vec<Event>),
    Tick(DateTime<chrono::Utc>),
    Problem(ProblemAction),
}

fn scenario(name: &str) -> Vec<Line> {
    let path = format!(
        "{}/tests/scenarios/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let limits = crate::config::Config::default().ingest.limits();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if let Some(t) = v.get("tick").and_then(|t| t.as_str()) {
                return crate::model::parse_rfc3339(t).ok().map(Line::Tick);
            }
            if let Some(p) = v.get("problem") {
                return serde_json::from_value(p.clone()).ok().map(Line::Problem);
            }
            crate::ingest::parse(l.as_bytes(), &limits)
                .ok()
                .map(|(_, evs)| Line::Events(evs))
        })
        .collect()
}

fn apply(e: &mut Engine, line: &Line) -> Vec<String> {
    let applied: Vec<_> = match line {
        Line::Events(evs) => evs
            .iter()
            .map(|ev| e.apply(Input::Event(ev, None)))
            .collect(),
        Line::Tick(t) => vec![e.apply(Input::Tick(*t))],
        Line::Problem(p) => vec![e.apply(Input::Problem(p))],
    };
    applied
        .into_iter()
        .flat_map(|a| a.outputs)
        .map(|o| o.to_json())
        .collect()
}

/// The chunks a consumer of the state topic reads back from `records`, at offsets from 0.
fn chunks(records: &[OutRecord]) -> Vec<Chunk> {
    let header = |r: &OutRecord, k: &str| {
        r.headers
            .iter()
            .find(|h| h.0 == k)
            .map(|h| String::from_utf8(h.1.clone()).unwrap())
    };
    records
        .iter()
        .enumerate()
        .map(|(offset, r)| {
            let chunk = header(r, "d2c.chunk").unwrap();
            let (i, n) = chunk.split_once('/').unwrap();
            Chunk {
                offset: offset as i64,
                watermark: header(r, "d2c.watermark").unwrap().parse().unwrap(),
                base: header(r, "d2c.base").map(|b| b.parse().unwrap()),
                index: i.parse().unwrap(),
                count: n.parse().unwrap(),
                payload: r.payload.clone(),
            }
        })
        .collect()
}

fn restore(records: &[OutRecord]) -> Restored {
    checkpoint::assemble(&chunks(records), STATE, EVENTS, 0)
        .unwrap()
        .expect("a full checkpoint")
}

/// A live engine checkpointed as the stage does: every `k` lines, a delta, and a full
/// checkpoint first and after every `full_every` deltas. Returns the state topic's records
/// (each checkpoint's records as one element), the state at each checkpoint's watermark, and
/// the engine.
struct Run {
    engine: Engine,
    /// The outputs of each line.
    outputs: Vec<Vec<String>>,
    checkpoints: Vec<Vec<OutRecord>>,
    states: BTreeMap<i64, EngineState>,
    deltas: usize,
    /// Deltas since the last full checkpoint.
    since_full: u32,
}

fn run(settings: &Settings, lines: &[Line], k: usize, full_every: u32) -> Run {
    let mut r = Run {
        engine: settings.engine(),
        outputs: Vec::new(),
        checkpoints: Vec::new(),
        states: BTreeMap::new(),
        deltas: 0,
        since_full: 0,
    };
    let (mut base, mut since_full) = (None, 0);
    for (n, line) in lines.iter().enumerate() {
        r.outputs.push(apply(&mut r.engine, line));
        let watermark = n as i64 + 1;
        if !(watermark as usize).is_multiple_of(k) {
            continue;
        }
        let taken = match base {
            Some(b) if since_full < full_every => {
                since_full += 1;
                Taken::Delta {
                    delta: Box::new(r.engine.take_delta()),
                    base: b,
                    slot: since_full,
                }
            }
            _ => Taken::Copy(Box::new(r.engine.take_full(true))),
        };
        if matches!(taken, Taken::Copy(_)) {
            since_full = 0;
        } else {
            r.deltas += 1;
        }
        r.checkpoints.push(checkpoint::records_of(
            taken,
            (EVENTS, 0, watermark),
            STATE,
            CHUNK,
        ));
        r.states
            .insert(watermark, r.engine.checkpoint_state().clone());
        base = Some(watermark);
    }
    r.since_full = since_full;
    r
}

const SCENARIOS: [&str; 7] = [
    "outage",
    "flapping",
    "recurring",
    "symptom-first",
    "withdraw",
    "attack",
    "learned",
];

#[test]
fn full_and_deltas_restore_the_live_state_and_the_same_outputs_follow() {
    let settings = Settings::embedded().unwrap();
    for name in SCENARIOS {
        let lines = scenario(name);
        let half = lines.len() / 2;
        for (k, full_every) in [(1, 5), (1, 1000), (2, 3), (3, 60), (7, 2)] {
            let mut live = run(&settings, &lines[..half], k, full_every);
            let records: Vec<OutRecord> = live.checkpoints.concat();
            let Some((&watermark, state)) = live.states.last_key_value() else {
                continue;
            };
            let restored = restore(&records);
            let what = format!("{name}, a checkpoint every {k} lines, full every {full_every}");
            assert_eq!(restored.checkpoint.watermark, watermark, "{what}");
            assert_eq!(&restored.checkpoint.state, state, "{what}");
            assert_eq!(restored.read.deltas, live.since_full as usize, "{what}");
            // The same outputs from the watermark on, from the restored engine and from the
            // live one (which applied the lines up to `half` already).
            let mut back = settings.engine_with_state(restored.checkpoint.state);
            let mut from_live = live.outputs[watermark as usize..].concat();
            for l in &lines[half..] {
                from_live.extend(apply(&mut live.engine, l));
            }
            let from_back: Vec<String> = lines[watermark as usize..]
                .iter()
                .flat_map(|l| apply(&mut back, l))
                .collect();
            let first_diff = from_back.iter().zip(&from_live).position(|(a, b)| a != b);
            assert!(
                from_back.len() == from_live.len() && first_diff.is_none(),
                "{what}: {} outputs restored, {} live, first difference at {first_diff:?}",
                from_back.len(),
                from_live.len()
            );
            assert!(
                back.checkpoint_state() == live.engine.checkpoint_state(),
                "{what}"
            );
        }
    }
}

fn event(ci: &str, secs: i64) -> Event {
    use crate::model::{Severity, Status};
    let time = DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap();
    Event {
        id: format!("{ci}-{secs}"),
        source: "test".into(),
        time,
        ci: Some(ci.into()),
        name: "DiskFull".into(),
        severity: Severity::Major,
        status: Status::Firing,
        category: Default::default(),
        fingerprint: format!("DiskFull/{ci}"),
        labels: Default::default(),
        attributes: Default::default(),
    }
}

#[test]
fn a_delta_is_what_changed_not_the_state() {
    let settings = Settings::embedded().unwrap();
    let mut e = settings.engine();
    let hosts = 2000;
    for i in 0..hosts {
        e.apply(Input::Event(&event(&format!("host-{i}"), i), None));
    }
    let full = serde_json::to_vec(&e.take_full(true)).unwrap().len();
    // A repeat and a new alert change two alerts and their incidents, not the other 1999.
    e.apply(Input::Event(&event("host-7", hosts), None));
    e.apply(Input::Event(&event("host-new", hosts + 1), None));
    let delta = e.take_delta();
    assert_eq!(delta.alerts.set.len(), 2);
    let bytes = serde_json::to_vec(&delta).unwrap().len();
    assert!(
        bytes * 50 < full,
        "a delta of two alerts ({bytes} B) is a fair share of the whole state ({full} B)"
    );
    // Nothing changed since: the next delta holds no map changes.
    let empty = e.take_delta();
    assert!(empty.alerts.is_empty() && empty.groups.is_empty() && empty.published.is_empty());
}

#[test]
fn a_torn_or_missing_delta_stops_the_restore_at_the_watermark_before_it() {
    let settings = Settings::embedded().unwrap();
    for name in ["symptom-first", "flapping", "recurring"] {
        let lines = scenario(name);
        let r = run(&settings, &lines, 2, 1000);
        assert!(r.deltas > 4, "{name}");
        let watermarks: Vec<i64> = r.states.keys().copied().collect();
        let cut = r.checkpoints.len() / 2;
        let before = watermarks[cut - 1];
        // Torn: the writer died after the first chunk of the delta (the later ones are whole).
        let mut torn = r.checkpoints.clone();
        torn[cut].truncate(1);
        if r.checkpoints[cut].len() == 1 {
            torn[cut].clear();
        }
        let mut missing = r.checkpoints.clone();
        missing.remove(cut);
        for (how, cps) in [("torn", torn), ("missing", missing)] {
            let back = restore(&cps.concat());
            assert_eq!(back.checkpoint.watermark, before, "{name}: {how}");
            assert_eq!(&back.checkpoint.state, &r.states[&before], "{name}: {how}");
            assert_eq!(back.read.deltas, cut - 1, "{name}: {how}");
        }
        // A full checkpoint after the gap restores past it.
        let mut with_full = r.checkpoints.clone();
        with_full.remove(cut);
        let mut e = settings.engine();
        lines.iter().for_each(|l| {
            apply(&mut e, l);
        });
        let end = lines.len() as i64;
        with_full.push(checkpoint::records_of(
            Taken::Copy(Box::new(e.take_full(true))),
            (EVENTS, 0, end),
            STATE,
            CHUNK,
        ));
        let back = restore(&with_full.concat());
        assert_eq!(back.checkpoint.watermark, end);
        assert_eq!(&back.checkpoint.state, e.checkpoint_state());
        assert_eq!(back.read.deltas, 0);
    }
}

#[test]
fn a_full_only_partition_as_written_before_deltas_restores() {
    let settings = Settings::embedded().unwrap();
    let lines = scenario("symptom-first");
    let mut e = settings.engine();
    lines.iter().for_each(|l| {
        apply(&mut e, l);
    });
    let state = e.checkpoint_state().clone();
    // The tracked maps write themselves as the plain maps they were.
    let json = serde_json::to_value(&state).unwrap();
    let c = &state.correlation;
    for (field, plain) in [
        ("published", serde_json::to_value(&*state.published)),
        ("accounts", serde_json::to_value(&*state.accounts)),
        ("rfcs", serde_json::to_value(&*state.rfcs)),
    ] {
        assert_eq!(json[field], plain.unwrap(), "{field}");
    }
    let corr = &json["correlation"];
    assert_eq!(corr["groups"], serde_json::to_value(&*c.groups).unwrap());
    assert_eq!(corr["timers"], serde_json::to_value(&*c.timers).unwrap());
    assert_eq!(corr["open"], serde_json::to_value(&*c.open).unwrap());
    assert!(!c.groups.is_empty() && !c.timers.is_empty());
    // Two full checkpoints and a torn third, keys and headers as before (no `d2c.base`).
    let cp = |w| checkpoint::Checkpoint {
        format: checkpoint::FORMAT,
        topic: EVENTS.into(),
        partition: 0,
        watermark: w,
        state: state.clone(),
    };
    let mut records = checkpoint::records(cp(5), STATE, CHUNK);
    records.extend(checkpoint::records(cp(9), STATE, CHUNK));
    assert!(records.iter().all(|r| r.headers.len() == 2));
    assert_eq!(records[0].key, b"d2c.events/0/0");
    let torn = checkpoint::records(cp(12), STATE, CHUNK);
    records.push(torn[0].clone());
    let back = restore(&records);
    assert_eq!(back.checkpoint.watermark, 9);
    assert_eq!(back.checkpoint.state, state);
    assert_eq!(back.read.deltas, 0);
}

#[test]
fn delta_records_carry_their_base_and_slot() {
    let settings = Settings::embedded().unwrap();
    let lines = scenario("outage");
    let r = run(&settings, &lines, 3, 1000);
    let delta = &r.checkpoints[1];
    let base = r.states.keys().next().unwrap().to_string();
    assert!(delta[0].key.starts_with(b"d2c.events/0.d1/0"));
    assert!(delta.iter().all(|c| {
        c.headers
            .iter()
            .any(|h| h.0 == "d2c.base" && h.1 == base.as_bytes())
    }));
    assert!(r.checkpoints[2][0].key.starts_with(b"d2c.events/0.d2/"));
}

/// The records of a full checkpoint of partition `partition` at watermark 1 (after the first
/// line of the outage scenario), deltas at 2 and 3, and the first chunk of a delta at 4 (its
/// writer died), with chunks of `chunk` bytes; and the state at watermark 3.
pub(super) fn chain(partition: i32, chunk: usize) -> (Vec<OutRecord>, EngineState) {
    let settings = Settings::embedded().unwrap();
    let lines = scenario("outage");
    let mut e = settings.engine();
    let mut records = Vec::new();
    let mut state = EngineState::default();
    for (n, line) in lines[..4].iter().enumerate() {
        apply(&mut e, line);
        let w = n as i64 + 1;
        let taken = if n == 0 {
            Taken::Copy(Box::new(e.take_full(true)))
        } else {
            let delta = Box::new(e.take_delta());
            Taken::Delta {
                delta,
                base: w - 1,
                slot: n as u32,
            }
        };
        let mut recs = checkpoint::records_of(taken, (EVENTS, partition, w), STATE, chunk);
        if w == 4 {
            assert!(recs.len() > 1);
            recs.truncate(1);
        } else {
            state = e.checkpoint_state().clone();
        }
        records.extend(recs);
    }
    (records, state)
}

/// The chain rules of `Part::take` / `Part::written`, one at a time: a new owner writes a full
/// checkpoint first; deltas follow only on an acknowledged chain, at most `full_every` in a
/// row and while a restore reads at most 1.5 entries per entry of the state; a lost checkpoint makes the next
/// full; without `incremental` every checkpoint is full; on shutdown the engine itself goes.
#[test]
fn the_chain_rules_say_when_a_checkpoint_is_a_delta() {
    use crate::config::StateConfig;
    use crate::pipeline::restore::Part;

    let settings = Settings::embedded().unwrap();
    let st = StateConfig {
        incremental: true,
        full_every: 3,
        ..StateConfig::default()
    };
    let kind = |t: &Taken| match t {
        Taken::Delta { base, slot, .. } => format!("delta {base}/{slot}"),
        Taken::Copy(_) | Taken::Whole(_) => "full".to_string(),
        Taken::Engine(_) => "engine".to_string(),
    };
    // A delta or a full copy is begun by `take` and copied by `copy`, here at once.
    let take = |part: &mut Part, st: &StateConfig| match part.take(st, None, 0) {
        Some(t) => t,
        None => part.copy(std::time::Duration::MAX).unwrap().taken,
    };
    let mut part = Part::restored(settings.engine(), 10);
    // A new owner: full, whatever the setting says.
    assert_eq!(kind(&take(&mut part, &st)), "full");
    assert!(!part.written(true), "a full checkpoint is not a delta");
    part.checkpointed = 20;
    // Deltas on the acknowledged full one, numbered, each on the watermark reached.
    for slot in 1..=3 {
        assert_eq!(kind(&take(&mut part, &st)), format!("delta 20/{slot}"));
        assert!(part.written(true));
    }
    // `full_every` (3) deltas in a row: the next is full.
    assert_eq!(kind(&take(&mut part, &st)), "full");
    part.written(true);
    // A state that grows: each delta adds entries the state has, so deltas go on, however
    // large they are against the full checkpoint (which was of an empty state).
    let limits = crate::config::Config::default().ingest.limits();
    for slot in 0..3 {
        for i in 0..20 {
            let line = format!(
                r#"{{"version":"4","status":"firing","receiver":"d2c","alerts":[{{"status":"firing","labels":{{"alertname":"Down","instance":"host-{slot}-{i}","severity":"critical"}},"startsAt":"2026-11-28T10:00:0{slot}Z"}}]}}"#
            );
            let (_, events) = crate::ingest::parse(line.as_bytes(), &limits).unwrap();
            apply(&mut part.engine, &Line::Events(events));
        }
        assert_eq!(
            kind(&take(&mut part, &st)),
            format!("delta 20/{}", slot + 1)
        );
        assert!(part.pending_entries > 0, "the delta's entries are counted");
        part.written(true);
    }
    assert_eq!(kind(&take(&mut part, &st)), "full", "`full_every` again");
    part.written(true);
    let live = part.engine.entries();
    assert!(live > 0 && part.full_entries == live);
    // Deltas that write the same keys again: once a restore would read more than 1.5 entries
    // per entry of the state, the next is full.
    assert_eq!(kind(&take(&mut part, &st)), "delta 20/1");
    part.written(true);
    part.delta_entries = live / 2 + 1;
    assert_eq!(kind(&take(&mut part, &st)), "full");
    part.written(true);
    // A delta the broker did not acknowledge: its changes are gone, so the next is full.
    assert_eq!(kind(&take(&mut part, &st)), "delta 20/1");
    assert!(part.written(false));
    assert_eq!(kind(&take(&mut part, &st)), "full");
    part.written(true);
    // Without `incremental`: always full.
    let off = StateConfig {
        incremental: false,
        ..st.clone()
    };
    assert_eq!(kind(&take(&mut part, &off)), "full");
    part.written(true);
    assert_eq!(kind(&take(&mut part, &off)), "full");
    // On shutdown the engine itself, replaced by the one given.
    assert_eq!(
        kind(&part.take(&st, Some(settings.engine()), 0).unwrap()),
        "engine"
    );
}
