//! What an executor reports while a task runs: the one message type between execution and
//! the pipeline that shows and writes results.

use crate::record::{ItemRecord, JournalRange, Rendered};

/// Messages from the pool (and the workers' stderr) to the thread that owns the terminal and
/// the output file.
#[derive(Debug)]
pub enum Event {
    /// Items reached their final state (after any retries).
    Finished {
        task: usize,
        records: Vec<ItemRecord>,
    },
    /// `ok` results of consecutive items from `first` on, rendered by the worker that ran
    /// them (one line each, as `Rendered::render` writes them).
    Rendered {
        task: usize,
        first: u64,
        rendered: Rendered,
        /// Where the slot that rendered them journaled them already (an `ok_run` line);
        /// `None`: they are for the collector to journal.
        journaled: Option<JournalRange>,
    },
    /// `ok` results of the `count` consecutive items from `first` on, which the worker that
    /// ran them appended to the journal itself.
    Journaled {
        task: usize,
        first: u64,
        count: u64,
        range: JournalRange,
    },
    /// A long-lived worker of the task was reaped, having used `cpu_s` of CPU time in all
    /// (start-up and idle time included): what the task's CPU total is made of.
    WorkerEnded { cpu_s: f64 },
    /// A line a worker wrote to its stderr.
    Log(String),
}
