//! The summary of one run a reviewer reads first: per task its counts, wall and busy time,
//! utilisation, CPU time and peak memory, retried and flaky items; the slowest items and the
//! biggest memory users; every failure with its input and the first lines of its error.
//! Built while the file streams by, in bounded memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;
use serde_json::value::RawValue;

use super::item::{ItemResult, shown};
use super::timeline::Timeline;
use crate::record::read::{FileInfo, ResultsVisitor, RunInfo, TaskEnd, TaskInfo};
use crate::record::{Status, Summary, Truncated};

/// The slowest items kept.
pub const SLOWEST: usize = 10;
/// The biggest memory users kept.
pub const BIGGEST: usize = 10;
/// The failures kept with their errors (the rest are counted).
pub const FAILURES: usize = 20;
/// Lines of an error shown.
const ERROR_LINES: usize = 3;

/// What the report says of a run (`--json` prints it as it is).
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub version: u32,
    pub file: String,
    pub job: Option<String>,
    pub started_at: Option<String>,
    pub duration_s: Option<f64>,
    /// Seconds from the run's start to the end of its last item.
    pub span_s: f64,
    /// `ok`, `failed`, `interrupted`, or `unfinished` for a journal of a killed run.
    pub status: String,
    pub summary: Summary,
    pub tasks: Vec<TaskReport>,
    pub slowest: Vec<ItemLine>,
    /// The items with the highest `max_rss_kib`, highest first.
    pub biggest_memory: Vec<ItemLine>,
    pub failures: Vec<ItemLine>,
    /// Failures beyond those listed.
    pub more_failures: u64,
    /// Items whose output was cut at the cap (the first `FAILURES` of them), in file order.
    pub truncated: Vec<ItemLine>,
    /// Truncated items beyond those listed.
    pub more_truncated: u64,
}

#[derive(Debug, Serialize)]
pub struct TaskReport {
    pub name: String,
    pub function: Option<String>,
    /// Worker processes at once, when the file says.
    pub workers: Option<u64>,
    pub summary: Summary,
    /// From the first start to the last end among the items this run ran.
    pub wall_s: f64,
    /// Time items ran, summed.
    pub busy_s: f64,
    /// Busy time per worker process, by pid.
    pub busy_by_worker: Vec<(u32, f64)>,
    /// Busy time over wall time and the number of workers (0 to 1); a worker counts as busy
    /// for the larger of its items' time and, where recorded, the CPU it used
    /// (`worker_cpu_s`: items too quick to time one by one still cost their workers).
    pub utilisation: f64,
    /// Items that took more than one attempt.
    pub retried: u64,
    /// Items that passed only on a retry.
    pub flaky: u64,
    /// The task's CPU time: its long-lived workers' total where the file records it
    /// (`worker_cpu_s`), else `items_cpu_s`.
    pub cpu_s: f64,
    /// CPU time of the items that record it (`cpu_s`), summed: exact for commands (a
    /// process an item); for long-lived workers only the items that were sampled.
    pub items_cpu_s: f64,
    /// The CPU time the task's long-lived workers used in all, each read when it was
    /// reaped, when the file records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_cpu_s: Option<f64>,
    /// The largest `max_rss_kib` of its items, when any records one.
    pub peak_rss_kib: Option<u64>,
}

/// An item worth naming: a slow one or a failure.
#[derive(Debug, Clone, Serialize)]
pub struct ItemLine {
    pub task: String,
    pub index: u64,
    pub input: String,
    pub status: Status,
    pub duration_s: f64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rss_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The captured streams cut at the cap, with the bytes each dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
}

impl ItemLine {
    /// The line of result `r` of `task`, with `error` as it is to be shown.
    pub fn of(task: &TaskInfo, r: &ItemResult, error: Option<String>) -> ItemLine {
        ItemLine {
            task: task.name.clone(),
            index: r.index,
            input: shown(&r.input),
            status: r.status,
            duration_s: r.duration_s,
            attempts: r.attempts,
            cpu_s: r.cpu_s,
            max_rss_kib: r.max_rss_kib,
            error,
            truncated: r.truncated,
        }
    }
}

/// Builds a `RunReport` as results stream by (and the HTML timeline, when asked).
#[derive(Default)]
pub struct Summarize {
    pub timeline: Option<Timeline>,
    tasks: Vec<TaskReport>,
    /// The current task's worker processes at once, when its file says.
    slots: Option<u64>,
    /// The current task's span and busy time per worker.
    first_start: f64,
    last_end: f64,
    busy: HashMap<u32, f64>,
    /// The end of the run's last item.
    span: f64,
    slowest: BinaryHeap<Reverse<Ranked>>,
    biggest: BinaryHeap<Reverse<Ranked>>,
    failures: Vec<ItemLine>,
    more_failures: u64,
    truncated: Vec<ItemLine>,
    more_truncated: u64,
}

/// An item by a figure (its duration, its memory), for the heaps of the top items.
#[derive(Debug)]
struct Ranked(f64, ItemLine);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Summarize {
    fn close_task(&mut self) {
        let Some(task) = self.tasks.last_mut() else {
            return;
        };
        task.wall_s = (self.last_end - self.first_start).max(0.0);
        let mut busy: Vec<(u32, f64)> = self.busy.drain().collect();
        busy.sort_by_key(|(pid, _)| *pid);
        task.busy_s = busy.iter().map(|(_, s)| s).sum();
        // Items run on `workers` slots; a process per item (commands) has a pid per item.
        let lanes = self.slots.map_or(busy.len() as f64, |n| n as f64);
        task.workers = self.slots;
        task.cpu_s = task.worker_cpu_s.unwrap_or(task.items_cpu_s);
        let working = task.busy_s.max(task.worker_cpu_s.unwrap_or(0.0));
        task.utilisation = if task.wall_s > 0.0 && lanes > 0.0 {
            (working / (task.wall_s * lanes)).min(1.0)
        } else {
            0.0
        };
        task.busy_by_worker = busy;
    }

