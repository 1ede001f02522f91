//! A run's report on the terminal: a reviewer's first read. Colour only where stdout is a
//! terminal and `NO_COLOR` is unset.

use console::Style;

use super::item::status_name;
use super::summary::{ItemLine, RunReport, TaskReport};
use crate::record::{Summary, Truncated};

pub fn print(report: &RunReport) {
    let bold = Style::new().bold();
    let status = status_style(&report.status).apply_to(&report.status);
    let job = report.job.as_deref().unwrap_or("?");
    out!(
        "{} `{}`: {status}, {} ({})",
        bold.apply_to("job"),
        job,
        counts(&report.summary),
        report.file
    );
    if let (Some(started), Some(duration)) = (&report.started_at, report.duration_s) {
        out!("  started {started}, took {}", seconds(duration));
    } else if let Some(started) = &report.started_at {
        out!("  started {started}; the run never finished (a journal)");
    }
    for task in &report.tasks {
        print_task(task);
    }
    if !report.slowest.is_empty() {
        out!("\n{}", bold.apply_to("slowest items"));
        for item in &report.slowest {
            out!("  {}", item_line(item));
        }
    }
    if !report.biggest_memory.is_empty() {
        out!("\n{}", bold.apply_to("biggest memory users"));
        for item in &report.biggest_memory {
            out!("  {}", item_line(item));
        }
    }
    if !report.truncated.is_empty() {
        out!("\n{}", bold.apply_to("truncated outputs"));
        for item in &report.truncated {
            out!("  {}", item_line(item));
        }
        if report.more_truncated > 0 {
            out!(
                "  … and {} more (see the results file)",
                report.more_truncated
            );
        }
    }
    if !report.failures.is_empty() {
        out!("\n{}", bold.apply_to("failures"));
        for item in &report.failures {
            out!("  {}", item_line(item));
            if let Some(error) = &item.error {
                for line in error.lines() {
                    out!("      {line}");
                }
            }
        }
        if report.more_failures > 0 {
            out!(
                "  … and {} more (see the results file)",
                report.more_failures
            );
        }
    }
}

fn print_task(task: &TaskReport) {
    let function = task.function.as_deref().unwrap_or("?");
    out!(
        "\n  task `{}` ({function}): {}",
        task.name,
        counts(&task.summary)
    );
    let workers = task.workers.unwrap_or(task.busy_by_worker.len() as u64);
    // Items too quick to time one by one (a batch's time spread over its items) still keep
    // their workers busy: then the workers' CPU is the busy time that counts.
    let busy = match task.worker_cpu_s {
        Some(cpu) if cpu > task.busy_s => format!(
            "{} (the workers' CPU; the items' own durations sum to {})",
            seconds(cpu),
            seconds(task.busy_s)
        ),
        _ => seconds(task.busy_s),
    };
    out!(
        "    wall {}, busy {busy} on {workers} worker{}, utilisation {:.0}%",
        seconds(task.wall_s),
        if workers == 1 { "" } else { "s" },
        task.utilisation * 100.0
    );
    let mut notes = Vec::new();
    if task.retried > 0 {
        notes.push(format!("{} retried", task.retried));
    }
    if task.flaky > 0 {
        notes.push(format!("{} passed only on a retry (flaky)", task.flaky));
    }
    match task.worker_cpu_s {
        Some(workers) => notes.push(format!(
            "CPU {} (the workers' in all; the items' own {})",
            seconds(workers),
            seconds(task.items_cpu_s)
        )),
        None if task.items_cpu_s > 0.0 => {
            notes.push(format!("CPU {}", seconds(task.items_cpu_s)));
        }
        None => {}
    }
    if let Some(kib) = task.peak_rss_kib {
        notes.push(format!("peak memory {}", kib_text(kib)));
    }
    if !notes.is_empty() {
        out!("    {}", notes.join(", "));
    }
}

/// `4 items: 3 ok, 1 failed, 0 timed out, 0 skipped` (and `, 1 truncated` when an output
/// was cut at the cap).
pub fn counts(s: &Summary) -> String {
    let mut text = format!(
        "{} item{}: {}, {} failed, {} timed out, {} skipped",
        s.total,
        if s.total == 1 { "" } else { "s" },
        s.ok_text(),
        s.failed,
        s.timed_out,
        s.skipped
    );
    if s.truncated > 0 {
        text += &format!(", {} truncated", s.truncated);
    }
    text
}

/// `stdout cut at the cap, 4194304 bytes dropped`, for an item whose output was cut.
pub fn truncation_text(truncated: &Truncated) -> String {
    match truncated.stdout {
        Some(bytes) => format!("stdout cut at the cap, {bytes} bytes dropped"),
        None => "output cut at the cap".to_owned(),
    }
}

fn item_line(item: &ItemLine) -> String {
    let status = status_style(status_name(item.status)).apply_to(status_name(item.status));
    let retries = if item.attempts > 1 {
        format!(", {} attempts", item.attempts)
    } else {
        String::new()
    };
    let mut used = String::new();
    if let Some(cpu) = item.cpu_s {
        used += &format!(", CPU {}", seconds(cpu));
    }
    if let Some(kib) = item.max_rss_kib {
        used += &format!(", max RSS {}", kib_text(kib));
    }
    if let Some(truncated) = &item.truncated {
        used += &format!(", {}", truncation_text(truncated));
    }
    format!(
        "{}[{}] (input {}): {status} in {}{retries}{used}",
        item.task,
        item.index,
        item.input,
        seconds(item.duration_s)
    )
}

/// KiB as a person reads them: `812 KiB`, `218 MiB`, `1.5 GiB`.
pub fn kib_text(kib: u64) -> String {
    crate::process::machine::human_bytes(kib.saturating_mul(1024))
}

pub fn status_style(status: &str) -> Style {
    match status {
        "ok" => Style::new().green(),
        "failed" | "timed out" | "timed_out" | "interrupted" => Style::new().red().bold(),
        _ => Style::new().yellow(),
    }
}

/// Seconds as a person reads them: `0.0012s`, `1.50s`, `2m 05s`.
pub fn seconds(s: f64) -> String {
    if s < 0.01 {
        format!("{s:.4}s")
    } else if s < 120.0 {
        format!("{s:.2}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}
