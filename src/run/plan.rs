//! `--dry-run`: the plan of a job, printed without running anything.

use std::time::SystemTime;

use super::target::OutputTarget;
use crate::items::expand::{self, Items};
use crate::items::function_hash;
use crate::job::{InputSpec, Job};
use crate::output::Destination;
use crate::record::resume::Previous;

pub fn print_plan(job: &Job, target: &OutputTarget, previous: Option<&Previous>) {
    out!("job `{}` ({})", job.name, job.file.display());
    if let Some(description) = &job.description {
        out!("  {description}");
    }
    if let Some(schedule) = &job.schedule {
        out!("  schedule: {schedule}");
    }
    out!("  folder: {}", job.dir.display());
    let destination = target.destination(&job.name, SystemTime::now());
    let shown = match &destination {
        Destination::File(path) => path.display().to_string(),
        Destination::Stdout => "standard output".to_owned(),
    };
    out!("  output: {shown} ({})", target.format.name());
    for task in &job.tasks {
        let items = match &task.inputs {
            InputSpec::From(name) => format!("the outputs of task `{name}`"),
            spec => match (expand::expand(spec, |_| Vec::new()), previous) {
                (Ok(items), Some(previous)) => {
                    let hash = function_hash(task, &job.dir);
                    let (mut all, mut done) = (0u64, 0u64);
                    for input in items.iter.flatten() {
                        all += 1;
                        done += u64::from(previous.claim_done(&hash, &input));
                    }
                    match done {
                        0 => format!("{all} item{}, none done yet", plural(all as usize)),
                        _ => format!(
                            "{} of {all} item{} left ({done} done)",
                            all - done,
                            plural(all as usize)
                        ),
                    }
                }
                (Ok(Items { total: Some(n), .. }), None) => {
                    format!("{n} item{}", plural(n as usize))
                }
                (Ok(_), None) => "a stream of items".to_owned(),
                (Err(e), _) => format!("inputs that cannot be read now: {e}"),
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
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
