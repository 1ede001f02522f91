//! Semantic checks and defaults: a schema-valid `JobFile` → a runnable `Job`.
//!
//! Owns what the schema cannot say: names that must refer to something (functions, builtins,
//! earlier tasks, a Python file's functions), files and folders that must exist, command
//! templates, keys only one function kind takes, an output path that must be writable, and the
//! option precedence task > function > job > default. It looks at the file system but never
//! changes it: validation creates no folder and no file, and runs no program.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Access, access};

use super::diag::{Diagnostic, backticked, closest, did_you_mean};
use super::model::{
    BackoffDef, FingerprintDef, FunctionDef, InputKindDef, InputsDef, JobFile, LimitsDef,
    MaxFailuresDef, OptionsDef, RetriesDef, StdinDef, StdoutDef, TaskDef, Workers,
};
use super::resolved::{
    Backoff, CommandSpec, DEFAULT_HOOK_TIMEOUT, DEFAULT_KILL_GRACE, DEFAULT_MAX_OUTPUT,
    ExecutorKind, ExecutorPlan, FailureLimit, FileStateMode, FileStateRule, Format, FunctionKind,
    FunctionSpec, Hooks, InputSpec, Job, Limits, OutputPlan, RetryOn, RetryPolicy, SlurmSettings,
    StdinMode, StdoutMode, Task, default_workers, normalize,
};
use super::schema::memory_limit;
use super::span::{At, Source, task_ref};
use crate::builtins;

mod admit;
mod functions;
mod options;
mod output;
mod tasks;
mod templates;

pub use admit::memfree_problem;
pub use output::{output_placeholder_problems, writable};
use templates::*;

/// The output path when `[output] path` is not set.
pub(super) const DEFAULT_OUTPUT: &str = "out/{job}.json";
/// The placeholders an output path may use; the writer fills them in.
const PLACEHOLDERS: [&str; 3] = ["job", "date", "timestamp"];
/// The placeholders a command argument may use, besides `{input.KEY}`.
const ARG_PLACEHOLDERS: [&str; 8] = [
    "input",
    "index",
    "number",
    "input.stem",
    "input.name",
    "input.dir",
    "input.ext",
    "input.noext",
];
const ARG_HELP: &str = "a command argument may use `{input}`, `{input.KEY}`, `{index}`, \
                        `{number}`, `{input.stem}`, `{input.name}`, `{input.dir}`, \
                        `{input.ext}` and `{input.noext}`; write `{{` and `}}` for literal \
                        braces";
/// The failure kinds `retries.on` may name, besides `exit:N`.
const RETRY_ON: [&str; 3] = ["timeout", "crash", "error"];
const RETRY_ON_HELP: &str =
    "accepted: `timeout`, `crash`, `error` and `exit:N` with N from 0 to 255";
/// `python_exe` when not set.
const DEFAULT_PYTHON: &str = "python3";
/// `retries.max_delay` when not set (or `delay`, when that is longer).
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
const RELATIVE_HELP: &str = "relative paths start at the job file's folder";

/// Checks `file` (already schema-valid) and builds the `Job`, or returns every problem found.
pub fn resolve(file: JobFile, src: &Source<'_>) -> Result<Job, Vec<Diagnostic>> {
    // Relative paths in the file start here, whatever the current directory is (cron starts
    // in $HOME). The folder as named, not the file's: a symlinked job file keeps its link's
    // folder, as a user reading the file there expects.
    let folder = match src.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(folder).map_err(|e| {
        let msg = format!(
            "cannot resolve the job file's folder `{}`: {e}",
            folder.display()
        );
        vec![Diagnostic::file(src.path, msg)]
    })?;
    let name = match &file.name {
        Some(name) => name.clone(),
        None => src
            .path
            .file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into()),
    };
    let mut r = Resolver {
        src,
        file: &file,
        dir,
        diags: Vec::new(),
    };
    let output = r.output();
    let hooks = r.hooks();
    let executor = r.executor();
    let admit = r.admit();
    let job_options = r.options(&[], file.options());
    let deadline = file
        .deadline
        .as_deref()
        .and_then(|d| r.positive_duration(&["deadline"], d));
    let max_failures = file.max_failures.as_ref().map(|m| match m {
        MaxFailuresDef::Count(n) => FailureLimit::Count(*n),
        // The schema checked the shape: digits, an optional fraction, then `%`.
        MaxFailuresDef::Percent(p) => {
            FailureLimit::Percent(p.trim_end_matches('%').parse().unwrap_or(100.0))
        }
    });
    // Every declared function, used or not: a broken one is a bug waiting for its first use.
    let functions: BTreeMap<&str, Declared> = file
        .functions
        .iter()
        .map(|(name, f)| (name.as_str(), r.declared(name, f)))
        .collect();
    let names: Vec<&str> = file
        .tasks
        .iter()
        .map(|t| t.name.as_deref().unwrap_or(&t.function))
        .collect();
    let tasks: Vec<Task> = (0..file.tasks.len())
        .filter_map(|i| r.task(i, &names, &functions, &job_options))
        .collect();
    if !r.diags.is_empty() {
        return Err(r.diags);
    }
    Ok(Job {
        name,
        file: src.path.to_path_buf(),
        dir: r.dir,
        description: file.description.clone(),
        schedule: file.schedule.clone(),
        output,
        hooks,
        executor,
        tasks,
        deadline,
        max_failures,
        admit,
    })
}