    /// The report, once the whole file was read.
    pub fn finish(mut self, file: &str, info: FileInfo) -> RunReport {
        self.close_task();
        let mut summary = Summary::default();
        for task in &self.tasks {
            summary.merge(&task.summary);
        }
        let RunInfo {
            job,
            started_at,
            duration_s,
            status,
            ..
        } = info.run;
        let status = match (info.journal, status) {
            (true, _) | (false, None) => "unfinished".to_owned(),
            (false, Some(status)) => status,
        };
        let mut slowest: Vec<ItemLine> = self.slowest.into_iter().map(|Reverse(s)| s.1).collect();
        slowest.sort_by(|a, b| b.duration_s.total_cmp(&a.duration_s));
        let mut biggest_memory: Vec<ItemLine> =
            self.biggest.into_iter().map(|Reverse(s)| s.1).collect();
        biggest_memory.sort_by_key(|line| Reverse(line.max_rss_kib));
        RunReport {
            version: 1,
            file: file.to_owned(),
            job,
            started_at,
            duration_s,
            span_s: self.span,
            status,
            summary,
            tasks: self.tasks,
            slowest,
            biggest_memory,
            failures: self.failures,
            more_failures: self.more_failures,
            truncated: self.truncated,
            more_truncated: self.more_truncated,
        }
    }
}

impl ResultsVisitor for Summarize {
    fn run(&mut self, _started_at: &str) {}

    fn task(&mut self, task: &TaskInfo) {
        if let Some(timeline) = &mut self.timeline {
            timeline.task(task);
        }
        self.close_task();
        self.first_start = f64::INFINITY;
        self.last_end = 0.0;
        self.slots = task.workers;
        self.tasks.push(TaskReport {
            name: task.name.clone(),
            function: task.function.clone(),
            workers: task.workers,
            summary: Summary::default(),
            wall_s: 0.0,
            busy_s: 0.0,
            busy_by_worker: Vec::new(),
            utilisation: 0.0,
            retried: 0,
            flaky: 0,
            cpu_s: 0.0,
            items_cpu_s: 0.0,
            worker_cpu_s: None,
            peak_rss_kib: None,
        });
    }

    fn task_end(&mut self, _task: &TaskInfo, end: &TaskEnd) {
        if let Some(report) = self.tasks.last_mut() {
            report.worker_cpu_s = end.worker_cpu_s;
        }
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let r = ItemResult::parse(raw)?;
        if self.tasks.is_empty() {
            self.task(task);
        }
        if let Some(timeline) = &mut self.timeline {
            timeline.add(task, &r);
        }
        let report = self.tasks.last_mut().expect("a task was begun above");
        report.summary.add(r.status);
        if r.attempts > 1 {
            report.retried += 1;
            if r.status == Status::Ok {
                report.flaky += 1;
            }
        }
        if r.truncated.is_some() {
            report.summary.truncated += 1;
            if self.truncated.len() < FAILURES {
                let line = ItemLine::of(task, &r, r.error.as_deref().map(first_lines));
                self.truncated.push(line);
            } else {
                self.more_truncated += 1;
            }
        }
        if r.reused_from.is_some() {
            report.summary.reused += 1;
        } else if r.status != Status::Skipped {
            self.first_start = self.first_start.min(r.started_s);
            self.last_end = self.last_end.max(r.started_s + r.duration_s);
            self.span = self.span.max(self.last_end);
            if let Some(pid) = r.worker {
                *self.busy.entry(pid).or_default() += r.duration_s;
            }
            report.items_cpu_s += r.cpu_s.unwrap_or(0.0);
            report.peak_rss_kib = report.peak_rss_kib.max(r.max_rss_kib);
        }
        if r.reused_from.is_none()
            && let Some(rss) = r.max_rss_kib
            && top(&self.biggest, BIGGEST, rss as f64)
        {
            let line = ItemLine::of(task, &r, r.error.as_deref().map(first_lines));
            keep(&mut self.biggest, BIGGEST, Ranked(rss as f64, line));
        }
        let failed = r.status.is_failure();
        let slow_enough = top(&self.slowest, SLOWEST, r.duration_s);
        if !(failed || slow_enough) || r.status == Status::Skipped {
            return Ok(());
        }
        let line = ItemLine::of(task, &r, r.error.as_deref().map(first_lines));
        if failed {
            if self.failures.len() < FAILURES {
                self.failures.push(line.clone());
            } else {
                self.more_failures += 1;
            }
        }
        if slow_enough && r.reused_from.is_none() {
            keep(&mut self.slowest, SLOWEST, Ranked(r.duration_s, line));
        }
        Ok(())
    }
}

/// Whether `figure` makes the `most` kept in `heap`.
fn top(heap: &BinaryHeap<Reverse<Ranked>>, most: usize, figure: f64) -> bool {
    heap.len() < most || heap.peek().is_some_and(|Reverse(r)| figure > r.0)
}

/// Keeps `item` among the `most` top ones of `heap`.
fn keep(heap: &mut BinaryHeap<Reverse<Ranked>>, most: usize, item: Ranked) {
    heap.push(Reverse(item));
    if heap.len() > most {
        heap.pop();
    }
}

/// The first lines of an error message.
fn first_lines(error: &str) -> String {
    let mut lines = error.lines();
    let mut out: Vec<&str> = lines.by_ref().take(ERROR_LINES).collect();
    if lines.next().is_some() {
        out.push("…");
    }
    crate::visible::visible(&out.join("\n")).into_owned()
}
