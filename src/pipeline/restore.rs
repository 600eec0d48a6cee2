//! Reading the correlate stage's checkpoints back when partitions are assigned: every partition
//! of an assignment at once, each with a restorer consumer of its own (a small pool, grown on
//! demand), so that taking over several partitions costs the slowest restore, not their sum.
//! Each partition's restore is the same read as one alone ([`checkpoint::restore`]): at most
//! one checkpoint per partition is held at a time, and the result does not depend on the order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use super::checkpoint::{self, RestoreError, Taken};
use super::kafka::{FETCH_WAIT_MAX_MS, OffRuntime, base_config};
use crate::config::{KafkaConfig, StateConfig};
use crate::engine::{Engine, Whole};

/// One owned input partition.
pub(super) struct Part {
    pub(super) engine: Engine,
    /// The next input offset to apply.
    pub(super) next: i64,
    /// The watermark of the last checkpoint written or restored.
    pub(super) checkpointed: i64,
    pub(super) last_checkpoint: Instant,
    /// Set after a seek back to `next`: records past it are skipped until it arrives.
    pub(super) seeking_since: Option<Instant>,
    /// A checkpoint being written in the background, and the watermark it covers.
    pub(super) pending: Option<(i64, tokio::task::JoinHandle<Result<usize, PipelineError>>)>,
    /// Whether `pending` is a delta.
    pub(super) pending_delta: bool,
    /// The next checkpoint must be full: the partition is new to this owner (its restored
    /// state is not a checkpoint of its own chain), or a delta was not acknowledged (the
    /// changes it took from the dirty sets are gone).
    pub(super) need_full: bool,
    /// Deltas acknowledged since the last full checkpoint.
    pub(super) deltas: u32,
    /// The entries a restore reads: the last full checkpoint's, the acknowledged deltas'
    /// since (values set and keys removed), and the pending checkpoint's.
    pub(super) full_entries: usize,
    pub(super) delta_entries: usize,
    pub(super) pending_entries: usize,
    /// The first offset this engine applied: where a rebuild without a checkpoint starts.
    pub(super) first: Option<i64>,
    /// When the state was restored; `None` once the partition's first outputs since are out.
    pub(super) restored_at: Option<Instant>,
    /// A checkpoint being copied a few keys at a time, before it is written.
    pub(super) copying: Option<Copying>,
    /// Cancelled when the partition is revoked: a checkpoint of it still waiting to be written
    /// is then dropped, not written after the new owner's (see `Correlate::drop_revoked`).
    pub(super) revoked: CancellationToken,
}

/// A checkpoint being copied a few keys at a time (`EngineState::begin_delta`, `begin_full`):
/// the engine copies a key's value of when it began before changing it, so the checkpoint is
/// of the state at `watermark` however long the copy takes.
pub(super) struct Copying {
    whole: Whole,
    /// A copy of the whole state (`EngineState::begin_full`), not a delta.
    full: bool,
    /// The watermark it covers, and how many output batches were sent before it (it is written
    /// once they are acknowledged).
    pub(super) watermark: i64,
    pub(super) sent: u64,
    base: i64,
    slot: u32,
    /// How long beginning and copying it has held the stage so far, over how many batches.
    held: Duration,
    batches: u32,
}

/// A checkpoint copied to the end ([`Part::copy`]), to be written.
pub(super) struct Copied {
    pub(super) taken: Taken,
    /// The watermark it covers, and how many output batches were sent before it.
    pub(super) watermark: i64,
    pub(super) sent: u64,
    /// How long beginning and copying it held the stage, in all, over how many batches.
    pub(super) held: Duration,
    pub(super) batches: u32,
}

/// Keys copied between two looks at the clock while a checkpoint is copied.
const COPY_STEP: usize = 256;

/// The keys copied between two looks at the clock, and how long copying may go on after a
/// batch. Test-only (feature `failpoints`): failpoint `checkpoint-copy` set to `return(N)`
/// copies N keys after each batch and no more, so that tests see checkpoints copied over many
/// batches while their state changes.
fn copy_step(budget: Duration) -> (usize, Duration) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("checkpoint-copy", |n: Option<String>| {
        let n = n.and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
        (n, Duration::ZERO)
    });
    (COPY_STEP, budget)
}

