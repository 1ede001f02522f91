//! One pool slot running a `command` function: a new process (in its own process group) per
//! item, like xargs -P and GNU parallel.
//!
//! The pipes are drained on threads started before waiting, so a child (or a grandchild)
//! filling a pipe never blocks the run; captured stdout is capped with a truncation mark.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc::{self, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::Value;
use serde_json::value::RawValue;
use wait_timeout::ChildExt;

use super::attempt::{self, Attempt, AttemptInfo, Failure};
use super::queue::{Taken, WorkItem, WorkQueue};
use crate::exec::Event;
use crate::exec::TaskRun;
use crate::exec::function::command::{self, ItemCommand};
use crate::job::{CommandSpec, StdoutMode};
use crate::process::pause;
use crate::process::{self, StderrTail, Tether};
use crate::record::ItemRecord;

/// How often a waiting slot looks at the run's stop conditions.
const POLL: Duration = Duration::from_millis(50);
/// Captured stdout per item; the rest is counted and dropped.
pub const STDOUT_CAP: usize = 1024 * 1024;

pub struct CommandSlot<'a> {
    ctx: &'a TaskRun<'a>,
    spec: &'a CommandSpec,
    finished: Vec<ItemRecord>,
    /// This slot's number on the board of slow items.
    slot: usize,
}

/// What came back on stdout: at most `STDOUT_CAP` bytes, and how many more there were.
struct Captured {
    bytes: Vec<u8>,
    dropped: u64,
}

