//! One pool slot running a `command` function: a new process (in its own process group) per
//! item, like xargs -P and GNU parallel.
//!
//! The slot's thread starts each process (`Launcher`) and watches it to its end (`ItemChild`):
//! one poll loop drains its pipes as they fill, so a child (or a grandchild) filling a pipe
//! never blocks the run; captured stdout is capped with a truncation mark.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;

use super::attempt::{self, Attempt, AttemptInfo, Failure, Printed};
use super::queue::{Taken, WorkItem, WorkQueue};
use crate::exec::Event;
use crate::exec::TaskRun;
use crate::exec::function::command::{self, ItemCommand};
use crate::job::{CommandSpec, StdoutMode};
use crate::process::pause;
use crate::process::{self, Ending, Finished, Launcher, Supervisor, Usage};
use crate::record::{ItemRecord, Truncated};

/// How often a waiting slot looks at the run's stop conditions.
const POLL: Duration = Duration::from_millis(50);

pub struct CommandSlot<'a> {
    ctx: &'a TaskRun<'a>,
    spec: &'a CommandSpec,
    finished: Vec<ItemRecord>,
    /// This slot's number on the board of slow items.
    slot: usize,
}

/// What an attempt's process left besides its outcome (nothing, when it never started).
#[derive(Default)]
struct Ran {
    pid: Option<u32>,
    usage: Option<Usage>,
    truncated: Option<Truncated>,
    printed: Printed,
}