impl Part {
    /// A partition just restored: `next` is the checkpoint's watermark (-1 without one).
    pub(super) fn restored(engine: Engine, next: i64) -> Part {
        Part {
            engine,
            next,
            checkpointed: next,
            last_checkpoint: Instant::now(),
            seeking_since: None,
            pending: None,
            pending_delta: false,
            need_full: true,
            deltas: 0,
            full_entries: 0,
            delta_entries: 0,
            pending_entries: 0,
            first: None,
            restored_at: Some(Instant::now()),
            copying: None,
            revoked: CancellationToken::new(),
        }
    }
}

impl Part {
    /// What the next checkpoint takes: with `shutdown` (the engine that replaces this one) the
    /// engine itself, whole; else a delta of what changed since the last checkpoint when the
    /// chain allows one (see `checkpoint`: not for a new owner or after a delta that was not
    /// acknowledged, at most `full_every` in a row, and while a restore reads at most 1.5
    /// entries per entry of the state), else a copy of the whole state.
    /// A delta, or a copy of the whole state while changes are recorded (`state.incremental`),
    /// is only begun here (`None`): [`Part::copy`] takes it over the next batches. `sent` is
    /// how many output batches were sent so far.
    pub(super) fn take(
        &mut self,
        st: &StateConfig,
        shutdown: Option<Engine>,
        sent: u64,
    ) -> Option<Taken> {
        let began = Instant::now();
        let live = self.engine.entries();
        let delta = st.incremental
            && !self.need_full
            && self.deltas < st.full_every
            // A restore reads at most 1.5 entries (the full checkpoint's and the deltas'
            // since) per entry of the state. Deltas of a state that grows (new alerts) add
            // entries the state has, so they go on; deltas that write the same keys again and
            // again add entries a restore reads only to replace them, so those are bounded.
            // Counted in entries, not bytes: a bound on bytes against the last full checkpoint
            // made every other checkpoint full while the state grew (BENCHMARKS.md, round 3h).
            && 2 * (self.full_entries + self.delta_entries) <= 3 * live;
        let taken = if let Some(next) = shutdown {
            // Whole: a delta being copied is dropped with the rest of the engine's changes.
            self.copying = None;
            Taken::Engine(Box::new(std::mem::replace(&mut self.engine, next)))
        } else if delta || st.incremental {
            // Copied over the next batches; a full one too, unless changes are not recorded.
            let whole = if delta {
                self.engine.begin_delta()
            } else {
                self.pending_entries = live;
                self.engine.begin_full()
            };
            self.copying = Some(Copying {
                whole,
                full: !delta,
                watermark: self.next,
                sent,
                base: self.checkpointed,
                slot: self.deltas + 1,
                held: began.elapsed(),
                batches: 0,
            });
            return None;
        } else {
            self.pending_entries = live;
            Taken::Copy(Box::new(self.engine.take_full(false)))
        };
        self.pending_delta = false;
        Some(taken)
    }

    /// Copies more of the checkpoint begun by [`Part::take`] until `budget` has passed (at
    /// least a few keys); when it is complete, returns it.
    pub(super) fn copy(&mut self, budget: Duration) -> Option<Copied> {
        let started = Instant::now();
        let copying = self.copying.as_mut()?;
        copying.batches += 1;
        let (step, budget) = copy_step(budget);
        loop {
            if self.engine.copy_some(step) < step {
                break;
            }
            if started.elapsed() >= budget {
                copying.held += started.elapsed();
                return None;
            }
        }
        let mut c = self.copying.take()?;
        let d = Box::new(self.engine.end_delta(c.whole));
        self.pending_delta = !c.full;
        let taken = if c.full {
            Taken::Whole(d)
        } else {
            self.pending_entries = d.entries();
            Taken::Delta {
                delta: d,
                base: c.base,
                slot: c.slot,
            }
        };
        c.held += started.elapsed();
        Some(Copied {
            taken,
            watermark: c.watermark,
            sent: c.sent,
            held: c.held,
            batches: c.batches,
        })
    }

    /// The pending checkpoint was `acknowledged`, or failed: then the next one is full, since a
    /// delta took its changes from the dirty sets. Returns whether it was a delta.
    pub(super) fn written(&mut self, acknowledged: bool) -> bool {
        let delta = std::mem::take(&mut self.pending_delta);
        if !acknowledged {
            self.need_full = true;
        } else if delta {
            self.deltas += 1;
            self.delta_entries += self.pending_entries;
        } else {
            self.deltas = 0;
            (self.full_entries, self.delta_entries) = (self.pending_entries, 0);
            self.need_full = false;
        }
        delta
    }
}

/// Most partitions restored at the same time (and restorer consumers kept). A takeover rarely
/// moves more; more would only compete for the same broker and cores.
pub(super) const MAX_CONCURRENT: usize = 8;

