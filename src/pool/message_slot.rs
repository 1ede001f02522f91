//! One pool slot driving one long-lived worker process over the JSON-lines protocol.
//!
//! Items are pipelined: up to `limit` requests are in flight, so fast items cost one pipe
//! write per batch, not per item. The limit adapts to item durations, so slow items are
//! sent one at a time and a timeout re-dispatches nothing but the item at fault.
//!
//! A worker that times out, exits, or breaks the protocol is killed with its process group
//! and replaced; only the item it was running is charged with the failure.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;

use super::queue::{WorkItem, WorkQueue};
use super::run::PoolContext;
use crate::event::{Event, ItemRecord, Status};
use crate::job::FunctionKind;
use crate::process::{self, StderrTail};
use crate::protocol::{self, Reply};

/// How often a waiting slot looks at the interrupt flag.
const POLL: Duration = Duration::from_millis(50);
/// Keep about this much work in flight per worker.
const TARGET_IN_FLIGHT: Duration = Duration::from_millis(5);
/// Never more than this many requests in flight per worker.
const MAX_IN_FLIGHT: usize = 1024;

/// An item sent to the worker and not yet answered.
struct InFlight {
    item: WorkItem,
    sent_at: Instant,
}

/// What the stdout reader thread passes on: a chunk of answers read together, and when.
struct Chunk {
    replies: Vec<Result<Reply, String>>,
    at: Instant,
}

struct LiveWorker {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    replies: Receiver<Chunk>,
    reader: JoinHandle<()>,
    stderr: JoinHandle<()>,
    stderr_tail: StderrTail,
    /// When we last heard from the worker: the item at the head of the queue started no
    /// earlier than this, which is what its timeout counts from.
    last_heard: Instant,
}

/// How an attempt ended.
enum Attempt {
    Ok(Box<RawValue>),
    Failed(String),
    TimedOut(String),
}

impl From<Result<Box<RawValue>, String>> for Attempt {
    fn from(result: Result<Box<RawValue>, String>) -> Attempt {
        match result {
            Ok(output) => Attempt::Ok(output),
            Err(message) => Attempt::Failed(message),
        }
    }
}

pub struct MessageSlot<'a> {
    ctx: &'a PoolContext<'a>,
    worker: Option<LiveWorker>,
    in_flight: VecDeque<InFlight>,
    /// Items taken from the queue but not yet written to the worker.
    to_send: VecDeque<WorkItem>,
    limit: usize,
    /// Moving average of item durations, seconds.
    mean_duration: Option<f64>,
    finished: Vec<ItemRecord>,
    request_buf: Vec<u8>,
}

