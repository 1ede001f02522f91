//! A validated job, ready to run: defaults applied, durations parsed, paths absolute.
//!
//! `resolve` builds these from a `JobFile`; everything after loading (expansion, the pool,
//! the writers) reads only these types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::builtins;

/// A job file that passed every check.
#[derive(Debug, Clone)]
pub struct Job {
    /// `name`, else the file's stem.
    pub name: String,
    /// The job file as the user named it (for messages and the output's `job_file`).
    pub file: PathBuf,
    /// The job file's folder, absolute: relative paths resolve here and functions run here.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub output: OutputPlan,
    pub hooks: Hooks,
    /// `[executor]`: where the items run.
    pub executor: ExecutorPlan,
    pub tasks: Vec<Task>,
    /// The whole run's time limit (`deadline`).
    pub deadline: Option<Duration>,
    /// Stop dispatching once more items than this failed (`max_failures`, `--fail-fast`).
    pub max_failures: Option<FailureLimit>,
    /// `[admit]`: when new items may start.
    pub admit: Admit,
}

/// `[admit]` (or `--memfree`, `--load`): no new item starts while the machine has less
/// memory available than `memfree` or a higher 1-minute load per CPU than `load`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Admit {
    /// Bytes of `MemAvailable`.
    pub memfree: Option<u64>,
    /// Load average per CPU.
    pub load: Option<f64>,
}

/// `max_failures`: failures tolerated before dispatching stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureLimit {
    Count(u64),
    /// A percentage of the items of the tasks started so far.
    Percent(f64),
}

impl FailureLimit {
    /// Whether `failures` out of `items` exceed the limit.
    pub fn exceeded(self, failures: u64, items: u64) -> bool {
        match self {
            FailureLimit::Count(limit) => failures > limit,
            FailureLimit::Percent(percent) => failures as f64 > items as f64 * percent / 100.0,
        }
    }
}

/// Where and how results are written.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// Absolute path template; `{job}`, `{date}` and `{timestamp}` are filled in at run time.
    pub path_template: PathBuf,
    /// `format`, else decided from the extension when the path is known.
    pub format: Option<Format>,
    /// Keep only the newest N results files of the template.
    pub keep: Option<u64>,
    /// `reuse = "latest"`: every run reuses from the newest earlier results file.
    pub reuse_latest: bool,
}

/// `[hooks]`: argv run around a run; `{job}` is filled in.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub on_start: Option<Vec<String>>,
    pub on_success: Option<Vec<String>>,
    pub on_failure: Option<Vec<String>>,
    pub timeout: Duration,
}

/// Where a job's items run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    /// Worker processes on this machine.
    #[default]
    Local,
    /// A Slurm job array, one array task per shard.
    Slurm,
}

/// `[executor]`: the kind, and the settings a Slurm submission takes (unused by a local run).
#[derive(Debug, Clone, Default)]
pub struct ExecutorPlan {
    pub kind: ExecutorKind,
    pub slurm: SlurmSettings,
}

/// What `sbatch` is given, and how the items are split.
#[derive(Debug, Clone, Default)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// `--time`, in Slurm's form; `None` takes it from `deadline`.
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub sbatch_args: Vec<String>,
    pub shards: Option<u64>,
    pub max_running: Option<u32>,
    /// Absolute; `None` means beside the output file.
    pub spool: Option<PathBuf>,
}

/// How long a hook may run when `[hooks] timeout` is not set.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::record::Format;

/// One `[[task]]` with every option settled (task, then function, then job, then default).
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub function: FunctionSpec,
    pub inputs: InputSpec,
    pub workers: usize,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub kill_grace: Duration,
    /// Extra environment for the function's processes (task over function over job).
    pub env: BTreeMap<String, String>,
    /// Where the function's processes run: `cwd` resolved against the job folder, else the
    /// job folder.
    pub cwd: PathBuf,
    pub limits: Limits,
    /// Recycle a long-lived worker after this many items (Pool's `maxtasksperchild`).
    pub max_items_per_worker: Option<u64>,
    /// How the files its inputs name are fingerprinted, when they name files (SPEC §8);
    /// `None` when they do not, or with `fingerprint = "path"`.
    pub file_state: Option<FileStateRule>,
}

/// The inputs of a task name files, whose state is part of each item's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStateRule {
    pub mode: FileStateMode,
    /// What a relative input path is relative to: the job folder for a `glob` (its
    /// matches are written relative to it), else where the function runs.
    pub base: PathBuf,
}

