//! Runs one task: spreads its items over `workers` slots on scoped threads, then reports
//! the items a stopped run never started as skipped.

use std::thread;

use super::command_slot::CommandSlot;
use super::message_slot::MessageSlot;
use super::queue::{Source, WorkQueue};
use crate::exec::TaskRun;
use crate::job::FunctionKind;
use crate::record::{ItemRecord, Status};

/// Runs every item of `source` (`total` of them, when known); returns when all are reported
/// (or the run was stopped and the rest were reported skipped).
pub fn run_task(ctx: &TaskRun<'_>, total: Option<u64>, source: Source) {
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
fn report_skipped(ctx: &TaskRun<'_>, queue: &WorkQueue) {
    let mut batch = Vec::new();
    queue.drain(|item| {
        batch.push(ItemRecord::without_result(
            item.index,
            item.input.unwrap_or(serde_json::Value::Null),
            Status::Skipped,
            ctx.control.skipped_message(),
            item.attempts,
        ));
        if batch.len() >= 4096 {
            ctx.report(std::mem::take(&mut batch));
        }
    });
    ctx.report(batch);
}
