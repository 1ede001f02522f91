//! One pool slot driving one long-lived worker process (a builtin, external or Python
//! worker) that answers a request line with a reply line.
//!
//! Items are pipelined: up to `limit` requests are in flight, so fast items cost one pipe
//! write per batch, not per item. The limit adapts to item durations, so slow items are
//! sent one at a time and a timeout re-dispatches nothing but the item at fault.
//!
//! A worker that times out, exits, or breaks the protocol is killed with its process group
//! and replaced; only the item it was running is charged with the failure.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::attempt::{self, Attempt, AttemptInfo, Failure, Printed};
use super::in_flight::InFlight;
use super::queue::{Taken, Work, WorkItem, WorkQueue};
use super::replies::{Answer, Chunk, Records, RenderedRun, read_replies, truncate};
use crate::exec::function::{self, Protocol};
use crate::exec::{Event, SLOW_AFTER, TaskRun};
use crate::job::FunctionKind;
use crate::process::groups::GroupChild;
use crate::process::{self, StderrTail, Tether, Usage, pause};
use crate::record::ItemRecord;
use crate::worker::protocol;

mod ok_batch;
use ok_batch::SlotJournal;

/// How often a waiting slot looks at the run's stop conditions.
const POLL: Duration = Duration::from_millis(50);
/// Keep about this much work in flight per worker.
const TARGET_IN_FLIGHT: Duration = Duration::from_millis(5);
/// Pipe size asked for a builtin worker's stdin and stdout (Linux's default limit for
/// unprivileged processes, `/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: usize = 1024 * 1024;
/// Never more than this many requests in flight per worker.
const MAX_IN_FLIGHT: usize = 1024;
/// For the Python shim, which answers a batch as its items end (so runjobs can top it up
/// while it runs): larger batches cost Python less per item than its function calls.
const MAX_IN_FLIGHT_BATCHED: usize = 16384;

struct LiveWorker {
    child: GroupChild,
    pid: u32,
    stdin: ChildStdin,
    replies: Receiver<Chunk>,
    reader: JoinHandle<()>,
    stderr: JoinHandle<()>,
    stderr_tail: StderrTail,
    /// When we last heard from the worker: the item at the head of the queue started no
    /// earlier than this, which is what its timeout counts from.
    last_heard: Instant,
    /// Items sent to this worker so far (for `max_items_per_worker`).
    items_sent: u64,
    protocol: Protocol,
    /// How its batch requests may say their inputs (`Protocol::Batched`).
    batch_inputs: protocol::BatchInputs,
    /// The worker's CPU time when it was last heard from or last set to work from idle: what
    /// it used since went into the item it answers next.
    cpu_mark: Option<f64>,
}

pub struct MessageSlot<'a> {
    ctx: &'a TaskRun<'a>,
    worker: Option<LiveWorker>,
    in_flight: InFlight,
    /// Whether a `range` is taken as runs: builtin workers take run requests and the Python
    /// shim `range` batches; the others get items one by one.
    takes_runs: bool,
    /// Items taken from the queue but not yet written to the worker.
    to_send: VecDeque<Work>,
    limit: usize,
    /// Moving average of item durations, seconds.
    mean_duration: Option<f64>,
    finished: Vec<ItemRecord>,
    request_buf: Vec<u8>,
    /// This slot's number on the board of slow items, and whether its item is there.
    slot: usize,
    slow: bool,
    /// Where this slot appends the records of its worker's `ok` batches itself, so the
    /// collecting thread (one for all the slots) does not write them twice: the journal
    /// through a descriptor of its own, opened at the first batch; `Gone` once that failed.
    journal: SlotJournal,
    /// The lines of the last all-`ok` batch, kept for the next.
    batch_lines: Vec<u8>,
}

