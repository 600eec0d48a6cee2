//! Batches a stage has handed to the producer and not yet seen acknowledged, so the stage can
//! take and process its next batch while the broker acknowledges the last ones (issue 18: the
//! wait for the acknowledgement was most of d2c's own share of the latency).
//!
//! Order is kept: records are handed to the idempotent producer one by one in the order of the
//! batches, which keeps that order per partition through librdkafka's own retries. Only when
//! librdkafka gives a record up (a timeout after `message.timeout.ms`, a refusal) would sending
//! it again put it behind records of later batches; then the records of every later batch are
//! sent again after it, in order ([`InFlight::settle`]), so the newest copy of every record on a
//! partition is in the original order (at least once, as on a restart). A batch's completion
//! (`T`: the offsets to store, what to count) is handed back only when it and every batch before
//! it are acknowledged, oldest first.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{JoinAll, join_all};
use rdkafka::error::KafkaError;
use rdkafka::producer::DeliveryFuture;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::telemetry::events::ProduceRetried;

use super::PipelineError;
use super::send::{OutRecord, Permanence, Sender, future_record, permanence};
use super::stage::{IDLE_TICK, SETTLE_TICK};

/// One batch's records, their acknowledgements and what to hand back once all are in.
struct Flight<T> {
    records: Vec<OutRecord>,
    /// The acknowledgements of the records queued (`futures`' `join_all` polls only the ones
    /// woken), in the order of `queued`.
    acks: Pin<Box<JoinAll<DeliveryFuture>>>,
    /// Index in `records` of each queued record.
    queued: Vec<usize>,
    /// Records that failed (refused when queued, or given up by the producer), by index.
    failed: Vec<(usize, KafkaError)>,
    /// Every acknowledgement is in.
    done: bool,
    sent: Instant,
    then: T,
}

impl<T> Flight<T> {
    /// Ready when every record is acknowledged or failed.
    fn poll_acks(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let results = std::task::ready!(self.acks.as_mut().poll(cx));
        for (&i, r) in self.queued.iter().zip(results) {
            let e = match r {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => e,
                Err(_) => KafkaError::Canceled,
            };
            self.failed.push((i, e));
        }
        self.failed.sort_by_key(|(i, _)| *i);
        self.done = true;
        Poll::Ready(())
    }
}

/// A stage's batches in flight; see the module documentation.
pub struct InFlight<T> {
    sender: Sender,
    flights: VecDeque<Flight<T>>,
    /// Most batches left unacknowledged when [`InFlight::send`] returns (0: it waits for each).
    depth: usize,
    /// Batches handed to [`InFlight::send`] so far.
    sent: u64,
    /// Batches whose completions were handed back so far (acknowledged, oldest first): what
    /// [`InFlight::acknowledged`] watches.
    acked: tokio::sync::watch::Sender<u64>,
}

impl<T> InFlight<T> {
    pub fn new(sender: Sender, depth: usize) -> InFlight<T> {
        InFlight {
            sender,
            flights: VecDeque::new(),
            depth,
            sent: 0,
            acked: tokio::sync::watch::Sender::new(0),
        }
    }

    /// How many batches were sent so far: what a checkpoint taken now covers.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// How many batches are acknowledged, as the stage hands their completions back (in
    /// order). A checkpoint taken after batch `n` was sent is written once this reaches `n`
    /// (see [`acknowledged`]), without the stage waiting for it.
    pub fn acknowledged(&self) -> tokio::sync::watch::Receiver<u64> {
        self.acked.subscribe()
    }

    pub fn is_empty(&self) -> bool {
        self.flights.is_empty()
    }

    /// How long the stage may wait for input before it hands back acknowledged batches:
    /// [`SETTLE_TICK`] while any are in flight, else [`IDLE_TICK`].
    pub fn idle(&self) -> Duration {
        if self.flights.is_empty() {
            IDLE_TICK
        } else {
            SETTLE_TICK
        }
    }

