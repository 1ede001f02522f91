//! What the pool reports, and the per-item result record: the only contract between the
//! pool and everything that displays or writes results.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Messages from the pool (and the workers' stderr) to the thread that owns the terminal and
/// the output file.
#[derive(Debug)]
pub enum Event {
    /// Items reached their final state (after any retries).
    Finished {
        task: usize,
        records: Vec<ItemRecord>,
    },
    /// A line a worker wrote to its stderr.
    Log(String),
}

/// The final state of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The function returned a value.
    Ok,
    /// The function returned an error, its process crashed or exited, or the run was
    /// interrupted while it ran.
    Failed,
    /// The item ran past its timeout and its process group was killed.
    TimedOut,
    /// The item never started (the run was interrupted first).
    Skipped,
}

impl Status {
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut)
    }
}

/// One result, as it appears in the output file (SPEC §4).
#[derive(Debug, Clone, Serialize)]
pub struct ItemRecord {
    pub index: u64,
    pub input: Value,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    /// Start of the last attempt, seconds since the run started.
    #[serde(serialize_with = "micros")]
    pub started_s: f64,
    #[serde(serialize_with = "micros")]
    pub duration_s: f64,
    /// Pid of the process that ran the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
}

/// Seconds rounded to microseconds: finer digits are noise and bloat large files.
fn micros<S: serde::Serializer>(seconds: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((seconds * 1e6).round() / 1e6)
}

/// Counts over every item of a run (SPEC §4 `summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub skipped: u64,
}

impl Summary {
    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Ok => self.ok += 1,
            Status::Failed => self.failed += 1,
            Status::TimedOut => self.timed_out += 1,
            Status::Skipped => self.skipped += 1,
        }
    }

    pub fn merge(&mut self, other: &Summary) {
        self.total += other.total;
        self.ok += other.ok;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.skipped += other.skipped;
    }

    pub fn failures(&self) -> u64 {
        self.failed + self.timed_out
    }
}
