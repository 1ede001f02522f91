//! The OS-facing side: child processes in their own process groups (spawn, drain, stop,
//! reap), the guard that outlives a SIGKILLed runjobs, signals, Ctrl-Z, the overlap lock and
//! resource limits. Knows no job files and no items.

pub mod groups;
pub mod interrupt;
mod launch;
mod limits;
mod lines;
pub mod lock;
pub mod machine;
pub mod pause;
mod reap;
mod spawn;
mod usage;
mod watch;

pub use launch::Launcher;
pub use limits::Limits;
pub use reap::{Reaped, exited_within, reap};
pub use spawn::{StderrTail, Tether, describe_status, drain_stderr, spawn_in_group, stop_group};
pub use usage::{Usage, process_cpu_seconds, thread_cpu_nanos};
pub use watch::{Ending, Finished, Supervisor};