/// `fingerprint = "mtime"` or `"content"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStateMode {
    /// Size and modification time (nanoseconds).
    Mtime,
    /// SHA-256 of the bytes.
    Content,
}

/// When and how a failed item is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub count: u32,
    pub backoff: Backoff,
    /// Wait before the first retry (then grown by `backoff`).
    pub delay: Duration,
    /// Upper bound of the wait between attempts.
    pub max_delay: Duration,
    /// Which failures are retried; empty means every kind.
    pub on: Vec<RetryOn>,
}

impl RetryPolicy {
    /// `retries = N` (or nothing): N immediate retries of any failure.
    pub fn count(count: u32) -> RetryPolicy {
        RetryPolicy {
            count,
            backoff: Backoff::Fixed,
            delay: Duration::ZERO,
            max_delay: Duration::from_secs(30),
            on: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The same `delay` before every retry.
    Fixed,
    /// `delay`, then twice that, four times…, capped at `max_delay`.
    Exponential,
}

/// A kind of failure `retries.on` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// `"timeout"`: the item ran past its timeout.
    Timeout,
    /// `"crash"`: the process died by a signal, or a worker exited or broke the protocol.
    Crash,
    /// `"error"`: the function reported an error (a builtin's or worker's error, a Python
    /// exception).
    Error,
    /// `"exit:N"`: a command exited with code N.
    Exit(i32),
}

pub use crate::process::Limits;

/// What runs for each item.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// How results name the function, e.g. `builtin:square`.
    pub label: String,
    pub kind: FunctionKind,
}

/// One variant per function kind (SPEC §2 "Function kinds").
#[derive(Debug, Clone)]
pub enum FunctionKind {
    /// A builtin run by runjobs' own worker processes.
    Builtin {
        name: String,
        options: builtins::Options,
    },
    /// An external program, one process per item.
    Command(CommandSpec),
    /// A long-lived external worker speaking the JSON-lines protocol (SPEC §5).
    Worker {
        /// The program and its arguments (no templates).
        argv: Vec<String>,
        /// It takes several items a request line (`batch = true`).
        batch: bool,
    },
    /// A plain Python function, run by long-lived Python workers that runjobs starts.
    Python {
        /// Absolute path of the `.py` file.
        file: PathBuf,
        function: String,
        /// `python_exe`, default `python3`; a path is resolved against the job folder.
        python_exe: String,
    },
}

/// `command = [...]` and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// Argument templates: `{input}`, `{input.KEY}`, `{index}`, `{input.stem}`,
    /// `{input.name}`, `{input.dir}`, `{input.ext}`; `{{`/`}}` for literal braces. Checked at
    /// load time.
    pub argv: Vec<String>,
    /// Run `argv[0]` as a `sh -c` script with the input as `$1` (rest of argv after it).
    pub shell: bool,
    pub stdin: StdinMode,
    pub stdout: StdoutMode,
    /// Bytes of stdout kept (`max_output`); the rest is counted and dropped.
    pub max_output: usize,
}

/// Stdout kept per command item unless `max_output` says otherwise.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// What a command gets on standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinMode {
    /// Nothing (`/dev/null`); the default.
    Null,
    /// The input as JSON.
    Json,
    /// The input as text (a string as-is, anything else as JSON).
    Text,
}

/// How a command's standard output becomes the item's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// Trimmed text (the default).
    Text,
    /// Parsed as JSON.
    Json,
    /// An array of its lines.
    Lines,
    /// Discarded; the output is null.
    Ignore,
}

/// Where a task's items come from. Paths are absolute.
#[derive(Debug, Clone)]
pub enum InputSpec {
    List(Vec<Value>),
    Range {
        start: i64,
        stop: i64,
        step: i64,
    },
    Lines(PathBuf),
    File(PathBuf),
    /// `pattern` is absolute; items are paths relative to `base` (the job folder) when under it.
    Glob {
        pattern: String,
        base: PathBuf,
    },
    /// Keys in declaration order; the last key varies fastest.
    Matrix(Vec<(String, Vec<Value>)>),
    /// The outputs of the ok items of an earlier task, in its input order.
    From(String),
}

/// The default worker count: one per CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// Folds `.` and `..` out of a path without touching the file system, so messages show
/// `/jobs/out/x.json` rather than `/jobs/sub/../out/x.json`.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