impl<'a> CommandSlot<'a> {
    pub fn new(ctx: &'a TaskRun<'a>, spec: &'a CommandSpec) -> CommandSlot<'a> {
        CommandSlot {
            ctx,
            spec,
            finished: Vec::new(),
            slot: ctx.slow.slot(),
        }
    }

    pub fn run(mut self, queue: &WorkQueue) {
        let drainers = Drainers::new(self.ctx.events.clone());
        let mut batch = VecDeque::with_capacity(1);
        while self.ctx.control.may_dispatch() {
            match queue.take(1, &mut batch) {
                Taken::Items(_) => {}
                Taken::WaitUntil(at) => {
                    thread::sleep(at.saturating_duration_since(Instant::now()).min(POLL));
                    continue;
                }
                Taken::Exhausted => break,
            }
            while let Some(item) = batch.pop_front() {
                self.run_item(item, queue, &drainers);
            }
            // One report per item: commands are slow enough that batching buys nothing.
            self.ctx.report(std::mem::take(&mut self.finished));
        }
    }

    fn run_item(&mut self, mut item: WorkItem, queue: &WorkQueue, drainers: &Drainers) {
        item.attempts += 1;
        let started = Instant::now();
        let input = match &item.input {
            Ok(input) => input,
            Err(message) => {
                let failure = Failure::BadInput(message.clone());
                return self.conclude(queue, item, Attempt::Failed(failure), None, started);
            }
        };
        let built = command::build(self.spec, self.ctx.task, self.ctx.job, item.index, input);
        let ItemCommand { mut command, stdin } = match built {
            Ok(built) => built,
            Err(message) => {
                return self.conclude(
                    queue,
                    item,
                    Attempt::Failed(Failure::Error(message)),
                    None,
                    started,
                );
            }
        };
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child =
            match process::spawn_in_group(&mut command, &self.ctx.task.limits, Tether::Loose) {
                Ok(child) => child,
                Err(e) => {
                    let failure = Failure::Error(format!("cannot run `{program}`: {e}"));
                    return self.conclude(queue, item, Attempt::Failed(failure), None, started);
                }
            };
        let pid = child.id();
        let feeder = stdin.and_then(|data| {
            let mut pipe = child.stdin.take()?;
            // A child that never reads its stdin must not block us: write on a thread.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        });
        let tail = StderrTail::default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let tag = self
            .ctx
            .tag
            .then(|| format!("[{} #{}]", self.ctx.task.name, item.index));
        drainers.start(stdout, stderr, tail.clone(), tag);

        let ended = self.wait(&mut child, started, item.index, input);
        // Whatever the item left running in its group (a backgrounded grandchild holding
        // the pipes) goes now, or the readers would wait for it.
        let _ = kill_process_group(Pid::from_child(&child), Signal::KILL);
        let captured = drainers.finish();
        if let Some(feeder) = feeder {
            let _ = feeder.join();
        }
        let attempt = match ended {
            Ended::Exited(status) if status.success() => self.output(captured),
            Ended::Exited(status) => Attempt::Failed(self.failure(status, &tail)),
            Ended::TimedOut(timeout) => Attempt::Failed(Failure::TimedOut(format!(
                "timed out after {}; its process group was killed",
                humantime::format_duration(timeout)
            ))),
            Ended::Interrupted => {
                Attempt::Failed(Failure::Interrupted(self.ctx.control.stopped_message()))
            }
        };
        self.conclude(queue, item, attempt, Some(pid), started);
    }

    /// Waits for the child, its timeout or an interrupt; stops its group on the latter two.
    /// An item that runs long is shown as slow meanwhile.
    fn wait(&self, child: &mut Child, started: Instant, index: u64, input: &Value) -> Ended {
        let mut slow = false;
        let ended = self.wait_for(child, started, || {
            slow = self
                .ctx
                .slow
                .check(self.slot, self.ctx.task_index, index, input, started);
        });
        if slow {
            self.ctx.slow.clear(self.slot);
        }
        ended
    }

    fn wait_for(&self, child: &mut Child, started: Instant, mut waiting: impl FnMut()) -> Ended {
        loop {
            // Time paused (Ctrl-Z) does not count.
            let deadline = self
                .ctx
                .task
                .timeout
                .map(|t| pause::shifted(started, started + t));
            let now = Instant::now();
            if let Some(deadline) = deadline
                && now >= deadline
            {
                self.stop(child);
                return Ended::TimedOut(self.ctx.task.timeout.unwrap_or_default());
            }
            if self.ctx.control.must_stop_running() {
                self.stop(child);
                return Ended::Interrupted;
            }
            let wait = deadline.map_or(POLL, |d| d.saturating_duration_since(now).min(POLL));
            match child.wait_timeout(wait) {
                Ok(Some(status)) => return Ended::Exited(status),
                Ok(None) => waiting(),
                Err(_) => {
                    return Ended::Exited(process::stop_group(child, Duration::ZERO, &|| true));
                }
            }
        }
    }

    fn stop(&self, child: &mut Child) {
        let control = self.ctx.control;
        process::stop_group(child, self.ctx.task.kill_grace, &|| control.forced());
    }

    /// A successful exit: stdout becomes the output as `stdout = ...` says.
    fn output(&self, captured: Captured) -> Attempt {
        let truncated = captured.dropped > 0;
        let text = String::from_utf8_lossy(&captured.bytes);
        let value = match self.spec.stdout {
            StdoutMode::Ignore => Value::Null,
            StdoutMode::Text => {
                let mut text = text.trim().to_owned();
                if truncated {
                    text.push_str(&format!("…[truncated: {} more bytes]", captured.dropped));
                }
                Value::String(text)
            }
            StdoutMode::Lines => {
                let mut lines: Vec<Value> = text
                    .lines()
                    .map(|l| Value::String(l.trim_end_matches('\r').to_owned()))
                    .collect();
                if truncated {
                    lines.push(Value::String(format!(
                        "…[truncated: {} more bytes]",
                        captured.dropped
                    )));
                }
                Value::Array(lines)
            }
            StdoutMode::Json => {
                if truncated {
                    return Attempt::Failed(Failure::Error(format!(
                        "stdout is over the {} MiB cap ({} more bytes), so it cannot be parsed as JSON",
                        STDOUT_CAP / (1024 * 1024),
                        captured.dropped
                    )));
                }
                match serde_json::from_str::<Box<RawValue>>(text.trim()) {
                    Ok(raw) => return Attempt::Ok(raw),
                    Err(e) => {
                        let shown: String = text.trim().chars().take(200).collect();
                        return Attempt::Failed(Failure::Error(format!(
                            "stdout is not valid JSON ({e}): `{shown}`"
                        )));
                    }
                }
            }
        };
        let raw = serde_json::value::to_raw_value(&value).expect("a JSON value always serializes");
        Attempt::Ok(raw)
    }

    /// A non-zero exit or a death by signal, with the tail of stderr.
    fn failure(&self, status: ExitStatus, tail: &StderrTail) -> Failure {
        let mut message = process::describe_status(status);
        let stderr = tail.text();
        if !stderr.is_empty() {
            message.push_str("; stderr: ");
            message.push_str(&stderr);
        }
        if let Some(bytes) = self.ctx.task.limits.memory {
            message.push_str(&format!(
                " (the command runs under limits.memory = {} MiB)",
                bytes / (1024 * 1024)
            ));
        }
        match status.code() {
            Some(code) => Failure::Exited { code, message },
            None => Failure::Crashed(message),
        }
    }

    fn conclude(
        &mut self,
        queue: &WorkQueue,
        item: WorkItem,
        attempt: Attempt,
        pid: Option<u32>,
        started: Instant,
    ) {
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started).as_secs_f64();
        let info = AttemptInfo {
            pid,
            ended,
            duration,
        };
        attempt::conclude(self.ctx, queue, item, attempt, info, &mut self.finished);
    }
}

/// How waiting for a child ended.
enum Ended {
    Exited(ExitStatus),
    TimedOut(Duration),
    Interrupted,
}

/// Two long-lived threads per slot that drain each item's stdout and stderr (started before
/// waiting, so a full pipe never blocks the child). A thread per pipe per item would cost
/// more than running a small command.
struct Drainers {
    stdout: mpsc::Sender<ChildStdout>,
    captured: mpsc::Receiver<Captured>,
    stderr: mpsc::Sender<(ChildStderr, StderrTail, Option<String>)>,
    relayed: mpsc::Receiver<()>,
}

impl Drainers {
    fn new(events: SyncSender<Event>) -> Drainers {
        let (stdout, stdout_jobs) = mpsc::channel::<ChildStdout>();
        let (captured_tx, captured) = mpsc::channel();
        thread::Builder::new()
            .name("command-stdout".into())
            .spawn(move || {
                for pipe in stdout_jobs {
                    if captured_tx.send(capture(pipe)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning a thread only fails when the system is out of resources");
        let (stderr, stderr_jobs) = mpsc::channel::<(ChildStderr, StderrTail, Option<String>)>();
        let (relayed_tx, relayed) = mpsc::channel();
        thread::Builder::new()
            .name("command-stderr".into())
            .spawn(move || {
                for (pipe, tail, tag) in stderr_jobs {
                    let relay = |line: String| {
                        let line = match &tag {
                            Some(tag) => format!("{tag} {line}"),
                            None => line,
                        };
                        let _ = events.send(Event::Log(line));
                    };
                    process::relay_stderr(pipe, &tail, &relay);
                    if relayed_tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning a thread only fails when the system is out of resources");
        Drainers {
            stdout,
            captured,
            stderr,
            relayed,
        }
    }

    /// Drains an item's pipes; `tag` prefixes each line it writes to stderr (`--tag`).
    fn start(
        &self,
        stdout: ChildStdout,
        stderr: ChildStderr,
        tail: StderrTail,
        tag: Option<String>,
    ) {
        // The threads live as long as `self`, so these sends cannot fail.
        let _ = self.stdout.send(stdout);
        let _ = self.stderr.send((stderr, tail, tag));
    }

    /// Waits until both pipes reached their end (every holder closed them).
    fn finish(&self) -> Captured {
        let _ = self.relayed.recv();
        self.captured.recv().unwrap_or(Captured {
            bytes: Vec::new(),
            dropped: 0,
        })
    }
}

/// Reads a child's stdout to the end, keeping the first `STDOUT_CAP` bytes.
fn capture(mut stdout: impl Read) -> Captured {
    let mut bytes = Vec::new();
    let mut dropped = 0u64;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = STDOUT_CAP.saturating_sub(bytes.len());
                let kept = n.min(room);
                bytes.extend_from_slice(&buf[..kept]);
                dropped += (n - kept) as u64;
            }
        }
    }
    Captured { bytes, dropped }
}