/// A `[functions.NAME]`, checked once whether or not a task uses it.
struct Declared {
    /// `None` when the function is broken (and that is already reported).
    spec: Option<FunctionSpec>,
    options: Options,
}

/// The options one level (the job, a function, a task) sets, parsed. Unset (or invalid, which
/// is already reported) options are `None` or empty.
#[derive(Debug, Clone, Default, PartialEq)]
struct Options {
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    kill_grace: Option<Duration>,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    limits: Limits,
    max_items_per_worker: Option<u64>,
    fingerprint: Option<FingerprintDef>,
    input: Option<InputKindDef>,
}

impl Options {
    /// `self` over `lower`: whatever `self` sets wins; `env` merges by variable and `limits` by
    /// field. `retries` is taken whole: a task's `retries = 5` replaces its function's table
    /// (backoff and all), so what a level writes is what it gets.
    fn over(&self, lower: &Options) -> Options {
        let mut env = lower.env.clone();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Options {
            timeout: self.timeout.or(lower.timeout),
            retry: self.retry.clone().or_else(|| lower.retry.clone()),
            kill_grace: self.kill_grace.or(lower.kill_grace),
            env,
            cwd: self.cwd.clone().or_else(|| lower.cwd.clone()),
            limits: Limits {
                memory: self.limits.memory.or(lower.limits.memory),
                cpu: self.limits.cpu.or(lower.limits.cpu),
                open_files: self.limits.open_files.or(lower.limits.open_files),
            },
            max_items_per_worker: self.max_items_per_worker.or(lower.max_items_per_worker),
            fingerprint: self.fingerprint.or(lower.fingerprint),
            input: self.input.or(lower.input),
        }
    }
}

/// One problem inside a string value (a command argument, a `python` spec): the byte range it
/// covers, what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    range: Range<usize>,
    message: String,
    help: String,
}

impl Problem {
    fn new(range: Range<usize>, message: String, help: impl Into<String>) -> Problem {
        Problem {
            range,
            message,
            help: help.into(),
        }
    }
}

struct Resolver<'a> {
    src: &'a Source<'a>,
    file: &'a JobFile,
    dir: PathBuf,
    diags: Vec<Diagnostic>,
}

impl Resolver<'_> {
    fn push(&mut self, at: &[&str], target: At, message: String, help: Option<String>) {
        let d = self.src.diag(at, target, message).with_help_opt(help);
        self.diags.push(d);
    }

    /// A problem in part of the string `value` written at `at`.
    fn push_in(&mut self, at: &[&str], value: &str, p: Problem) {
        let d = self.src.diag_in_string(at, value, p.range, p.message);
        self.diags.push(d.with_help(p.help));
    }
}

const MAX_ITEMS_ON_COMMAND: &str = "`max_items_per_worker` does not apply to a `command` \
                                    function: it starts a new process for every item";
const MAX_ITEMS_HELP: &str = "remove it; it recycles the long-lived processes of `worker`, \
                              `python` and `builtin` functions";

/// `at` with `key` appended.
fn sub<'s>(at: &[&'s str], key: &'s str) -> Vec<&'s str> {
    let mut v = at.to_vec();
    v.push(key);
    v
}

/// `rel` against `base` (an absolute `rel` stays as it is), with `.` components dropped. Not
/// canonicalized, so symlinks keep their own path (see `python_exe`).
fn join(base: &Path, rel: &str) -> PathBuf {
    base.join(rel).components().collect()
}

/// A path as the `String` an argv needs, when it is UTF-8.
fn utf8(path: &Path) -> Option<String> {
    path.to_str().map(str::to_string)
}

#[cfg(test)]
mod tests;