impl<'a> MessageSlot<'a> {
    pub fn new(ctx: &'a PoolContext<'a>) -> MessageSlot<'a> {
        MessageSlot {
            ctx,
            worker: None,
            in_flight: VecDeque::new(),
            to_send: VecDeque::new(),
            limit: 1,
            mean_duration: None,
            finished: Vec::new(),
            request_buf: Vec::new(),
        }
    }

    pub fn run(mut self, queue: &WorkQueue) {
        loop {
            if self.ctx.interrupt.requested() {
                self.stop_for_interrupt(queue);
                break;
            }
            self.dispatch(queue);
            self.flush_records();
            if self.in_flight.is_empty() {
                break;
            }
            self.wait_for_replies(queue);
            self.flush_records();
        }
        self.flush_records();
        self.retire_worker();
    }

    /// Tops up the worker's in-flight requests from the queue, starting a worker if needed.
    fn dispatch(&mut self, queue: &WorkQueue) {
        let room = self
            .limit
            .saturating_sub(self.in_flight.len() + self.to_send.len());
        if room > 0 && self.in_flight.len() <= self.limit / 2 {
            queue.take(room, &mut self.to_send);
        }
        // Items whose input could not even be read fail without running.
        let mut i = 0;
        while i < self.to_send.len() {
            if self.to_send[i].input.is_err() {
                let mut item = self.to_send.remove(i).expect("index is in bounds");
                item.attempts += 1;
                let message = item.input.as_ref().err().cloned().unwrap_or_default();
                self.record(
                    item,
                    Attempt::Failed(message),
                    None,
                    Instant::now(),
                    0.0,
                    queue,
                );
            } else {
                i += 1;
            }
        }
        if self.to_send.is_empty() {
            return;
        }
        if self.worker.is_none() {
            match self.spawn_worker() {
                Ok(worker) => self.worker = Some(worker),
                Err(message) => {
                    // The worker cannot start at all: every item we hold fails with why.
                    let now = Instant::now();
                    while let Some(mut item) = self.to_send.pop_front() {
                        item.attempts += 1;
                        self.record(
                            item,
                            Attempt::Failed(message.clone()),
                            None,
                            now,
                            0.0,
                            queue,
                        );
                    }
                    return;
                }
            }
        }
        self.request_buf.clear();
        let now = Instant::now();
        let mut sent = Vec::with_capacity(self.to_send.len());
        while let Some(mut item) = self.to_send.pop_front() {
            let input = item
                .input
                .as_ref()
                .expect("unreadable inputs were failed above");
            protocol::write_request(&mut self.request_buf, item.index, input);
            item.attempts += 1;
            sent.push(item);
        }
        let worker = self.worker.as_mut().expect("a worker was started above");
        if self.in_flight.is_empty() {
            worker.last_heard = now;
        }
        self.in_flight
            .extend(sent.into_iter().map(|item| InFlight { item, sent_at: now }));
        // A failed write means the worker died; its reader reports that as end of stream,
        // which fails the head item and hands the rest back.
        let _ = worker.stdin.write_all(&self.request_buf);
    }

    fn wait_for_replies(&mut self, queue: &WorkQueue) {
        let timeout = self.ctx.task.timeout;
        let Some(worker) = self.worker.as_ref() else {
            return;
        };
        let deadline = timeout.map(|t| worker.last_heard + t);
        let wait = deadline.map_or(POLL, |d| {
            d.saturating_duration_since(Instant::now()).min(POLL)
        });
        match worker.replies.recv_timeout(wait) {
            Ok(chunk) => self.on_chunk(chunk, queue),
            Err(RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    self.on_timeout(queue);
                }
            }
            Err(RecvTimeoutError::Disconnected) => self.on_worker_gone(queue),
        }
    }

    fn on_chunk(&mut self, chunk: Chunk, queue: &WorkQueue) {
        let pid = self.worker.as_ref().map(|w| w.pid);
        for reply in chunk.replies {
            let response = match reply {
                Ok(response) => response,
                Err(line) => {
                    let shown = truncate(&line, 200);
                    self.replace_worker(
                        queue,
                        Attempt::Failed(format!(
                            "the worker broke the protocol: it printed `{shown}`; it was replaced"
                        )),
                    );
                    return;
                }
            };
            let Some(position) = self
                .in_flight
                .iter()
                .position(|f| f.item.index == response.id)
            else {
                self.replace_worker(
                    queue,
                    Attempt::Failed(format!(
                        "the worker answered id {} which was not asked; it was replaced",
                        response.id
                    )),
                );
                return;
            };
            let InFlight { item, sent_at } = self
                .in_flight
                .remove(position)
                .expect("position is in bounds");
            let measured = chunk.at.saturating_duration_since(sent_at).as_secs_f64();
            let duration = response.duration_s.clamp(0.0, measured);
            let attempt = Attempt::from(response.result);
            self.learn_duration(duration);
            self.record(item, attempt, pid, chunk.at, duration, queue);
        }
        if let Some(worker) = self.worker.as_mut() {
            worker.last_heard = chunk.at;
        }
    }

    /// Adapts how many requests stay in flight: enough for ~5 ms of work, growing gradually.
    fn learn_duration(&mut self, seconds: f64) {
        let mean = match self.mean_duration {
            Some(mean) => mean * 0.9 + seconds * 0.1,
            None => seconds,
        };
        self.mean_duration = Some(mean);
        let wanted =
            (TARGET_IN_FLIGHT.as_secs_f64() / mean.max(1e-9)).clamp(1.0, MAX_IN_FLIGHT as f64);
        self.limit = (wanted as usize).min(self.limit.saturating_mul(2)).max(1);
    }

    fn on_timeout(&mut self, queue: &WorkQueue) {
        // An answer may have arrived just as the deadline passed.
        if self.drain_ready(queue) {
            return;
        }
        let timeout = self.ctx.task.timeout.unwrap_or_default();
        self.replace_worker(
            queue,
            Attempt::TimedOut(format!(
                "timed out after {}; its process group was killed",
                humantime::format_duration(timeout)
            )),
        );
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
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        // Its group may still hold grandchildren; kill them before reaping the leader.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&worker.child),
            rustix::process::Signal::KILL,
        );
        let status = worker.child.wait().map(process::describe_status);
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
        let mut message = format!(
            "the worker process (pid {}) ended unexpectedly: {}",
            worker.pid,
            status.unwrap_or_else(|e| e.to_string())
        );
        append_stderr(&mut message, &worker.stderr_tail);
        self.charge_head(queue, Attempt::Failed(message), Some(worker.pid));
    }

    /// Kills the worker (whole group), charges the head item with `attempt`, and hands the
    /// other in-flight items back; a new worker starts on the next dispatch.
    fn replace_worker(&mut self, queue: &WorkQueue, attempt: Attempt) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let grace = self.ctx.task.kill_grace;
        let interrupt = self.ctx.interrupt;
        process::stop_group(&mut worker.child, grace, &|| interrupt.forced());
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
        // Answers that were already on their way still count.
        while let Ok(chunk) = worker.replies.try_recv() {
            self.worker_answers_after_death(chunk, worker.pid, queue);
        }
        let attempt = match attempt {
            Attempt::Failed(mut message) => {
                append_stderr(&mut message, &worker.stderr_tail);
                Attempt::Failed(message)
            }
            other => other,
        };
        self.charge_head(queue, attempt, Some(worker.pid));
    }

    /// Like `on_chunk` for a worker that is already gone (no protocol checks: only real
    /// answers to in-flight items are kept).
    fn worker_answers_after_death(&mut self, chunk: Chunk, pid: u32, queue: &WorkQueue) {
        for response in chunk.replies.into_iter().flatten() {
            if let Some(position) = self
                .in_flight
                .iter()
                .position(|f| f.item.index == response.id)
            {
                let InFlight { item, .. } = self
                    .in_flight
                    .remove(position)
                    .expect("position is in bounds");
                let duration = response.duration_s;
                let attempt = Attempt::from(response.result);
                self.record(item, attempt, Some(pid), chunk.at, duration, queue);
            }
        }
    }

    /// The oldest in-flight item was running when the worker failed: it takes the blame.
    /// The others never started; they go back to the queue uncharged.
    fn charge_head(&mut self, queue: &WorkQueue, attempt: Attempt, pid: Option<u32>) {
        let now = Instant::now();
        if let Some(InFlight { item, sent_at }) = self.in_flight.pop_front() {
            let duration = now.saturating_duration_since(sent_at).as_secs_f64();
            self.record(item, attempt, pid, now, duration, queue);
        }
        let rest = self.in_flight.drain(..).map(|mut f| {
            f.item.attempts -= 1;
            f.item
        });
        queue.put_back(rest.collect::<Vec<_>>().into_iter());
        self.limit = 1;
    }

    /// First SIGINT/SIGTERM: stop the worker's group (grace, then SIGKILL); the item it was
    /// running fails as interrupted, the rest go back to be reported skipped.
    fn stop_for_interrupt(&mut self, queue: &WorkQueue) {
        self.drain_ready(queue);
        if self.worker.is_some() && !self.in_flight.is_empty() {
            self.replace_worker(
                queue,
                Attempt::Failed("interrupted: the run was stopped while this item ran".to_owned()),
            );
        }
        queue.put_back(std::mem::take(&mut self.to_send).into_iter());
        // A failed item may have been handed back for a retry: it is skipped now.
        self.flush_records();
    }

    /// Final bookkeeping for one attempt: a failure with attempts left goes back to the
    /// queue; anything else becomes a record.
    fn record(
        &mut self,
        item: WorkItem,
        attempt: Attempt,
        pid: Option<u32>,
        ended: Instant,
        duration: f64,
        queue: &WorkQueue,
    ) {
        let retry_left = item.attempts <= self.ctx.task.retry.count;
        let (status, output, error) = match attempt {
            Attempt::Ok(output) => (Status::Ok, Some(output), None),
            Attempt::Failed(message) => (Status::Failed, None, Some(message)),
            Attempt::TimedOut(message) => (Status::TimedOut, None, Some(message)),
        };
        if status != Status::Ok && retry_left && !self.ctx.interrupt.requested() {
            queue.put_back(std::iter::once(item));
            return;
        }
        let started = ended
            .checked_sub(Duration::from_secs_f64(duration.max(0.0)))
            .unwrap_or(ended)
            .saturating_duration_since(self.ctx.run_start)
            .as_secs_f64();
        self.finished.push(ItemRecord {
            index: item.index,
            input: item.input.unwrap_or(Value::Null),
            status,
            output,
            error,
            attempts: item.attempts,
            started_s: started,
            duration_s: duration,
            worker: pid,
        });
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
        let exited = matches!(
            wait_timeout::ChildExt::wait_timeout(&mut worker.child, grace),
            Ok(Some(_))
        );
        if !exited {
            process::stop_group(&mut worker.child, Duration::ZERO, &|| true);
        } else {
            // The leader is gone; anything it left in its group goes too.
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&worker.child),
                rustix::process::Signal::KILL,
            );
        }
        let _ = worker.reader.join();
        let _ = worker.stderr.join();
    }

    fn spawn_worker(&self) -> Result<LiveWorker, String> {
        let mut cmd = worker_command(&self.ctx.task.function.kind)?;
        cmd.current_dir(self.ctx.dir);
        let mut child = process::spawn_in_group(&mut cmd)
            .map_err(|e| format!("cannot start the worker process: {e}"))?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, replies) = mpsc::channel();
        let reader = thread::Builder::new()
            .name(format!("worker-{pid}-stdout"))
            .spawn(move || read_replies(stdout, tx))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        let stderr_tail = StderrTail::default();
        let events = self.ctx.events.clone();
        let stderr = process::drain_stderr(stderr, stderr_tail.clone(), move |line| {
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
        })
    }
}

