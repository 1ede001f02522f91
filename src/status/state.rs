//! A job's status as `runjobs status --json` gives it (the keys are documented in the README
//! and stay stable), and the reading of a journal's counts it falls back on.

use std::path::Path;

use serde::Serialize;

use crate::record::Summary;
use crate::record::journal::{self, Entry};

/// Format version of `runjobs status --json`.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub jobs: Vec<JobStatus>,
}

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub job_file: Option<String>,
    /// `running`, `not_running` or `never_run`.
    pub state: &'static str,
    /// The lock file looked at.
    pub lock: String,
    /// The run going now, when `state` is `running`.
    pub run: Option<RunNow>,
    /// The last run that ended, from the run index (or the results file named).
    pub last_run: Option<LastRun>,
    /// Journals of runs that never finished (killed, or their machine lost power); the
    /// running run's own journal is not among them.
    pub unfinished: Vec<Unfinished>,
}

#[derive(Debug, Serialize)]
pub struct RunNow {
    pub pid: Option<u32>,
    pub started_at: Option<String>,
    pub elapsed_s: Option<f64>,
    /// Where the figures come from: `live` (the run's live state), `journal` (what its
    /// journal holds) or `lock` (only the lock's record: the run has not started a task).
    pub source: &'static str,
    /// When the live state was written (with `source = "live"`).
    pub updated_at: Option<String>,
    pub results: Option<String>,
    pub journal: Option<String>,
    /// Over the tasks, the items done so far.
    pub summary: Summary,
    pub tasks: Vec<TaskNow>,
    /// Of the task running now.
    pub eta_s: Option<f64>,
    /// Items running over 5 s now, longest first.
    pub longest_running: Vec<RunningItem>,
    /// Why no new item starts, while an admission gate holds them back.
    pub waiting: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaskNow {
    pub name: String,
    /// `pending`, `running` or `done`.
    pub state: &'static str,
    pub total: Option<u64>,
    pub done: u64,
    pub ok: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub skipped: u64,
    /// Of the `ok` ones, how many were taken from an earlier run (absent when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub reused: u64,
    /// Items a second computed (reused ones cost no time), while it runs.
    pub rate_per_s: Option<f64>,
    pub eta_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct RunningItem {
    pub task: String,
    pub index: u64,
    pub input: String,
    pub started_at: String,
    pub running_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `ok`, `failed`, `interrupted` (or `locked`: refused by another run's lock).
    pub status: String,
    pub duration_s: Option<f64>,
    pub summary: Option<Summary>,
    pub results: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Unfinished {
    pub journal: String,
    /// The results file the run was to write.
    pub results: Option<String>,
    /// The last run the journal holds.
    pub started_at: Option<String>,
    /// Its pid, when its live state is still there.
    pub pid: Option<u32>,
    /// What that run journaled.
    pub summary: Summary,
    pub tasks: Vec<TaskNow>,
    /// The command that continues it.
    pub resume: Option<String>,
}

impl TaskNow {
    pub fn new(name: String, total: Option<u64>, summary: &Summary, state: &'static str) -> Self {
        TaskNow {
            name,
            state,
            total,
            done: summary.total,
            ok: summary.ok,
            failed: summary.failed,
            timed_out: summary.timed_out,
            skipped: summary.skipped,
            reused: summary.reused,
            rate_per_s: None,
            eta_s: None,
        }
    }

    /// Sets the rate and the time left from `elapsed` seconds of running.
    pub fn set_rate(&mut self, elapsed: Option<f64>) {
        if let Some(elapsed) = elapsed.filter(|e| *e > 0.0) {
            let rate = self.done.saturating_sub(self.reused) as f64 / elapsed;
            self.rate_per_s = Some(rate);
            if let Some(total) = self.total
                && rate > 0.0
            {
                self.eta_s = Some(total.saturating_sub(self.done) as f64 / rate);
            }
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The last run of a journal, counted: its start, and each task's name, total and counts.
#[derive(Debug, Default)]
pub struct Counted {
    pub started_at: Option<String>,
    pub tasks: Vec<(String, Option<u64>, Summary)>,
    /// The journal did not parse as one at all.
    pub unreadable: bool,
}

impl Counted {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for (_, _, s) in &self.tasks {
            summary.merge(s);
        }
        summary
    }

    /// The tasks as `status` shows them: the last one `last_state` (`running`, or `done`
    /// for a run that is over), the ones before it done.
    pub fn tasks_now(&self, last_state: &'static str) -> Vec<TaskNow> {
        let last = self.tasks.len().saturating_sub(1);
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, (name, total, summary))| {
                let state = if i == last { last_state } else { "done" };
                TaskNow::new(name.clone(), *total, summary, state)
            })
            .collect()
    }
}

/// Counts the last run of the journal at `path` (earlier runs of it were killed before it).
pub fn count_journal(path: &Path) -> std::io::Result<Counted> {
    let file = std::fs::File::open(path)?;
    let mut counted = Counted::default();
    journal::read_entries(std::io::BufReader::new(file), |entry| match entry {
        Entry::Run { started_at, .. } => {
            counted = Counted {
                started_at: Some(started_at),
                ..Counted::default()
            };
        }
        Entry::Task(header) => {
            counted
                .tasks
                .push((header.name, header.total, Summary::default()));
        }
        Entry::Record(record) => {
            if let Some((_, _, summary)) = counted.tasks.last_mut() {
                summary.add_record(&record);
            }
        }
    })?;
    counted.unreadable = counted.started_at.is_none();
    Ok(counted)
}

/// Seconds from the RFC 3339 time `at` to now.
pub fn seconds_since(at: &str) -> Option<f64> {
    let then = humantime::parse_rfc3339_weak(at).ok()?;
    std::time::SystemTime::now()
        .duration_since(then)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Seconds from `from` to `to`, both RFC 3339.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let from = humantime::parse_rfc3339_weak(from).ok()?;
    let to = humantime::parse_rfc3339_weak(to).ok()?;
    to.duration_since(from).ok().map(|d| d.as_secs_f64())
}
