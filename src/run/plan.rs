//! `--dry-run`: the plan of a job, printed without running anything.

use std::time::SystemTime;

use super::target::OutputTarget;
use crate::cli::DryRun;
use crate::exec::function::command;
use crate::exec::slurm;
use crate::items::expand::{self, Items};
use crate::items::{fingerprint, function_hash};
use crate::job::{ExecutorKind, FunctionKind, InputSpec, Job, Task};
use crate::output::Destination;
use crate::record::resume::Previous;

/// Items shown under each task of the plan.
const FIRST_ITEMS: usize = 3;

/// `--dry-run`: the plan and each task's first items, or (`all`) every item, one a line.
pub fn print_plan(job: &Job, target: &OutputTarget, previous: Option<&Previous>, what: DryRun) {
    if what == DryRun::All {
        for task in &job.tasks {
            let done = previous.and_then(|p| done_items(job, task, p)?.ok());
            print_items(task, usize::MAX, "", done.as_deref());
        }
        return;
    }
    out!("job `{}` ({})", job.name, job.file.display());
    if let Some(description) = &job.description {
        out!("  {description}");
    }
    if let Some(schedule) = &job.schedule {
        out!("  schedule: {schedule}");
    }
    out!("  folder: {}", job.dir.display());
    let bounds: Vec<String> = [
        job.admit
            .memfree
            .map(|b| format!("memfree = {}", crate::process::machine::human_bytes(b))),
        job.admit.load.map(|l| format!("load = {l} per CPU")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !bounds.is_empty() {
        out!(
            "  admit: {} (new items wait until the machine has them)",
            bounds.join(", ")
        );
    }
    let destination = target.destination(&job.name, SystemTime::now());
    let shown = match &destination {
        Destination::File(path) => path.display().to_string(),
        Destination::Stdout => "standard output".to_owned(),
        Destination::Discard => String::new(),
    };
    match destination {
        Destination::Discard => out!("  output: none (the outputs are printed)"),
        _ => out!("  output: {shown} ({})", target.format.name()),
    }
    if job.executor.kind == ExecutorKind::Slurm {
        out!("  {}", slurm::describe(job, destination.file()));
    }
    for task in &job.tasks {
        let done = previous.and_then(|p| done_items(job, task, p));
        let items = match (&task.inputs, &done) {
            (InputSpec::From(name), _) => format!("the outputs of task `{name}`"),
            (_, Some(Ok(done))) => {
                let all = done.len();
                match done.iter().filter(|d| **d).count() {
                    0 => format!("{all} item{}, none done yet", plural(all)),
                    n => format!("{} of {all} item{} left ({n} done)", all - n, plural(all)),
                }
            }
            (_, Some(Err(e))) => format!("inputs that cannot be read now: {e}"),
            (spec, None) => match expand::expand(spec, |_| Vec::new()) {
                Ok(Items { total: Some(n), .. }) => format!("{n} item{}", plural(n as usize)),
                Ok(_) => "a stream of items".to_owned(),
                Err(e) => format!("inputs that cannot be read now: {e}"),
            },
        };
        let timeout = task.timeout.map_or_else(
            || "none".to_owned(),
            |t| humantime::format_duration(t).to_string(),
        );
        if task.cwd != job.dir {
            out!("  task `{}` runs in {}", task.name, task.cwd.display());
        }
        out!(
            "  task `{}`: {} over {items}; {} worker{}, timeout {timeout}, retries {}",
            task.name,
            task.function.label,
            task.workers,
            plural(task.workers),
            task.retry.count
        );
        let done = done.and_then(Result::ok);
        print_items(task, FIRST_ITEMS, "    ", done.as_deref());
    }
}

/// For each of a task's items, whether an earlier run finished it (claiming those results,
/// as the run would). `None` for a task whose items are an earlier task's outputs.
fn done_items(job: &Job, task: &Task, previous: &Previous) -> Option<Result<Vec<bool>, String>> {
    if matches!(task.inputs, InputSpec::From(_)) {
        return None;
    }
    let items = match expand::expand(&task.inputs, |_| Vec::new()) {
        Ok(items) => items,
        Err(e) => return Some(Err(e.to_string())),
    };
    let hash = function_hash(task, &job.dir);
    let done = items.iter.map(|input| {
        input.is_ok_and(|input| {
            let state = task
                .file_state
                .as_ref()
                .map(|r| fingerprint::read(r, &input));
            previous.claim_done(&hash, &input, state.as_ref())
        })
    });
    Some(Ok(done.collect()))
}

/// Up to `most` items of `task` as they would run: `TASK #INDEX` and the argv of a command
/// (shell-quoted), or the function and its input; not those an earlier run did (`done`). A
/// pipeline's later task has no items yet.
fn print_items(task: &Task, most: usize, indent: &str, done: Option<&[bool]>) {
    if matches!(task.inputs, InputSpec::From(_)) {
        if most != usize::MAX {
            out!("{indent}(its items are the outputs of an earlier task)");
        }
        return;
    }
    let Ok(items) = expand::expand(&task.inputs, |_| Vec::new()) else {
        return;
    };
    let left = items
        .iter
        .enumerate()
        .filter(|(index, _)| done.is_none_or(|d| d.get(*index) != Some(&true)));
    for (shown, (index, input)) in left.enumerate() {
        if shown == most {
            out!("{indent}…");
            break;
        }
        let what = match (&input, &task.function.kind) {
            (Err(e), _) => format!("(an input that cannot be read: {e})"),
            (Ok(input), FunctionKind::Command(spec)) => {
                match command::build(spec, task, index as u64, input) {
                    Ok(built) => argv_text(&built.argv),
                    Err(e) => format!("(cannot build the command: {e})"),
                }
            }
            (Ok(input), _) => format!("{} {input}", task.function.label),
        };
        out!(
            "{indent}{} #{index} {}",
            task.name,
            crate::visible::visible_line(&what)
        );
    }
}

/// A command's argv as a shell would read it back.
fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