/// What came back on stdout: at most `max_output` bytes, and how many more there were.
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
        let env = command::task_env(self.ctx.task, self.ctx.job);
        let task = self.ctx.task;
        let mut launcher = Launcher::new(env, &command::ITEM_VARS, &task.cwd, task.limits)
            .map_err(|e| format!("cannot prepare the command's processes: {e}"));
        let mut buf = vec![0u8; 64 * 1024];
        let mut batch = VecDeque::with_capacity(1);
        while self.ctx.control.may_dispatch() {
            // A closed admission gate holds new items back (running ones go on).
            if let Some(until) = self.ctx.control.admission_closed()
                && queue.has_work()
            {
                thread::sleep(until.saturating_duration_since(Instant::now()).min(POLL));
                continue;
            }
            match queue.take(1, &mut batch) {
                Taken::Items(_) => {}
                Taken::WaitUntil(at) => {
                    thread::sleep(at.saturating_duration_since(Instant::now()).min(POLL));
                    continue;
                }
                Taken::Exhausted => break,
            }
            while let Some(item) = batch.pop_front() {
                self.run_item(item, queue, &mut launcher, &mut buf);
            }
            // One report per item: commands are slow enough that batching buys nothing.
            self.ctx.report(std::mem::take(&mut self.finished));
        }
    }

    fn run_item(
        &mut self,
        mut item: WorkItem,
        queue: &WorkQueue,
        launcher: &mut Result<Launcher, String>,
        buf: &mut [u8],
    ) {
        item.attempts += 1;
        let started = Instant::now();
        let fail = |message: String| Attempt::Failed(Failure::Error(message));
        let input = match &item.input {
            Ok(input) => input,
            Err(message) => {
                let failure = Failure::BadInput(message.clone());
                return self.conclude(queue, item, Attempt::Failed(failure), started);
            }
        };
        let launcher = match launcher {
            Ok(launcher) => launcher,
            Err(message) => {
                let attempt = fail(message.clone());
                return self.conclude(queue, item, attempt, started);
            }
        };
        let built = command::build(self.spec, self.ctx.task, item.index, input);
        let built: ItemCommand = match built {
            Ok(built) => built,
            Err(message) => return self.conclude(queue, item, fail(message), started),
        };
        let stdin = built.stdin.as_deref();
        if let Some(relay) = self.ctx.stdout {
            relay.attempt(item.index, input);
        }
        let child = match launcher.launch(&built.argv, &built.item_env(), stdin.is_some()) {
            Ok(child) => child,
            Err(e) => {
                let attempt = fail(format!("cannot run `{}`: {e}", built.argv[0]));
                return self.conclude(queue, item, attempt, started);
            }
        };
        let pid = child.pid();
        let mut watcher = Watcher {
            slot: self,
            started,
            index: item.index,
            input,
            slow: false,
        };
        let finished = child.watch(
            stdin.unwrap_or_default(),
            self.spec.max_output,
            &mut watcher,
            buf,
        );
        if watcher.slow {
            self.ctx.slow.clear(self.slot);
        }
        // A failure keeps what it printed; so may a success whose stdout is not the JSON
        // it should be (`conclude` drops it for an item that ends ok).
        let succeeded = finished.ending == Ending::Exited && finished.status.success();
        let may_fail = !succeeded || self.spec.stdout == StdoutMode::Json;
        let ran = Ran {
            pid: Some(pid),
            usage: finished.usage,
            truncated: self.truncated(&finished),
            printed: if may_fail {
                self.printed(&finished)
            } else {
                Printed::default()
            },
        };
        let attempt = self.attempt(finished);
        self.conclude_with(queue, item, attempt, started, ran);
    }

    /// Whether the output was cut: stdout past the cap, unless stdout is ignored anyway.
    fn truncated(&self, finished: &Finished) -> Option<Truncated> {
        let cut = finished.stdout_dropped > 0 && self.spec.stdout != StdoutMode::Ignore;
        cut.then_some(Truncated {
            stdout: Some(finished.stdout_dropped),
        })
    }

    /// What a command printed, for the record of an item that failed.
    fn printed(&self, finished: &Finished) -> Printed {
        let stdout = (self.spec.stdout != StdoutMode::Ignore)
            .then(|| String::from_utf8_lossy(&finished.stdout).trim().to_owned())
            .filter(|text| !text.is_empty())
            .map(|mut text| {
                if finished.stdout_dropped > 0 {
                    text.push_str(&format!(
                        "…[truncated: {} more bytes]",
                        finished.stdout_dropped
                    ));
                }
                text
            });
        let stderr = Some(finished.stderr_tail.clone()).filter(|tail| !tail.is_empty());
        Printed { stdout, stderr }
    }

    /// What a watched child's end makes of the attempt.
    fn attempt(&self, finished: Finished) -> Attempt {
        match finished.ending {
            Ending::Exited if finished.status.success() => self.output(Captured {
                bytes: finished.stdout,
                dropped: finished.stdout_dropped,
            }),
            Ending::Exited => Attempt::Failed(self.failure(finished.status, &finished.stderr_tail)),
            Ending::TimedOut => Attempt::Failed(Failure::TimedOut(format!(
                "timed out after {}; its process group was killed",
                humantime::format_duration(self.ctx.task.timeout.unwrap_or_default())
            ))),
            Ending::Stopped => {
                Attempt::Failed(Failure::Interrupted(self.ctx.control.stopped_message()))
            }
        }
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
                        "stdout is over the `max_output` cap of {} ({} more bytes), so it \
                         cannot be parsed as JSON; raise `max_output` on the function",
                        process::machine::human_bytes(self.spec.max_output as u64),
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
    fn failure(&self, status: ExitStatus, stderr: &str) -> Failure {
        let mut message = process::describe_status(status);
        if !stderr.is_empty() {
            message.push_str("; stderr: ");
            message.push_str(stderr);
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

    /// Ends an attempt that never got a process (it could not be prepared or started).
    fn conclude(&mut self, queue: &WorkQueue, item: WorkItem, attempt: Attempt, started: Instant) {
        self.conclude_with(queue, item, attempt, started, Ran::default());
    }

    fn conclude_with(
        &mut self,
        queue: &WorkQueue,
        item: WorkItem,
        attempt: Attempt,
        started: Instant,
        Ran {
            pid,
            usage,
            truncated,
            printed,
        }: Ran,
    ) {
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started).as_secs_f64();
        let info = AttemptInfo {
            pid,
            ended,
            duration,
            usage,
            truncated,
            printed,
        };
        attempt::conclude(self.ctx, queue, item, attempt, info, &mut self.finished);
    }
}

/// What a command's process asks of the run while it runs.
struct Watcher<'s, 'a> {
    slot: &'s CommandSlot<'a>,
    started: Instant,
    index: u64,
    input: &'s Value,
    /// It was shown on the board of slow items.
    slow: bool,
}

impl Supervisor for Watcher<'_, '_> {
    fn deadline(&self) -> Option<Instant> {
        // Time paused (Ctrl-Z) does not count.
        let started = self.started;
        let timeout = self.slot.ctx.task.timeout?;
        Some(pause::shifted(started, started + timeout))
    }

    fn must_stop(&self) -> bool {
        self.slot.ctx.control.must_stop_running()
    }

    fn forced(&self) -> bool {
        self.slot.ctx.control.forced()
    }

    fn grace(&self) -> Duration {
        self.slot.ctx.task.kill_grace
    }

    fn waiting(&mut self) {
        let ctx = self.slot.ctx;
        let slot = self.slot.slot;
        self.slow = ctx
            .slow
            .check(slot, ctx.task_index, self.index, self.input, self.started);
    }

    fn line(&mut self, line: String) {
        let ctx = self.slot.ctx;
        let line = match (ctx.tag, ctx.stdout) {
            // A one-liner tags as GNU parallel does: the input, then a TAB.
            (true, Some(relay)) => format!("{}{line}", relay.tag(self.input)),
            (true, None) => format!("[{} #{}] {line}", ctx.task.name, self.index),
            (false, _) => line,
        };
        let _ = ctx.events.send(Event::Log(line));
    }

    fn stdout(&mut self, bytes: &[u8]) {
        if let Some(relay) = self.slot.ctx.stdout {
            relay.write(self.index, bytes);
        }
    }
}