/// The command that starts a worker for this function kind.
fn worker_command(kind: &FunctionKind) -> Result<Command, String> {
    match kind {
        FunctionKind::Builtin { name, options } => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the runjobs executable: {e}"))?;
            let mut cmd = Command::new(exe);
            let options = serde_json::json!({ "template": options.template });
            cmd.args([
                "__worker",
                "--builtin",
                name,
                "--options",
                &options.to_string(),
            ]);
            Ok(cmd)
        }
        other => Err(format!("not a message-worker function: {other:?}")),
    }
}

/// Reads answer lines and passes them on in chunks (all lines already buffered go together),
/// parsing here so the slot thread only does bookkeeping. Ends at end of stream, which drops
/// the sender: the slot sees that as the worker going away.
fn read_replies(stdout: ChildStdout, tx: mpsc::Sender<Chunk>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = String::new();
    let mut replies = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = line.trim_end();
                if !text.is_empty() {
                    replies.push(protocol::parse_reply(text).ok_or_else(|| text.to_owned()));
                }
            }
        }
        if reader.buffer().is_empty() && !replies.is_empty() {
            let chunk = Chunk {
                replies: std::mem::take(&mut replies),
                at: Instant::now(),
            };
            if tx.send(chunk).is_err() {
                return;
            }
        }
    }
    if !replies.is_empty() {
        let _ = tx.send(Chunk {
            replies,
            at: Instant::now(),
        });
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn append_stderr(message: &mut String, tail: &StderrTail) {
    let text = tail.text();
    if !text.is_empty() {
        message.push_str("; stderr: ");
        message.push_str(&truncate(&text, 1000));
    }
}