    /// Hands `records` to the producer, in order, as one batch completing with `then`; waits
    /// while more than `depth` batches are unacknowledged, and for every batch when the input
    /// is a `backlog` (the batch was full: there batches in flight cost throughput, see
    /// BENCHMARKS.md, while the latency they save is not waited for anyway). Returns the
    /// completions of the batches acknowledged meanwhile, oldest first (an empty `records`
    /// completes at once after those before it).
    pub async fn send(
        &mut self,
        records: Vec<OutRecord>,
        then: T,
        backlog: bool,
        shutdown: &CancellationToken,
    ) -> Result<Vec<T>, PipelineError> {
        let mut done = Vec::new();
        let mut acks = Vec::with_capacity(records.len());
        let mut queued = Vec::with_capacity(records.len());
        let mut failed = Vec::new();
        for (i, r) in records.iter().enumerate() {
            loop {
                match self.sender.producer.send_result(future_record(r)) {
                    Ok(f) => {
                        acks.push(f);
                        queued.push(i);
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // The producer's queue is full: wait for the oldest batch still in it
                        // (settled later, in order) or, with none, a moment.
                        match self.flights.iter_mut().find(|f| !f.done) {
                            Some(oldest) => wait(&self.sender, oldest).await,
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                        continue;
                    }
                    // Refused before it was queued (e.g. too large): settled like a refusal.
                    Err((e, _)) => failed.push((i, e)),
                }
                break;
            }
        }
        self.sent += 1;
        self.flights.push_back(Flight {
            records,
            acks: Box::pin(join_all(acks)),
            queued,
            failed,
            done: false,
            sent: Instant::now(),
            then,
        });
        done.extend(self.ready(shutdown).await?);
        let depth = if backlog { 0 } else { self.depth };
        while self.flights.len() > depth {
            done.extend(self.settle(shutdown).await?);
        }
        Ok(done)
    }

    /// The completions of the batches acknowledged by now, oldest first, without waiting for
    /// the others.
    pub async fn ready(&mut self, shutdown: &CancellationToken) -> Result<Vec<T>, PipelineError> {
        let mut done = Vec::new();
        while let Some(front) = self.flights.front_mut() {
            if std::future::poll_fn(|cx| front.poll_acks(cx))
                .now_or_never()
                .is_none()
            {
                break;
            }
            done.extend(self.settle(shutdown).await?);
        }
        Ok(done)
    }

    /// Waits for every batch in flight; their completions, oldest first.
    pub async fn drain(&mut self, shutdown: &CancellationToken) -> Result<Vec<T>, PipelineError> {
        let mut done = Vec::new();
        while !self.flights.is_empty() {
            done.extend(self.settle(shutdown).await?);
        }
        Ok(done)
    }

    /// Waits for the oldest batch (marking the stage stalled if that takes longer than
    /// `kafka.stall_timeout`) and hands back its completion. Records librdkafka gave up go
    /// through [`Sender::send_all`] (retries with backoff, dead letters); if one of them may
    /// still land, every later batch is awaited and sent again after it, so order is kept.
    async fn settle(&mut self, shutdown: &CancellationToken) -> Result<Vec<T>, PipelineError> {
        let done = self.settle_front(shutdown).await?;
        let n = done.len() as u64;
        self.acked.send_modify(|acked| *acked += n);
        Ok(done)
    }

    async fn settle_front(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<Vec<T>, PipelineError> {
        let Some(mut front) = self.flights.pop_front() else {
            return Ok(Vec::new());
        };
        wait(&self.sender, &mut front).await;
        let mut again = Vec::new();
        let mut reordered = false;
        for (i, e) in &front.failed {
            let r = &front.records[*i];
            match permanence(e) {
                Permanence::Fatal => return Err(self.sender.fatal(e)),
                Permanence::Permanent => {}
                Permanence::Transient | Permanence::Lingering => {
                    reordered = true;
                    self.sender.metrics.emit(ProduceRetried {
                        topic: &r.topic,
                        error: e,
                    });
                }
            }
            again.push(r.clone());
        }
        let mut done = vec![front.then];
        if again.is_empty() {
            return Ok(done);
        }
        if reordered {
            while let Some(mut later) = self.flights.pop_front() {
                wait(&self.sender, &mut later).await;
                again.append(&mut later.records);
                done.push(later.then);
            }
        }
        self.sender.send_all(&again, shutdown).await?;
        Ok(done)
    }
}

/// Waits until `acknowledged` (see [`InFlight::acknowledged`]) reaches `sent`: every batch sent
/// before is acknowledged. Fails with [`PipelineError::Interrupted`] on shutdown or when the
/// stage is gone (then those batches may never be).
pub async fn acknowledged(
    acknowledged: &mut tokio::sync::watch::Receiver<u64>,
    sent: u64,
    shutdown: &CancellationToken,
) -> Result<(), PipelineError> {
    tokio::select! {
        r = acknowledged.wait_for(|&acked| acked >= sent) => {
            r.map(|_| ()).map_err(|_| PipelineError::Interrupted)
        }
        () = shutdown.cancelled() => Err(PipelineError::Interrupted),
    }
}

/// [`acknowledged`], for a checkpoint of a partition taken after the first `sent` output
/// batches, which is written once they are acknowledged: `Ok(false)` if the partition is
/// `revoked` first (before or while it waits). Then the checkpoint is not written: the new
/// owner writes the partition's checkpoints now, and a delta of the old owner's landing after
/// the new owner's first (full) one would break the new owner's chain (its next restore would
/// stop before it and read the input again from further back). A checkpoint already being sent
/// is not stopped: a send cut short would leave the stage's stall condition set.
pub async fn acknowledged_unless_revoked(
    acked: &mut tokio::sync::watch::Receiver<u64>,
    sent: u64,
    revoked: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<bool, PipelineError> {
    tokio::select! {
        biased;
        () = revoked.cancelled() => Ok(false),
        r = acknowledged(acked, sent, shutdown) => r.map(|()| !revoked.is_cancelled()),
    }
}

/// Waits until every record of `flight` is acknowledged or failed, marking the stage stalled
/// meanwhile if that takes longer than `kafka.stall_timeout`.
async fn wait<T>(sender: &Sender, flight: &mut Flight<T>) {
    let condition = sender.stall_condition();
    let stall_at = tokio::time::Instant::from_std(flight.sent + sender.stall_timeout);
    let mut stalled = false;
    loop {
        tokio::select! {
            () = std::future::poll_fn(|cx| flight.poll_acks(cx)) => break,
            () = tokio::time::sleep_until(stall_at), if !stalled => {
                stalled = sender.stall(&condition, flight.sent, None);
            }
        }
    }
    if stalled {
        sender.unstall(&condition, flight.sent);
    }
}
