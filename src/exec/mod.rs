//! Execution: a task's items run under its policies (timeouts, retries, limits, the run's
//! stop conditions) and reported as events. `Executor` is the seam; `pool/` is the local
//! executor, `function/` how each function kind is started, `control` the run-wide stop
//! conditions. Never prints: what to show is `progress`'s, what to write the pipeline's.

mod admit;
pub mod control;
mod event;
mod executor;
pub mod function;
mod item_stdout;
mod pool;
mod slow;
pub mod slurm;

pub use admit::Gate;
pub use event::Event;
pub use executor::{Executor, LocalPool, TaskRun};
pub use item_stdout::ItemStdout;
pub use slow::{SLOW_AFTER, SlowItem, SlowItems};