impl<'a> MessageSlot<'a> {
    pub fn new(ctx: &'a TaskRun<'a>) -> MessageSlot<'a> {
        MessageSlot {
            ctx,
            worker: None,
            in_flight: InFlight::default(),
            takes_runs: matches!(
                ctx.task.function.kind,
                FunctionKind::Builtin { .. } | FunctionKind::Python { .. }
            ),
            to_send: VecDeque::new(),
            limit: 1,
            mean_duration: None,
            finished: Vec::new(),
            request_buf: Vec::new(),
            slot: ctx.slow.slot(),
            slow: false,
            journal: SlotJournal::NotOpened,
            batch_lines: Vec::new(),
        }
    }

    pub fn run(mut self, queue: &WorkQueue) {
        loop {
            if self.ctx.control.must_stop_running() {
                self.stop_for_interrupt(queue);
                break;
            }
            let waiting_for = self.dispatch(queue);
            self.flush_records();
            if self.in_flight.is_empty() {
                match waiting_for {
                    // A retry is waiting for its backoff delay.
                    Some(at) => {
                        thread::sleep(at.saturating_duration_since(Instant::now()).min(POLL))
                    }
                    None => break,
                }
                continue;
            }
            self.wait_for_replies(queue);
            self.flush_records();
        }
        self.flush_records();
        self.retire_worker();
    }

    /// Tops up the worker's in-flight requests from the queue, starting a worker if needed.
    /// Returns when a delayed retry will be ready, if nothing could be taken because of it.
    fn dispatch(&mut self, queue: &WorkQueue) -> Option<Instant> {
        let max_items = self.ctx.task.max_items_per_worker.unwrap_or(u64::MAX);
        if let Some(worker) = &self.worker
            && worker.items_sent >= max_items
        {
            // Recycle: let the worker finish what it has, then replace it.
            if self.in_flight.is_empty() {
                self.retire_worker();
            } else {
                return None;
            }
        }
        let sent = self.worker.as_ref().map_or(0, |w| w.items_sent);
        let budget = usize::try_from(max_items.saturating_sub(sent)).unwrap_or(usize::MAX);
        let room = self.limit.saturating_sub(self.in_flight.len()).min(budget);
        let mut waiting_for = None;
        // Nothing joins a suspect item: a crash while it is in flight must be its own.
        let busy = !self.in_flight.is_empty();
        let wants = room > 0
            && self.in_flight.len() <= self.limit / 2
            && !self.in_flight.holds_suspect()
            && self.ctx.control.may_dispatch();
        if wants {
            // A closed admission gate holds new items back (those in flight go on).
            match self
                .ctx
                .control
                .admission_closed()
                .filter(|_| queue.has_work())
            {
                Some(until) => waiting_for = Some(until),
                None => {
                    if let Taken::WaitUntil(at) =
                        queue.take_work(room, self.takes_runs, busy, &mut self.to_send)
                    {
                        waiting_for = Some(at);
                    }
                }
            }
        }
        self.fail_unreadable_inputs(queue);
        if self.to_send.is_empty() {
            return waiting_for;
        }
        if self.worker.is_none() {
            match self.spawn_worker() {
                Ok(worker) => self.worker = Some(worker),
                Err(message) => {
                    // The worker cannot start at all: every item we hold fails with why.
                    let items: Vec<WorkItem> = self.take_unsent_items().collect();
                    for item in items {
                        self.fail_unstarted(queue, item, Failure::Crashed(message.clone()));
                    }
                    return None;
                }
            }
        }
        let worker = self.worker.as_mut().expect("a worker was started above");
        self.request_buf.clear();
        let now = Instant::now();
        if self.in_flight.is_empty() {
            worker.last_heard = now;
            worker.cpu_mark = process::process_cpu_seconds(worker.pid);
        }
        if worker.protocol == Protocol::Batched {
            // Half the limit a batch, so that while the worker runs one, the next is already
            // in its pipe: it never waits for runjobs to answer its answer.
            let most = (self.limit / 2).max(1) as u64;
            let form = worker.batch_inputs;
            write_batch_requests(&mut self.request_buf, &self.to_send, form, most);
        }
        while let Some(work) = self.to_send.pop_front() {
            worker.items_sent += work.len();
            let mut item = match work {
                Work::One(item) => item,
                Work::Ints(run) => {
                    // Sent as one line, and it stays one entry in flight (only builtin and
                    // Python workers are given runs: `takes_runs`).
                    match worker.protocol {
                        Protocol::Lean => protocol::write_run_request(&mut self.request_buf, &run),
                        Protocol::Batched => {} // written above, with the single items
                        Protocol::JsonLines => unreachable!("JSON-lines workers get no runs"),
                    }
                    self.in_flight.push(Work::Ints(run), now);
                    continue;
                }
            };
            let input = item
                .input
                .as_ref()
                .expect("unreadable inputs were failed above");
            match worker.protocol {
                Protocol::Lean => protocol::write_request(
                    &mut self.request_buf,
                    item.index,
                    item.attempts + 1,
                    input,
                ),
                Protocol::JsonLines => {
                    protocol::write_json_request(&mut self.request_buf, item.index, input);
                }
                Protocol::Batched => {}
            }
            item.attempts += 1;
            self.in_flight.push(Work::One(item), now);
        }
        // A failed write means the worker died; its reader reports that as end of stream,
        // which fails the head item and hands the rest back.
        let _ = worker.stdin.write_all(&self.request_buf);
        None
    }

    /// Takes every item waiting to be sent, one by one.
    fn take_unsent_items(&mut self) -> impl Iterator<Item = WorkItem> + use<> {
        std::mem::take(&mut self.to_send)
            .into_iter()
            .flat_map(|work| work.into_items(0))
    }

    /// Items whose input could not even be read fail without running.
    fn fail_unreadable_inputs(&mut self, queue: &WorkQueue) {
        let unreadable = |work: &Work| matches!(work, Work::One(item) if item.input.is_err());
        if !self.to_send.iter().any(unreadable) {
            return;
        }
        let (bad, good): (Vec<_>, Vec<_>) = self.to_send.drain(..).partition(unreadable);
        self.to_send.extend(good);
        for item in bad.into_iter().flat_map(|work| work.into_items(0)) {
            let message = item.input.as_ref().err().cloned().unwrap_or_default();
            self.fail_unstarted(queue, item, Failure::BadInput(message));
        }
    }

    /// An attempt that could not even start: it counts, and it fails with `failure`.
    fn fail_unstarted(&mut self, queue: &WorkQueue, mut item: WorkItem, failure: Failure) {
        item.attempts += 1;
        self.conclude(
            queue,
            item,
            Attempt::Failed(failure),
            None,
            Instant::now(),
            0.0,
        );
    }

    fn wait_for_replies(&mut self, queue: &WorkQueue) {
        let timeout = self.ctx.task.timeout;
        let Some(worker) = self.worker.as_ref() else {
            return;
        };
        // Time paused (Ctrl-Z) does not count, so the deadline is worked out again after
        // waiting: a pause may have begun meanwhile.
        let heard = worker.last_heard;
        let deadline = || timeout.map(|t| pause::shifted(heard, heard + t));
        let wait = deadline().map_or(POLL, |d| {
            d.saturating_duration_since(Instant::now()).min(POLL)
        });
        match worker.replies.recv_timeout(wait) {
            Ok(chunk) => self.on_chunk(chunk, queue),
            Err(RecvTimeoutError::Timeout) => {
                if deadline().is_some_and(|d| Instant::now() >= d) {
                    self.on_timeout(queue);
                } else {
                    self.note_slow(heard);
                }
            }
            Err(RecvTimeoutError::Disconnected) => self.on_worker_gone(queue),
        }
    }

    /// Shows the item the worker is running as slow once it has run long; takes it off when
    /// it ends (whatever happens next ends it: an answer, a timeout, a death).
    fn note_slow(&mut self, since: Instant) {
        if self.slow || since.elapsed() < SLOW_AFTER {
            return;
        }
        if let Some((index, input)) = self.in_flight.oldest() {
            let task = self.ctx.task_index;
            self.slow = self.ctx.slow.check(self.slot, task, index, &input, since);
        }
    }

    fn end_slow(&mut self) {
        if self.slow {
            self.ctx.slow.clear(self.slot);
            self.slow = false;
        }
    }

    fn on_chunk(&mut self, chunk: Chunk, queue: &WorkQueue) {
        self.end_slow();
        let pid = self.worker.as_ref().map(|w| w.pid);
        // The worker runs its items one after another, so what it used between two answers
        // went into the item answered: known when a chunk answers a single item.
        let mark = self
            .worker
            .as_mut()
            .and_then(|w| std::mem::replace(&mut w.cpu_mark, chunk.cpu_s));
        let single = match chunk.replies.as_slice() {
            [Ok(Answer::One(_))] => true,
            [Ok(Answer::Batch(batch))] => batch.len() == 1,
            _ => false,
        };
        let usage = match (single, mark, chunk.cpu_s) {
            (true, Some(before), Some(now)) => Some(Usage {
                cpu_s: (now - before).max(0.0),
                max_rss_kib: None,
            }),
            _ => None,
        };
        for answer in chunk.replies {
            let reply = match answer {
                Ok(Answer::One(reply)) => reply,
                Ok(Answer::Batch(batch)) => match self.take_ok_batch(batch, chunk.at, pid) {
                    Ok(()) => continue,
                    // Not the oldest items in order (or one alone, whose CPU time is known):
                    // answer by answer, as any.
                    Err(batch) => {
                        for reply in batch.into_replies() {
                            if !self.on_reply(queue, reply, chunk.at, pid, usage) {
                                return;
                            }
                        }
                        continue;
                    }
                },
                Ok(Answer::Run(run)) => {
                    if let Err(message) = self.take_run(run, chunk.at) {
                        self.replace_worker(queue, Failure::Crashed(message));
                        return;
                    }
                    continue;
                }
                Err(line) => {
                    let shown = truncate(&line, 200);
                    let protocol = self.worker.as_ref().map(|w| w.protocol);
                    let hint = match protocol {
                        Some(Protocol::JsonLines) => {
                            " (expected a line like {\"id\": N, \"output\": ...}; print logs to stderr)"
                        }
                        Some(Protocol::Batched) => {
                            " (expected a line like {\"first\": N, \"outputs\": [...]} or \
                             {\"ids\": [...], \"outputs\": [...]}; print logs to stderr)"
                        }
                        _ => "",
                    };
                    let message = format!(
                        "the worker broke the protocol: it printed `{shown}`{hint}; it was replaced"
                    );
                    self.replace_worker(queue, Failure::Crashed(message));
                    return;
                }
            };
            if !self.on_reply(queue, reply, chunk.at, pid, usage) {
                return;
            }
        }
        if let Some(worker) = self.worker.as_mut() {
            worker.last_heard = chunk.at;
        }
    }

    /// Ends the item a reply answers; false when it answers none (the worker was replaced).
    fn on_reply(
        &mut self,
        queue: &WorkQueue,
        reply: protocol::Reply,
        at: Instant,
        pid: Option<u32>,
        usage: Option<Usage>,
    ) -> bool {
        let Some((item, sent_at)) = self.in_flight.take(reply.id) else {
            let message = format!(
                "the worker answered id {} which was not asked; it was replaced",
                reply.id
            );
            self.replace_worker(queue, Failure::Crashed(message));
            return false;
        };
        let duration = self.item_duration(sent_at, at, reply.duration_s);
        self.learn_duration(duration);
        let attempt = match reply.result {
            Ok(output) => Attempt::Ok(output),
            Err(message) => Attempt::Failed(Failure::Error(message)),
        };
        self.conclude_with(queue, item, attempt, (pid, at, duration), usage);
        true
    }

    /// How long an item answered at `at` ran: the worker's own timing when it gives one (no
    /// longer than since it was sent), else from when the worker was last heard from (or the
    /// item was sent) until `at`.
    fn item_duration(&self, sent_at: Instant, at: Instant, reported: Option<f64>) -> f64 {
        let since = sent_at.max(self.worker.as_ref().map_or(sent_at, |w| w.last_heard));
        let measured = at.saturating_duration_since(since).as_secs_f64();
        reported.map_or(measured, |d| {
            d.min(at.saturating_duration_since(sent_at).as_secs_f64())
        })
    }

    /// Ends the in-flight items of a rendered run and passes their records on as they are.
    /// An item the worker was not asked about breaks the protocol.
    fn take_run(&mut self, run: RenderedRun, at: Instant) -> Result<(), String> {
        let count = run.count;
        let answered = run.first..run.first.saturating_add(count);
        if self.in_flight.starts_with(run.first, count) {
            // The usual case: the worker answered the oldest requests, in order.
            self.in_flight.drop_oldest(count);
        } else {
            // Every item must be in flight before any is taken: a bad run leaves the
            // in-flight items whole for `replace_worker` to charge and hand back.
            if let Some(index) = answered.clone().find(|i| !self.in_flight.contains(*i)) {
                return Err(format!(
                    "the worker answered id {index} which was not asked; it was replaced"
                ));
            }
            for index in answered {
                self.in_flight.take(index);
            }
        }
        self.learn_duration(run.nanos as f64 / 1e9 / count as f64);
        if let Some(worker) = self.worker.as_mut() {
            worker.last_heard = at;
        }
        self.flush_records();
        let task = self.ctx.task_index;
        let _ = self.ctx.events.send(match run.records {
            Records::Here(rendered) => Event::Rendered {
                task,
                first: run.first,
                rendered,
                journaled: None,
            },
            Records::Journal(range) => Event::Journaled {
                task,
                first: run.first,
                count,
                range,
            },
        });
        Ok(())
    }

    /// Adapts how many requests stay in flight: enough for ~5 ms of work, growing gradually.
    fn learn_duration(&mut self, seconds: f64) {
        let mean = match self.mean_duration {
            Some(mean) => mean * 0.9 + seconds * 0.1,
            None => seconds,
        };
        self.mean_duration = Some(mean);
        let most = match self.worker.as_ref().map(|w| w.protocol) {
            Some(Protocol::Batched) => MAX_IN_FLIGHT_BATCHED,
            _ => MAX_IN_FLIGHT,
        };
        let wanted = (TARGET_IN_FLIGHT.as_secs_f64() / mean.max(1e-9)).clamp(1.0, most as f64);
        self.limit = (wanted as usize).min(self.limit.saturating_mul(2)).max(1);
    }

    fn on_timeout(&mut self, queue: &WorkQueue) {
        // An answer may have arrived just as the deadline passed.
        if self.drain_ready(queue) {
            return;
        }
        let timeout = self.ctx.task.timeout.unwrap_or_default();
        let message = format!(
            "timed out after {}; its process group was killed",
            humantime::format_duration(timeout)
        );
        self.replace_worker(queue, Failure::TimedOut(message));
    }

    /// Processes answers already waiting; true when any arrived.
    fn drain_ready(&mut self, queue: &WorkQueue) -> bool {
        let mut any = false;
        while let Some(chunk) = self.worker.as_ref().and_then(|w| w.replies.try_recv().ok()) {
            any = true;
            self.on_chunk(chunk, queue);
        }
        any
    }

    fn on_worker_gone(&mut self, queue: &WorkQueue) {
        self.end_slow();
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        // Its group may still hold grandchildren; kill them before reaping the leader.
        let _ = kill_process_group(Pid::from_child(&worker.child), Signal::KILL);
        let reaped = process::reap(&mut worker.child);
        self.ended(reaped);
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
        let mut message = format!(
            "the worker process (pid {}) ended unexpectedly: {}",
            worker.pid,
            process::describe_status(reaped.status)
        );
        self.explain(&mut message, &worker.stderr_tail);
        self.charge_head(queue, Failure::Crashed(message), Some(worker.pid));
    }

    /// Kills the worker (whole group), charges the head item with `failure`, and hands the
    /// other in-flight items back; a new worker starts on the next dispatch.
    fn replace_worker(&mut self, queue: &WorkQueue, failure: Failure) {
        self.end_slow();
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let control = self.ctx.control;
        let reaped = process::stop_group(&mut worker.child, self.ctx.task.kill_grace, &|| {
            control.forced()
        });
        self.ended(reaped);
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
        // Answers that were already on their way still count.
        while let Ok(chunk) = worker.replies.try_recv() {
            self.answers_after_death(chunk, worker.pid, queue);
        }
        let failure = match failure {
            Failure::Crashed(mut message) => {
                self.explain(&mut message, &worker.stderr_tail);
                Failure::Crashed(message)
            }
            other => other,
        };
        self.charge_head(queue, failure, Some(worker.pid));
    }

    /// Adds the worker's last stderr and, when a memory limit is set, a word about it.
    fn explain(&self, message: &mut String, tail: &StderrTail) {
        append_stderr(message, tail);
        if let Some(bytes) = self.ctx.task.limits.memory {
            message.push_str(&format!(
                " (the worker runs under limits.memory = {} MiB)",
                bytes / (1024 * 1024)
            ));
        }
    }

    /// Like `on_chunk` for a worker that is already gone (no protocol checks: only real
    /// answers to in-flight items are kept).
    fn answers_after_death(&mut self, chunk: Chunk, pid: u32, queue: &WorkQueue) {
        let mut replies = Vec::new();
        for answer in chunk.replies.into_iter().flatten() {
            match answer {
                Answer::One(reply) => replies.push(reply),
                Answer::Batch(batch) => replies.extend(batch.into_replies()),
                Answer::Run(run) => {
                    let _ = self.take_run(run, chunk.at);
                }
            }
        }
        for reply in replies {
            if let Some((item, sent_at)) = self.in_flight.take(reply.id) {
                let measured = chunk.at.saturating_duration_since(sent_at).as_secs_f64();
                let attempt = match reply.result {
                    Ok(output) => Attempt::Ok(output),
                    Err(message) => Attempt::Failed(Failure::Error(message)),
                };
                self.conclude(
                    queue,
                    item,
                    attempt,
                    Some(pid),
                    chunk.at,
                    reply.duration_s.unwrap_or(measured),
                );
            }
        }
    }

    /// Charges the item the worker was running with `failure`, and hands the other in-flight
    /// items back uncharged.
    ///
    /// A timeout or a stop is the oldest item's: every answer before it reached us (workers
    /// flush within 2 ms). A crash is not: a worker may have finished items whose answers
    /// were still in its buffer when it died, so the crash is anyone's among those in
    /// flight. Then nobody is charged, and each goes out again alone (`suspect`): the one
    /// that crashes its worker by itself is charged, the others keep their own results.
    fn charge_head(&mut self, queue: &WorkQueue, failure: Failure, pid: Option<u32>) {
        if matches!(failure, Failure::Crashed(_)) && self.in_flight.len() > 1 {
            let items = self.in_flight.take_all_unstarted().into_iter();
            queue.put_back(items.map(|item| WorkItem {
                suspect: true,
                ..item
            }));
            self.limit = 1;
            return;
        }
        let now = Instant::now();
        if let Some((item, sent_at)) = self.in_flight.take_oldest() {
            let duration = now.saturating_duration_since(sent_at).as_secs_f64();
            self.conclude(queue, item, Attempt::Failed(failure), pid, now, duration);
        }
        queue.put_back(self.in_flight.take_all_unstarted().into_iter());
        self.limit = 1;
    }

    /// A signal or the deadline: stop the worker's group (grace, then SIGKILL); the item it
    /// was running fails as stopped, the rest go back to be reported skipped.
    fn stop_for_interrupt(&mut self, queue: &WorkQueue) {
        self.drain_ready(queue);
        if self.worker.is_some() && !self.in_flight.is_empty() {
            let message = self.ctx.control.stopped_message();
            self.replace_worker(queue, Failure::Interrupted(message));
        }
        let items: Vec<WorkItem> = self.take_unsent_items().collect();
        queue.put_back(items.into_iter());
        self.flush_records();
    }

    fn conclude(
        &mut self,
        queue: &WorkQueue,
        item: WorkItem,
        attempt: Attempt,
        pid: Option<u32>,
        ended: Instant,
        duration: f64,
    ) {
        self.conclude_with(queue, item, attempt, (pid, ended, duration), None);
    }

    /// `conclude`, with what the worker used for the item when that is known.
    fn conclude_with(
        &mut self,
        queue: &WorkQueue,
        item: WorkItem,
        attempt: Attempt,
        (pid, ended, duration): (Option<u32>, Instant, f64),
        usage: Option<Usage>,
    ) {
        let info = AttemptInfo {
            pid,
            ended,
            duration,
            usage,
            // A worker's answer is a protocol line, taken whole; its stdout is the protocol.
            truncated: None,
            printed: Printed::default(),
        };
        attempt::conclude(self.ctx, queue, item, attempt, info, &mut self.finished);
    }

    fn flush_records(&mut self) {
        self.ctx.report(std::mem::take(&mut self.finished));
    }

    /// Closes the worker's stdin so it exits by itself, then makes sure its group is gone.
    fn retire_worker(&mut self) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        drop(worker.stdin);
        let grace = self.ctx.task.kill_grace.max(Duration::from_millis(100));
        let reaped = if process::exited_within(&worker.child, grace) {
            // The leader is gone; anything it left in its group goes too.
            let _ = kill_process_group(Pid::from_child(&worker.child), Signal::KILL);
            process::reap(&mut worker.child)
        } else {
            process::stop_group(&mut worker.child, Duration::ZERO, &|| true)
        };
        self.ended(reaped);
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
    }

    /// Tells the collector what a reaped worker used in all (the task's CPU total).
    fn ended(&self, reaped: process::Reaped) {
        if let Some(cpu_s) = reaped.cpu_s {
            let _ = self.ctx.events.send(Event::WorkerEnded { cpu_s });
        }
    }

    fn spawn_worker(&self) -> Result<LiveWorker, String> {
        let (mut cmd, protocol) = function::worker_command(self.ctx.task, self.ctx.job)
            .expect("message slots only run long-lived worker kinds")?;
        if protocol == Protocol::Lean {
            // The builtin worker renders its records, `started_s` included.
            let elapsed = u64::try_from(self.ctx.run_start.elapsed().as_nanos()).unwrap_or(0);
            let run_start = protocol::monotonic_nanos().saturating_sub(elapsed);
            cmd.arg("--run-start-ns").arg(run_start.to_string());
        }
        // A builtin worker appends its records to the journal itself.
        let journal = self
            .ctx
            .journal
            .as_ref()
            .filter(|_| protocol == Protocol::Lean);
        if let Some(journal) = journal {
            cmd.arg("--journal").arg(&journal.path);
        }
        let journal = journal.map(|j| Arc::clone(&j.file));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child =
            process::spawn_in_group(&mut cmd, &self.ctx.task.limits, Tether::DieWithRunjobs)
                .map_err(|e| format!("cannot start the worker `{program}`: {e}"))?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        if protocol == Protocol::Lean {
            // A builtin worker sends megabytes of records a second: bigger pipes mean fewer
            // wake-ups on both sides. Best effort (the system's limit may be lower).
            let _ = rustix::pipe::fcntl_setpipe_size(&stdout, PIPE_SIZE);
            let _ = rustix::pipe::fcntl_setpipe_size(&stdin, PIPE_SIZE);
        }
        let (tx, replies) = mpsc::channel();
        let reader = thread::Builder::new()
            .name(format!("worker-{pid}-stdout"))
            .spawn(move || read_replies(stdout, pid, protocol, journal, tx))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        let stderr_tail = StderrTail::default();
        let events = self.ctx.events.clone();
        // A long-lived worker runs items pipelined: its lines are tagged with the worker, not
        // an item, which could only be guessed.
        let tag = self
            .ctx
            .tag
            .then(|| format!("[{} pid {pid}]", self.ctx.task.name));
        let stderr = process::drain_stderr(stderr, stderr_tail.clone(), move |line| {
            let line = match &tag {
                Some(tag) => format!("{tag} {line}"),
                None => line,
            };
            let _ = events.send(Event::Log(line));
        });
        Ok(LiveWorker {
            child,
            pid,
            stdin,
            replies,
            reader,
            stderr,
            stderr_tail,
            last_heard: Instant::now(),
            items_sent: 0,
            protocol,
            // Only runjobs' own shim takes ranges; a `batch = true` worker gets lists.
            batch_inputs: match self.ctx.task.function.kind {
                FunctionKind::Python { .. } => protocol::BatchInputs::RangesToo,
                _ => protocol::BatchInputs::Listed,
            },
            cpu_mark: None,
        })
    }
}

/// Appends the batch request lines for `work`, in its order: a run of integers (only the
/// Python shim is given runs) as lines of at most `most` items, the single items between
/// runs one line a group.
fn write_batch_requests(
    buf: &mut Vec<u8>,
    work: &VecDeque<Work>,
    form: protocol::BatchInputs,
    most: u64,
) {
    let mut group = Vec::new();
    for work in work {
        match work {
            Work::One(item) => group.push((
                item.index,
                item.input
                    .as_ref()
                    .expect("unreadable inputs were failed before"),
            )),
            Work::Ints(run) => {
                if !group.is_empty() {
                    protocol::write_batch_request(buf, group.iter().copied(), form);
                    group.clear();
                }
                let mut rest = *run;
                while rest.count > 0 {
                    protocol::write_range_batch_request(buf, &rest.split_front(most));
                }
            }
        }
    }
    if !group.is_empty() {
        protocol::write_batch_request(buf, group.iter().copied(), form);
    }
}

fn append_stderr(message: &mut String, tail: &StderrTail) {
    let text = tail.text();
    if !text.is_empty() {
        message.push_str("; stderr: ");
        message.push_str(&truncate(&text, 1000));
    }
}
