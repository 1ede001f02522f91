//! One file per function kind: each knows how to build the process that runs its items.

mod builtin;
pub mod command;
mod python;
mod worker;

use std::process::Command;

use crate::job::{FunctionKind, Task};

/// How runjobs talks to a long-lived worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// runjobs' own builtin workers: the lean framing of `protocol`.
    Lean,
    /// External workers: SPEC §5's JSON lines.
    JsonLines,
    /// runjobs' Python shim: SPEC §5's objects, several items to a line both ways
    /// (`{"first": N, "inputs": [...]}`): parsing one line per item costs Python more
    /// than most functions do.
    Batched,
}

/// The command that starts a long-lived worker for `task`, and how to talk to it. `None` for
/// kinds that start a process per item instead.
pub fn worker_command(task: &Task, job: &str) -> Option<Result<(Command, Protocol), String>> {
    let built = match &task.function.kind {
        FunctionKind::Builtin { name, options } => {
            builtin::command(name, options).map(|cmd| (cmd, Protocol::Lean))
        }
        FunctionKind::Worker { argv } => {
            worker::command(argv).map(|cmd| (cmd, Protocol::JsonLines))
        }
        FunctionKind::Python {
            file,
            function,
            python_exe,
        } => Ok((
            python::command(file, function, python_exe),
            Protocol::Batched,
        )),
        FunctionKind::Command(_) => return None,
    };
    Some(built.map(|(mut cmd, protocol)| {
        cmd.current_dir(&task.cwd)
            .envs(&task.env)
            .env("RUNJOBS_TASK", &task.name)
            .env("RUNJOBS_JOB", job);
        (cmd, protocol)
    }))
}