/// How long one read of a checkpoint may take before it is retried.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A partition's newest checkpoint with its deltas applied (none for a new partition) and how
/// long reading it took.
pub(super) type Restored = (Option<checkpoint::Restored>, Duration);

/// The pool of restorer consumers: assigned partitions of the state topic by hand, never a
/// group member.
pub(super) struct Restorers {
    kafka: KafkaConfig,
    pool: Vec<OffRuntime<BaseConsumer>>,
}

impl Restorers {
    /// A pool with one restorer, so a client that cannot be made stops start-up.
    pub(super) fn new(kafka: &KafkaConfig) -> Result<Self, PipelineError> {
        let mut r = Restorers {
            kafka: kafka.clone(),
            pool: Vec::new(),
        };
        r.grow(1)?;
        Ok(r)
    }

    /// Closes every restorer, each on a thread of its own, and waits for them (at most
    /// `within`), so none is still connected after its stage ended.
    pub(super) async fn close(self, within: Duration) {
        let closing: Vec<_> = (self.pool.into_iter())
            .map(|c| c.close("restore", |_| {}))
            .collect();
        let _ = tokio::time::timeout(within, futures::future::join_all(closing)).await;
    }

    fn grow(&mut self, n: usize) -> Result<(), PipelineError> {
        while self.pool.len() < n.min(MAX_CONCURRENT) {
            let mut c = base_config(&self.kafka).map_err(PipelineError::Client)?;
            c.set("group.id", format!("{}-restore", self.kafka.group_id))
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                // librdkafka's 500 ms fetch wait was most of each restore (two reads per
                // partition).
                .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
            let consumer: BaseConsumer = c.create().map_err(PipelineError::Client)?;
            self.pool.push(OffRuntime::new(consumer));
        }
        Ok(())
    }

    /// Reads the newest checkpoint of each of `partitions` of the events topic, side by side
    /// (each restorer takes its share one after another). A read that fails for a reason that
    /// may pass (the broker away, a timeout) is retried with backoff for the partitions
    /// `assigned` still says are ours; the others are left out of the answer. A checkpoint that
    /// does not read stops the stage: a broken checkpoint will not mend itself.
    pub(super) async fn read(
        &mut self,
        (state_topic, events_topic): (&str, &str),
        partitions: &[i32],
        assigned: impl Fn(i32) -> bool,
        shutdown: &CancellationToken,
    ) -> Result<BTreeMap<i32, Restored>, PipelineError> {
        let mut out = BTreeMap::new();
        let mut todo: Vec<i32> = partitions.to_vec();
        let mut backoff = Duration::from_millis(200);
        let started = Instant::now();
        while !todo.is_empty() {
            self.grow(todo.len())?;
            let mut tasks = Vec::new();
            for (i, restorer) in self.pool.iter().enumerate() {
                let share: Vec<i32> = todo
                    .iter()
                    .copied()
                    .skip(i)
                    .step_by(self.pool.len())
                    .collect();
                if share.is_empty() {
                    continue;
                }
                let (restorer, state, events) = (
                    restorer.shared(),
                    state_topic.to_string(),
                    events_topic.to_string(),
                );
                tasks.push(tokio::task::spawn_blocking(move || {
                    share
                        .into_iter()
                        .map(|p| {
                            let t = Instant::now();
                            let r =
                                checkpoint::restore(&restorer, &state, &events, p, READ_TIMEOUT);
                            (p, r.map(|cp| (cp, t.elapsed())))
                        })
                        .collect::<Vec<_>>()
                }));
            }
            let mut failed = Vec::new();
            for task in tasks {
                let done = task
                    .await
                    .map_err(|e| PipelineError::Stage("correlate", e.to_string()))?;
                for (p, r) in done {
                    match r {
                        Ok(restored) => {
                            out.insert(p, restored);
                        }
                        Err(e @ RestoreError::Corrupt { .. }) => {
                            return Err(PipelineError::Restore(e.to_string()));
                        }
                        Err(e) => {
                            // The partition's input waits until its state is back.
                            tracing::warn!(partition = p, error = %e, "cannot restore state yet; retrying");
                            failed.push(p);
                        }
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            failed.retain(|&p| assigned(p));
            todo = failed;
        }
        if partitions.len() > 1 {
            tracing::debug!(
                partitions = partitions.len(),
                millis = started.elapsed().as_millis() as u64,
                "partitions restored side by side"
            );
        }
        Ok(out)
    }
}
