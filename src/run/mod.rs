//! The per-job pipeline: load and check every job, decide the output and its lock, expand
//! each task's items (skipping what `--resume` reuses), hand them to an executor, collect its
//! events into the journal, the writers and the progress display, and settle the results
//! file, keeping the live state `runjobs status` reads meanwhile. Also the `validate` and
//! `functions` commands and the dry-run plan.

mod collector;
mod commands;
mod hooks;
mod job_run;
mod live;
mod pipeline;
mod plan;
mod reuse;
mod target;

pub use commands::{list_functions, validate};
pub use pipeline::{OneLinerRun, run, run_loaded};
pub use target::own_lock_path;
