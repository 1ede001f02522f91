//! A job's status on the terminal: one line for the job, then what runs (each task, the
//! longest-running items) or how the last run went, and any run that never finished.

use std::time::Duration;

use super::state::{JobStatus, LastRun, RunNow, TaskNow, Unfinished};
use crate::record::Summary;

pub fn print(status: &JobStatus) {
    let file = status
        .job_file
        .as_deref()
        .map_or_else(String::new, |f| format!(" ({f})"));
    let head = format!("job `{}`{file}", status.job);
    match (&status.run, &status.last_run) {
        (Some(run), _) => print_running(&head, run),
        (None, Some(last)) => out!("{head}: not running; last run {}", last_run(last)),
        (None, None) if status.unfinished.is_empty() => out!("{head}: never run"),
        (None, None) => out!("{head}: not running"),
    }
    if let (Some(_), Some(last)) = (&status.run, &status.last_run) {
        out!("  last run {}", last_run(last));
    }
    for unfinished in &status.unfinished {
        print_unfinished(unfinished);
    }
}

fn print_running(head: &str, run: &RunNow) {
    let pid = run
        .pid
        .map_or_else(|| "pid unknown".into(), |p| format!("pid {p}"));
    let started = match (&run.started_at, run.elapsed_s) {
        (Some(at), Some(elapsed)) => format!(", started {at} ({} ago)", duration(elapsed)),
        (Some(at), None) => format!(", started {at}"),
        _ => String::new(),
    };
    out!("{head}: running, {pid}{started}");
    if let Some(results) = &run.results {
        out!("  results {}", printable(results));
    }
    for task in &run.tasks {
        out!("  {}", task_line(task));
    }
    for item in &run.longest_running {
        let running = item
            .running_s
            .map_or_else(String::new, |s| format!(" for {}", duration(s)));
        out!(
            "  longest running: {}[{}] (input {}){running}",
            printable(&item.task),
            item.index,
            printable(&item.input)
        );
    }
    if let Some(why) = &run.waiting {
        out!("  waiting to start items: {}", printable(why));
    }
    match run.source {
        "journal" => out!("  (counted from its journal: the run keeps no live state)"),
        "lock" => out!("  (no progress to show yet: no live state or journal of this run)"),
        _ => {}
    }
}

fn task_line(task: &TaskNow) -> String {
    let name = printable(&task.name);
    if task.state == "pending" {
        return format!("{name}: pending");
    }
    let of = task.total.map_or_else(String::new, |t| format!("/{t}"));
    let reused = reused(task.reused);
    let mut line = format!(
        "{name}: {}{of} done ({} ok{reused}, {} failed, {} timed out)",
        task.done, task.ok, task.failed, task.timed_out
    );
    if task.skipped > 0 {
        line += &format!(", {} skipped", task.skipped);
    }
    if task.state == "running"
        && let Some(rate) = task.rate_per_s
    {
        line += &format!(", {rate:.1}/s");
        if let Some(eta) = task.eta_s {
            line += &format!(", ETA {}", duration(eta));
        }
    }
    if task.state == "done" {
        line += ", finished";
    }
    line
}

fn last_run(last: &LastRun) -> String {
    let when = last.started_at.as_deref().unwrap_or("at an unknown time");
    let mut line = format!("{when}: {}", last.status);
    if let Some(summary) = &last.summary {
        line += &format!(", {}", counts(summary));
    }
    if let Some(took) = last.duration_s {
        line += &format!(", took {}", duration(took));
    }
    if let Some(results) = &last.results {
        line += &format!(" → {}", printable(results));
    }
    line
}

fn print_unfinished(unfinished: &Unfinished) {
    let when = unfinished
        .started_at
        .as_deref()
        .map_or_else(String::new, |at| format!(" started {at}"));
    let pid = unfinished
        .pid
        .map_or_else(String::new, |p| format!(" (pid {p}, no longer running)"));
    out!(
        "  unfinished: a run{when}{pid} ended without writing its results; its journal {} holds {}",
        printable(&unfinished.journal),
        counts(&unfinished.summary)
    );
    match &unfinished.resume {
        Some(command) => out!("  `{}` continues it", printable(command)),
        None => out!("  `--resume` of its results file continues it"),
    }
}

fn counts(summary: &Summary) -> String {
    let reused = reused(summary.reused);
    let mut text = format!(
        "{} ok{reused}, {} failed, {} timed out",
        summary.ok, summary.failed, summary.timed_out
    );
    if summary.skipped > 0 {
        text += &format!(", {} skipped", summary.skipped);
    }
    text
}

/// ` (N reused)` after an ok count, when some were.
fn reused(count: u64) -> String {
    if count > 0 {
        format!(" ({count} reused)")
    } else {
        String::new()
    }
}

/// Seconds, humanly: `2m 5s` (under ten seconds, to a tenth).
fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    humantime::format_duration(Duration::from_secs(seconds.max(0.0) as u64)).to_string()
}

/// Text from the files, with control characters shown as escapes.
fn printable(text: &str) -> String {
    crate::visible::visible_line(text).into_owned()
}
