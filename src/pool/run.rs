//! Runs one task: spreads its items over `workers` slots on scoped threads, then reports
//! the items a stopped run never started as skipped.

use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::Instant;

use super::command_slot::CommandSlot;
use super::message_slot::MessageSlot;
use super::queue::{Source, WorkQueue};
use crate::control::RunControl;
use crate::event::{Event, ItemRecord, Status};
use crate::job::{FunctionKind, Task};
use crate::journal::JournalHandle;

/// Everything a slot needs to know about the run it belongs to.
pub struct PoolContext<'a> {
    /// The job's name (`RUNJOBS_JOB` for the function's processes).
    pub job: &'a str,
    pub task_index: usize,
    pub task: &'a Task,
    /// `started_s` of every result counts from here.
    pub run_start: Instant,
    pub events: SyncSender<Event>,
    pub control: &'a RunControl<'a>,
    /// The run's journal, for builtin workers to append their records to.
    pub journal: Option<JournalHandle>,
}

impl PoolContext<'_> {
    /// Sends finished records to the collector; a closed channel means the run is being torn
    /// down, and there is nobody left to tell.
    pub fn report(&self, records: Vec<ItemRecord>) {
        if !records.is_empty() {
            let _ = self.events.send(Event::Finished {
                task: self.task_index,
                records,
            });
        }
    }
}

/// Runs every item of `source` (`total` of them, when known); returns when all are reported
/// (or the run was stopped and the rest were reported skipped).
pub fn run_task(ctx: &PoolContext<'_>, total: Option<u64>, source: Source) {
    let slots = match total {
        Some(total) => ctx
            .task
            .workers
            .min(usize::try_from(total).unwrap_or(usize::MAX)),
        None => ctx.task.workers,
    };
    let queue = WorkQueue::new(source);
    thread::scope(|scope| {
        for _ in 0..slots {
            match &ctx.task.function.kind {
                FunctionKind::Command(spec) => {
                    scope.spawn(|| CommandSlot::new(ctx, spec).run(&queue))
                }
                _ => scope.spawn(|| MessageSlot::new(ctx).run(&queue)),
            };
        }
    });
    report_skipped(ctx, &queue);
}

/// Whatever is still queued never started: the run stopped early.
fn report_skipped(ctx: &PoolContext<'_>, queue: &WorkQueue) {
    let mut batch = Vec::new();
    queue.drain(|item| {
        batch.push(ItemRecord {
            index: item.index,
            input: item.input.unwrap_or(serde_json::Value::Null),
            status: Status::Skipped,
            output: None,
            error: Some(ctx.control.skipped_message()),
            attempts: item.attempts,
            started_s: 0.0,
            duration_s: 0.0,
            worker: None,
            reused_from: None,
        });
        if batch.len() >= 4096 {
            ctx.report(std::mem::take(&mut batch));
        }
    });
    ctx.report(batch);
}
