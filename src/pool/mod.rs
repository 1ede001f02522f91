//! The worker pool: N slots over one work queue, each driving a worker process; reports
//! results as `Event`s and never prints.

mod attempt;
mod command_slot;
mod in_flight;
mod message_slot;
mod queue;
mod run;

pub use queue::{IntRun, Source};
pub use run::{PoolContext, run_task};
