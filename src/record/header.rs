//! What a results file says of the run and of each task, besides the items' records.

use serde::{Deserialize, Serialize};

use super::Summary;

/// Format version of the results file.
pub const VERSION: u32 = 1;

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}

/// What is known when the run starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHeader {
    pub version: u32,
    pub job: String,
    pub job_file: String,
    pub started_at: String,
}

/// What is known when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct RunFooter {
    pub status: RunStatus,
    pub finished_at: String,
    pub duration_s: f64,
    pub summary: Summary,
}

/// What is known of a task when it ends, written after its results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFooter {
    #[serde(default)]
    pub summary: Summary,
    /// The CPU time (user plus system, seconds) the task's long-lived workers used in all,
    /// each read when it was reaped: start-up, idle time and protocol included, so it is the
    /// task's whole cost even where items are too quick to time one by one. Absent for
    /// commands (each item's `cpu_s` is its whole process already) and where not measured
    /// (cluster runs, journals, files of an older runjobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cpu_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskHeader {
    pub name: String,
    pub function: String,
    /// The function's identity (see `identity`): what `--resume` matches results by.
    pub function_hash: String,
    pub workers: usize,
    /// How many items the task has, known when it starts (`runjobs status` shows done of
    /// total from it); journals of an older runjobs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}
