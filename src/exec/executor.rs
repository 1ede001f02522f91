//! The executor seam: "run this task's items under its policies and send me events". The
//! pipeline (`run/`) hands an executor a `TaskRun` and the items; the executor reports every
//! item as `Event`s and returns when all are reported. The local pool is one executor; a
//! cluster executor is a sibling, and the pipeline, the writers and `--resume` do not change.

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::{Instant, SystemTime};

use super::control::RunControl;
use super::event::Event;
use super::item_stdout::ItemStdout;
use super::pool;
use super::slow::SlowItems;
use crate::items::Source;
use crate::job::Task;
use crate::record::{ItemRecord, JournalHandle, Rendered, RunHeader, Status};

/// Runs a task's items and reports each one, exactly once, as `Event`s: records in any
/// order, each with its index. Never prints; decides nothing about the run as a whole (that
/// is `RunControl`'s, which it obeys).
pub trait Executor: Sync {
    /// Runs every item of `items` (`total` of them, when known); returns when all are
    /// reported (or the run was stopped and the rest were reported skipped).
    fn run_task(&self, task: &TaskRun<'_>, total: Option<u64>, items: Source);

    /// The run is over; `results_written` when its results file holds every result (what
    /// the executor kept for a rescue, its spool say, may go).
    fn finish(&self, results_written: bool) {
        let _ = results_written;
    }
}

/// Worker processes on this machine: the default executor.
pub struct LocalPool;

impl Executor for LocalPool {
    fn run_task(&self, task: &TaskRun<'_>, total: Option<u64>, items: Source) {
        pool::run_task(task, total, items);
    }
}

/// What an executor knows of the task it runs and of the run around it.
pub struct TaskRun<'a> {
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
    /// Where slots show their items that run long.
    pub slow: &'a SlowItems,
    /// Prefix relayed stderr lines with the task and the item (`--tag`).
    pub tag: bool,
    /// The run's header (a cluster executor's shards journal under it).
    pub header: &'a RunHeader,
    /// When the run started, on the wall clock (shards on other hosts count from it).
    pub started_wall: SystemTime,
    /// The results file, when the run writes one (a cluster executor spools beside it).
    pub results: Option<&'a Path>,
    /// The task's function identity (`--resume` matches results by it).
    pub function_hash: &'a str,
    /// A one-liner's relay of its commands' stdout, in input order (`runjobs exec`).
    pub stdout: Option<&'a dyn ItemStdout>,
}

impl TaskRun<'_> {
    /// Sends finished records to the collector; a closed channel means the run is being torn
    /// down, and there is nobody left to tell.
    /// Passes finished records on. Runs of consecutive ok ones are rendered here, on the
    /// slot's thread, so the collecting thread (one for all the workers) only writes them.
    pub fn report(&self, records: Vec<ItemRecord>) {
        let task = self.task_index;
        // A rendered run is counted as so many plain `ok` items: one whose output was cut
        // goes as a record, so the summary counts it `truncated`.
        let plain_ok = |r: &ItemRecord| r.status == Status::Ok && r.truncated.is_none();
        let ok_run =
            |a: &ItemRecord, b: &ItemRecord| plain_ok(a) && plain_ok(b) && b.index == a.index + 1;
        let mut rest = Vec::new();
        for run in records.chunk_by(ok_run) {
            if plain_ok(&run[0]) {
                let _ = self.events.send(Event::Rendered {
                    task,
                    first: run[0].index,
                    rendered: Rendered::of(run),
                    journaled: None,
                });
            } else {
                rest.extend_from_slice(run);
            }
        }
        if !rest.is_empty() {
            let _ = self.events.send(Event::Finished {
                task,
                records: rest,
            });
        }
    }
}
