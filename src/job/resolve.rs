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
    BackoffDef, FunctionDef, InputsDef, JobFile, LimitsDef, MaxFailuresDef, OptionsDef, RetriesDef,
    StdinDef, StdoutDef, TaskDef, Workers,
};
use super::resolved::{
    Backoff, CommandSpec, DEFAULT_KILL_GRACE, FailureLimit, Format, FunctionKind, FunctionSpec,
    InputSpec, Job, Limits, OutputPlan, RetryOn, RetryPolicy, StdinMode, StdoutMode, Task,
    default_workers,
};
use super::schema::memory_limit;
use super::span::{At, Source};
use crate::builtins;

/// The output path when `[output] path` is not set.
const DEFAULT_OUTPUT: &str = "out/{job}.json";
/// The placeholders an output path may use; the writer fills them in.
const PLACEHOLDERS: [&str; 3] = ["job", "date", "timestamp"];
/// The placeholders a command argument may use, besides `{input.KEY}`.
const ARG_PLACEHOLDERS: [&str; 6] = [
    "input",
    "index",
    "input.stem",
    "input.name",
    "input.dir",
    "input.ext",
];
const ARG_HELP: &str = "a command argument may use `{input}`, `{input.KEY}`, `{index}`, \
                        `{input.stem}`, `{input.name}`, `{input.dir}` and `{input.ext}`; write \
                        `{{` and `}}` for literal braces";
/// What a template may hold: these placeholders, and `{input.KEY}`.
struct TemplateKind {
    placeholders: &'static [&'static str],
    help: &'static str,
}
const COMMAND_TEMPLATE: TemplateKind = TemplateKind {
    placeholders: &ARG_PLACEHOLDERS,
    help: ARG_HELP,
};
/// The `format` builtin's `template`.
const FORMAT_TEMPLATE: TemplateKind = TemplateKind {
    placeholders: &["input"],
    help: "a `format` template may use `{input}` and `{input.KEY}`; write `{{` and `}}` for \
           literal braces",
};
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
        tasks,
        deadline,
        max_failures,
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

    fn output(&mut self) -> OutputPlan {
        let out = self.file.output.as_ref();
        let written = out.and_then(|o| o.path.as_deref());
        let path = written.unwrap_or(DEFAULT_OUTPUT);
        let at: &[&str] = if written.is_some() {
            &["output", "path"]
        } else {
            &["output"]
        };
        self.check_placeholders(path, at);
        let format = match out.and_then(|o| o.format.as_deref()) {
            // The schema's enum matches `Format::parse`.
            Some(f) => Format::parse(f),
            None => {
                let ext = Path::new(path).extension().map(|e| e.to_string_lossy());
                let format = ext.as_deref().and_then(Format::from_extension);
                if format.is_none() {
                    let msg = format!("cannot tell the output format from `{path}`");
                    let help = "set `format` in `[output]` to `json`, `toml` or `jsonl`, or end \
                                the path with .json, .toml or .jsonl";
                    self.push(at, At::Value, msg, Some(help.into()));
                }
                format
            }
        };
        let path_template = self.dir.join(path);
        if let Err(why) = writable(&path_template) {
            let msg = format!("cannot write the output `{path}`: {why}");
            let help = "the output path is relative to the job file's folder; point it \
                        somewhere runjobs can create the file";
            self.push(at, At::Value, msg, Some(help.into()));
        }
        OutputPlan {
            path_template,
            format,
        }
    }

    fn check_placeholders(&mut self, path: &str, at: &[&str]) {
        for (msg, help) in output_placeholder_problems(path) {
            self.push(at, At::Value, msg, Some(help));
        }
    }

    /// The options one level sets, parsed and checked; `at` is where that level is written
    /// (`[]` for the job, `["functions", NAME]`, `["task", INDEX]`).
    fn options(&mut self, at: &[&str], o: OptionsDef<'_>) -> Options {
        Options {
            timeout: o
                .timeout
                .and_then(|t| self.positive_duration(&sub(at, "timeout"), t)),
            retry: o.retries.and_then(|r| self.retry(&sub(at, "retries"), r)),
            kill_grace: o
                .kill_grace
                .and_then(|t| self.duration(&sub(at, "kill_grace"), t)),
            env: o.env.cloned().unwrap_or_default(),
            cwd: o.cwd.and_then(|c| self.cwd(&sub(at, "cwd"), c)),
            limits: o
                .limits
                .map(|l| self.limits(&sub(at, "limits"), l))
                .unwrap_or_default(),
            max_items_per_worker: o.max_items_per_worker,
        }
    }

    fn duration(&mut self, at: &[&str], text: &str) -> Option<Duration> {
        // The schema's `duration` format is this same parser, so this fails only if they drift.
        match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                let msg = format!("invalid duration `{text}`: {e}");
                self.push(at, At::Value, msg, None);
                None
            }
        }
    }

    /// A duration that must not be zero (a timeout or deadline of zero stops everything
    /// before it starts).
    fn positive_duration(&mut self, at: &[&str], text: &str) -> Option<Duration> {
        let d = self.duration(at, text)?;
        if d.is_zero() {
            let key = at.last().copied().unwrap_or("duration");
            let msg = format!("`{key}` of zero: every item would be stopped before it starts");
            let help = "use a duration such as `500ms`, `10s` or `2m`, or leave the key out";
            self.push(at, At::Value, msg, Some(help.into()));
            return None;
        }
        Some(d)
    }

    fn retry(&mut self, at: &[&str], def: &RetriesDef) -> Option<RetryPolicy> {
        let t = match def {
            RetriesDef::Count(n) => return Some(RetryPolicy::count(*n)),
            RetriesDef::Table(t) => t,
        };
        let delay = match &t.delay {
            Some(d) => self.duration(&sub(at, "delay"), d)?,
            None => Duration::ZERO,
        };
        let max_delay = match &t.max_delay {
            Some(m) => self.duration(&sub(at, "max_delay"), m)?,
            // A lone `delay = "1m"` means a minute, not the default cap of 30s.
            None => delay.max(DEFAULT_MAX_DELAY),
        };
        let mut ok = true;
        if delay > max_delay {
            let msg = format!(
                "`delay` ({}) is longer than `max_delay` ({})",
                humantime::format_duration(delay),
                humantime::format_duration(max_delay)
            );
            let help = "the wait between attempts never exceeds `max_delay`; raise it or lower \
                        `delay`";
            self.push(&sub(at, "delay"), At::Value, msg, Some(help.into()));
            ok = false;
        }
        let mut on = Vec::new();
        for (i, entry) in t.on.iter().flatten().enumerate() {
            match retry_on(entry) {
                Ok(kind) if on.contains(&kind) => {}
                Ok(kind) => on.push(kind),
                Err((msg, help)) => {
                    let idx = i.to_string();
                    self.push(&[at, &["on", &idx]].concat(), At::Value, msg, Some(help));
                    ok = false;
                }
            }
        }
        let backoff = match t.backoff {
            Some(BackoffDef::Exponential) => Backoff::Exponential,
            Some(BackoffDef::Fixed) | None => Backoff::Fixed,
        };
        ok.then_some(RetryPolicy {
            count: t.count,
            backoff,
            delay,
            max_delay,
            on,
        })
    }

    /// `cwd`, resolved against the job's folder; it must be a folder we can enter.
    fn cwd(&mut self, at: &[&str], written: &str) -> Option<PathBuf> {
        let path = join(&self.dir, written);
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => match access(&path, Access::EXEC_OK) {
                Ok(()) => return Some(path),
                Err(e) => format!("cannot be entered: {e}"),
            },
            Ok(_) => "is a file, not a folder".to_string(),
            Err(e) if e.kind() == ErrorKind::NotFound => "does not exist".to_string(),
            Err(e) => format!("cannot be used: {e}"),
        };
        let msg = format!("`cwd` folder `{written}` {problem}");
        let help = format!("looked at `{}`; {RELATIVE_HELP}", path.display());
        self.push(at, At::Value, msg, Some(help));
        None
    }

    fn limits(&mut self, at: &[&str], l: &LimitsDef) -> Limits {
        let memory = l.memory.as_deref().and_then(|m| match memory_limit(m) {
            Ok(bytes) => Some(bytes),
            // The schema's `memory-limit` format is this same check.
            Err(why) => {
                let msg = format!("invalid memory limit `{m}`: {why}");
                self.push(&sub(at, "memory"), At::Value, msg, None);
                None
            }
        });
        let cpu = l.cpu.as_deref().and_then(|c| {
            let d = self.duration(&sub(at, "cpu"), c)?;
            // setrlimit counts whole seconds; round up so "1500ms" still allows 1.5 s.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if secs == 0 {
                let msg = format!("the `cpu` limit must be at least 1s, not `{c}`");
                let help = "the CPU-time limit counts whole seconds (rounded up); 0 would kill \
                            every process at once";
                self.push(&sub(at, "cpu"), At::Value, msg, Some(help.into()));
            }
            (secs > 0).then_some(secs)
        });
        Limits {
            memory,
            cpu,
            open_files: l.open_files,
        }
    }

    /// Checks a `[functions.NAME]` and builds what it runs.
    fn declared(&mut self, name: &str, f: &FunctionDef) -> Declared {
        let at = ["functions", name];
        let options = self.options(&at, f.options());
        self.misplaced_keys(name, f);
        // The schema lets exactly one kind key through.
        let spec = if let Some(builtin) = &f.builtin {
            self.builtin_function(name, builtin, f)
        } else if let Some(argv) = &f.command {
            self.command_function(name, argv, f)
        } else if let Some(argv) = &f.worker {
            // The program is found where the function runs, unless a task moves it.
            let base = options.cwd.clone().unwrap_or_else(|| self.dir.clone());
            self.worker_function(name, argv, &base)
        } else if let Some(spec) = &f.python {
            self.python_function(name, spec, f)
        } else {
            None
        };
        Declared { spec, options }
    }

    /// Keys that only another kind of function takes.
    fn misplaced_keys(&mut self, name: &str, f: &FunctionDef) {
        let kind = kind_of(f);
        let table = format!("`[functions.{name}]`");
        if f.template.is_some() && f.builtin.as_deref() != Some("format") {
            let (msg, help) = match f.builtin.as_deref() {
                Some(b) => (
                    format!("`template` only applies to builtin `format`, not `{b}`"),
                    "remove `template`, or set `builtin = \"format\"`",
                ),
                None => (
                    format!(
                        "`template` only applies to builtin `format`, and {table} is a `{kind}` \
                         function"
                    ),
                    if kind == "command" {
                        "remove `template`: a command's arguments are templates themselves, e.g. \
                         `command = [\"echo\", \"Hello, {input}!\"]`"
                    } else {
                        "remove `template`"
                    },
                ),
            };
            let at = ["functions", name, "template"];
            self.push(&at, At::Key, msg, Some(help.into()));
        }
        let only = [
            ("shell", f.shell.is_some(), "command"),
            ("stdin", f.stdin.is_some(), "command"),
            ("stdout", f.stdout.is_some(), "command"),
            ("python_exe", f.python_exe.is_some(), "python"),
        ];
        for (key, set, owner) in only {
            if !set || kind == owner {
                continue;
            }
            let msg = format!(
                "`{key}` only applies to `{owner}` functions, and {table} is a `{kind}` function"
            );
            let help = match (key, kind) {
                ("stdin" | "stdout", "worker" | "python") => format!(
                    "remove `{key}`: a {kind} function's standard input and output carry the \
                     JSON-lines protocol"
                ),
                ("shell", "worker") => "remove `shell`; to run a worker through the shell, write \
                                        `worker = [\"sh\", \"-c\", \"...\"]`"
                    .to_string(),
                _ => format!("remove `{key}`"),
            };
            let at = ["functions", name, key];
            self.push(&at, At::Key, msg, Some(help));
        }
        if f.max_items_per_worker.is_some() && kind == "command" {
            self.push(
                &["functions", name, "max_items_per_worker"],
                At::Key,
                MAX_ITEMS_ON_COMMAND.into(),
                Some(MAX_ITEMS_HELP.into()),
            );
        }
    }

    fn builtin_function(
        &mut self,
        name: &str,
        builtin: &str,
        f: &FunctionDef,
    ) -> Option<FunctionSpec> {
        if builtins::lookup(builtin).is_none() {
            let msg = format!("unknown builtin `{builtin}` in `[functions.{name}]`");
            let help = did_you_mean(builtin, builtins::names()).map_or_else(
                || "`runjobs functions` lists the builtins".to_string(),
                |d| format!("{d} (`runjobs functions` lists the builtins)"),
            );
            self.push(&["functions", name, "builtin"], At::Value, msg, Some(help));
            return None;
        }
        if builtin == "format" {
            let Some(template) = &f.template else {
                let msg =
                    format!("`[functions.{name}]` uses builtin `format` but has no `template`");
                let help = "add one, e.g. `template = \"Hello, {input}!\"` ({input} and \
                            {input.KEY} are filled in)";
                self.push(&["functions", name], At::Value, msg, Some(help.into()));
                return None;
            };
            let problems = problems_of_template(template, &FORMAT_TEMPLATE);
            if !problems.is_empty() {
                let at = ["functions", name, "template"];
                problems
                    .into_iter()
                    .for_each(|p| self.push_in(&at, template, p));
                return None;
            }
        }
        Some(FunctionSpec {
            label: format!("builtin:{builtin}"),
            kind: FunctionKind::Builtin {
                name: builtin.to_string(),
                options: builtins::Options {
                    template: f.template.clone(),
                },
            },
        })
    }

    fn command_function(
        &mut self,
        name: &str,
        argv: &[String],
        f: &FunctionDef,
    ) -> Option<FunctionSpec> {
        let shell = f.shell.unwrap_or(false);
        let mut ok = true;
        for (i, arg) in argv.iter().enumerate() {
            let idx = i.to_string();
            let at = ["functions", name, "command", &idx];
            let problems = if shell && i == 0 {
                script_problems(arg)
            } else {
                template_problems(arg)
            };
            for p in problems {
                self.push_in(&at, arg, p);
                ok = false;
            }
        }
        let stdin = match f.stdin {
            None => StdinMode::Null,
            Some(StdinDef::Json) => StdinMode::Json,
            Some(StdinDef::Text) => StdinMode::Text,
        };
        let stdout = match f.stdout {
            None | Some(StdoutDef::Text) => StdoutMode::Text,
            Some(StdoutDef::Json) => StdoutMode::Json,
            Some(StdoutDef::Lines) => StdoutMode::Lines,
            Some(StdoutDef::Ignore) => StdoutMode::Ignore,
        };
        ok.then(|| FunctionSpec {
            label: format!("command:{name}"),
            kind: FunctionKind::Command(CommandSpec {
                argv: argv.to_vec(),
                shell,
                stdin,
                stdout,
            }),
        })
    }

    /// A worker's program: a path (it has a `/`) is made absolute against `base` and must be
    /// an executable file; a bare name is left to `PATH` at run time.
    fn worker_function(
        &mut self,
        name: &str,
        argv: &[String],
        base: &Path,
    ) -> Option<FunctionSpec> {
        let mut argv = argv.to_vec();
        let program = argv.first()?; // the schema requires one element
        if program.contains('/') {
            let path = join(base, program);
            let at = ["functions", name, "worker", "0"];
            let problem = program_problem(&path).or_else(|| {
                utf8(&path)
                    .is_none()
                    .then(|| "has a path that is not UTF-8".to_string())
            });
            if let Some(problem) = problem {
                let msg = format!("worker program `{program}` {problem}");
                let help = format!(
                    "looked at `{}`; a relative program path starts at the function's `cwd`, \
                     else the job file's folder{}",
                    path.display(),
                    if problem.contains("executable") {
                        "; make it executable (`chmod +x`) or name its interpreter first, e.g. \
                         `worker = [\"python3\", \"worker.py\"]`"
                    } else {
                        ""
                    }
                );
                self.push(&at, At::Value, msg, Some(help));
                return None;
            }
            argv[0] = utf8(&path)?;
        }
        Some(FunctionSpec {
            label: format!("worker:{name}"),
            kind: FunctionKind::Worker { argv },
        })
    }

    /// `python = "FILE:FUNCTION"` (split at the last `:`): the file must exist and define the
    /// function. Problems point at the part of the string they are about.
    fn python_function(&mut self, name: &str, spec: &str, f: &FunctionDef) -> Option<FunctionSpec> {
        let at = ["functions", name, "python"];
        let exe = self.python_exe(name, f.python_exe.as_deref());
        let Some((file, function)) = spec.rsplit_once(':') else {
            let msg = format!("`python` must be \"FILE:FUNCTION\", not `{spec}`");
            // `python = "fns.py"`: suggest the file's first function.
            let source = spec
                .ends_with(".py")
                .then(|| python_source(&join(&self.dir, spec)));
            let help = match source.and_then(Result::ok) {
                Some(text) if !python_defs(&text).is_empty() => format!(
                    "name the function after a `:`, e.g. `python = \"{spec}:{}\"`",
                    python_defs(&text)[0]
                ),
                _ => "name a .py file and a function in it, e.g. \
                      `python = \"fns.py:square_number\"`"
                    .to_string(),
            };
            self.push(&at, At::Value, msg, Some(help));
            return None;
        };
        let file_part = 0..file.len();
        let function_part = file.len() + 1..spec.len();
        let mut ok = exe.is_some();
        if !is_python_identifier(function) {
            let message = if function.is_empty() {
                format!("no function name after `:` in `{spec}`")
            } else {
                format!("`{function}` is not a Python function name")
            };
            let help = "a function name has letters, digits and `_`, and does not start with a \
                        digit";
            let range = function_part.clone();
            self.push_in(&at, spec, Problem::new(range, message, help));
            ok = false;
        }
        if !file.ends_with(".py") {
            let message = if file.is_empty() {
                format!("no file before `:` in `{spec}`")
            } else {
                format!("`{file}` is not a .py file")
            };
            let help = "`python` names a Python source file and a function in it, e.g. \
                        \"fns.py:square_number\"";
            self.push_in(&at, spec, Problem::new(file_part, message, help));
            return None;
        }
        let path = join(&self.dir, file);
        let text = match python_source(&path) {
            Ok(text) => text,
            Err(problem) => {
                let message = format!("python file `{file}` {problem}");
                let help = format!("looked at `{}`; {RELATIVE_HELP}", path.display());
                self.push_in(&at, spec, Problem::new(file_part, message, help));
                return None;
            }
        };
        if ok && !python_defines(&text, function) {
            let message = format!("no function `{function}` defined in `{file}`");
            let help = missing_function_help(file, function, &text);
            self.push_in(&at, spec, Problem::new(function_part, message, help));
            ok = false;
        }
        let python_exe = exe.filter(|_| ok)?;
        Some(FunctionSpec {
            label: format!("python:{spec}"),
            kind: FunctionKind::Python {
                file: path,
                function: function.to_string(),
                python_exe,
            },
        })
    }

    /// `python_exe`: a bare name is left to `PATH`; a path (it has a `/`) is resolved against
    /// the job's folder and must be an executable file. Not canonicalized: a virtualenv's
    /// `bin/python` is a symlink whose own path is what selects the environment.
    fn python_exe(&mut self, name: &str, written: Option<&str>) -> Option<String> {
        let exe = written.unwrap_or(DEFAULT_PYTHON);
        if !exe.contains('/') {
            return Some(exe.to_string());
        }
        let path = join(&self.dir, exe);
        let problem = program_problem(&path).or_else(|| {
            utf8(&path)
                .is_none()
                .then(|| "has a path that is not UTF-8".to_string())
        });
        if let Some(problem) = problem {
            let msg = format!("python interpreter `{exe}` {problem}");
            let help = format!(
                "looked at `{}`; {RELATIVE_HELP}; a bare name such as `python3` is looked up \
                 in PATH",
                path.display()
            );
            self.push(
                &["functions", name, "python_exe"],
                At::Value,
                msg,
                Some(help),
            );
            return None;
        }
        utf8(&path)
    }

    fn task(
        &mut self,
        i: usize,
        names: &[&str],
        functions: &BTreeMap<&str, Declared>,
        job: &Options,
    ) -> Option<Task> {
        let t: &TaskDef = &self.file.tasks[i];
        let idx = i.to_string();
        let name = names[i];
        if let Some(first) = names[..i].iter().position(|n| *n == name) {
            let key = if t.name.is_some() { "name" } else { "function" };
            let msg = format!(
                "duplicate task name `{name}`: `[[task]]` #{} has it too",
                first + 1
            );
            let help = "tasks are named by `name`, else by their function; set `name` to tell \
                        them apart";
            self.push(&["task", &idx, key], At::Value, msg, Some(help.into()));
        }
        let declared = functions.get(t.function.as_str());
        let function = self.function(t, declared, &idx);
        let inputs = self.inputs(t, i, names);
        let workers = match t.workers.as_ref().or(self.file.workers.as_ref()) {
            Some(Workers::Count(n)) => *n as usize,
            Some(Workers::Named(named)) => {
                debug_assert_eq!(named, "num-cpus", "the schema allows no other name");
                default_workers()
            }
            None => default_workers(),
        };
        let own = self.options(&["task", &idx], t.options());
        let options = match declared {
            Some(d) => own.over(&d.options.over(job)),
            None => own.over(job),
        };
        let function = function?;
        if t.max_items_per_worker.is_some() && matches!(function.kind, FunctionKind::Command(_)) {
            self.push(
                &["task", &idx, "max_items_per_worker"],
                At::Key,
                MAX_ITEMS_ON_COMMAND.into(),
                Some(MAX_ITEMS_HELP.into()),
            );
            return None;
        }
        Some(Task {
            name: name.to_string(),
            function,
            inputs: inputs?,
            workers,
            timeout: options.timeout,
            retry: options.retry.unwrap_or_else(|| RetryPolicy::count(0)),
            kill_grace: options.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
            env: options.env,
            cwd: options.cwd.unwrap_or_else(|| self.dir.clone()),
            limits: options.limits,
            max_items_per_worker: options.max_items_per_worker,
        })
    }

    fn function(
        &mut self,
        t: &TaskDef,
        declared: Option<&Declared>,
        idx: &str,
    ) -> Option<FunctionSpec> {
        let at = ["task", idx, "function"];
        let name = t.function.as_str();
        match declared {
            // A broken function is reported where it is declared.
            Some(d) => d.spec.clone(),
            None if name == "format" => {
                let msg = "builtin `format` needs a `template`, which a task cannot set".into();
                let help = "declare a function and use its name:\n[functions.greet]\n\
                            builtin = \"format\"\ntemplate = \"Hello, {input}!\"\n\
                            then set `function = \"greet\"` in the task";
                self.push(&at, At::Value, msg, Some(help.into()));
                None
            }
            None if builtins::lookup(name).is_some() => Some(FunctionSpec {
                label: format!("builtin:{name}"),
                kind: FunctionKind::Builtin {
                    name: name.to_string(),
                    options: builtins::Options::default(),
                },
            }),
            None => {
                let declared = self.file.functions.keys().map(String::as_str);
                let builtins = builtins::names().map(|n| -> &str { n });
                let dym = did_you_mean(name, declared.chain(builtins));
                let msg = format!("unknown function `{name}` in `[[task]]` #{}", task_no(idx));
                let help = format!(
                    "{}a task names a `[functions.NAME]` of this file or a builtin \
                     (`runjobs functions` lists them)",
                    dym.map_or(String::new(), |d| d + " ")
                );
                self.push(&at, At::Value, msg, Some(help));
                None
            }
        }
    }

    fn inputs(&mut self, t: &TaskDef, me: usize, names: &[&str]) -> Option<InputSpec> {
        let idx = &me.to_string();
        let s = match &t.inputs {
            InputsDef::List(values) => return Some(InputSpec::List(values.clone())),
            InputsDef::Source(s) => s,
        };
        let at = |key: &'static str| ["task", idx, "inputs", key];
        if let Some(r) = &s.range {
            let (start, stop, step) = match r[..] {
                [start, stop] => (start, stop, 1),
                [start, stop, step] => (start, stop, step),
                _ => return None, // the schema allows only 2 or 3
            };
            if step == 0 {
                let msg = format!(
                    "`inputs.range` of `[[task]]` #{} has a step of 0",
                    task_no(idx)
                );
                let help = "the step must not be 0 (as in Python's range()); leave it out for 1";
                self.push(
                    &["task", idx, "inputs", "range", "2"],
                    At::Value,
                    msg,
                    Some(help.into()),
                );
                return None;
            }
            Some(InputSpec::Range { start, stop, step })
        } else if let Some(p) = &s.lines {
            self.input_file(p, &at("lines")).map(InputSpec::Lines)
        } else if let Some(p) = &s.file {
            self.input_file(p, &at("file")).map(InputSpec::File)
        } else if let Some(g) = &s.glob {
            if let Err(e) = glob::Pattern::new(g) {
                let msg = format!("invalid glob `{g}`: {} (at char {})", e.msg, e.pos + 1);
                let help = "use `*`, `?`, `**`, `[abc]` and `[!abc]`; `[[]` matches `[`";
                self.push(&at("glob"), At::Value, msg, Some(help.into()));
                return None;
            }
            // Escape the folder: its name may hold `[`, `*` or `?`, which must match literally.
            let pattern = if Path::new(g).is_absolute() {
                g.clone()
            } else {
                let base = glob::Pattern::escape(&self.dir.to_string_lossy());
                format!("{}/{g}", base.trim_end_matches('/'))
            };
            Some(InputSpec::Glob {
                pattern,
                base: self.dir.clone(),
            })
        } else if let Some(m) = &s.matrix {
            let axes = m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()));
            Some(InputSpec::Matrix(axes.collect()))
        } else if let Some(from) = &s.from {
            let problem = match names.iter().position(|n| n == from) {
                Some(j) if j < me => return Some(InputSpec::From(from.clone())),
                Some(j) if j == me => format!("task `{from}` cannot take its inputs from itself"),
                Some(j) => format!(
                    "`from = \"{from}\"` names a later task (`[[task]]` #{}); tasks run in \
                     file order, so move it before this one",
                    j + 1
                ),
                None => format!("no task named `{from}` before `[[task]]` #{}", me + 1),
            };
            let dym = did_you_mean(from, names[..me].iter().copied());
            let help = format!(
                "{}`from` takes the outputs of an earlier task, named by its `name`, else by its \
                 function",
                dym.map_or(String::new(), |d| d + " ")
            );
            self.push(&at("from"), At::Value, problem, Some(help));
            None
        } else {
            let msg =
                "`inputs` needs exactly one of `range`, `lines`, `file`, `glob`, `matrix`, `from`";
            self.push(&["task", idx, "inputs"], At::Value, msg.into(), None);
            None
        }
    }

    /// An input file, resolved against the job's folder; it must exist and be readable now.
    fn input_file(&mut self, written: &str, at: &[&str]) -> Option<PathBuf> {
        let path = self.dir.join(written);
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => "is a folder, not a file".to_string(),
            Ok(_) => match access(&path, Access::READ_OK) {
                Ok(()) => return Some(path),
                Err(e) => format!("cannot be read: {e}"),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => "does not exist".to_string(),
            Err(e) => format!("cannot be read: {e}"),
        };
        let msg = format!("input file `{written}` {problem}");
        let help = format!(
            "looked at `{}`; relative paths start at the job file's folder",
            path.display()
        );
        self.push(at, At::Value, msg, Some(help));
        None
    }
}

/// "`[[task]]` #N" numbers tasks from 1.
fn task_no(idx: &str) -> usize {
    idx.parse::<usize>().map_or(0, |i| i + 1)
}

/// The problems (message, help) of an output path's placeholders: `[output] path` and `-o`
/// take the same ones.
pub fn output_placeholder_problems(path: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            let msg = format!("unclosed `{{` in the output path `{path}`");
            problems.push((msg, placeholder_help(None)));
            break;
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            let msg = format!("unknown placeholder `{{{name}}}` in the output path `{path}`");
            let dym = closest(name, PLACEHOLDERS).map(|c| format!("did you mean `{{{c}}}`?"));
            problems.push((msg, placeholder_help(dym)));
        }
        rest = &rest[open + close + 1..];
    }
    problems
}

fn placeholder_help(dym: Option<String>) -> String {
    let known = "the output path may use `{job}`, `{date}` and `{timestamp}`";
    dym.map_or(known.to_string(), |d| format!("{d} ({known})"))
}

/// Whether the output file could be created, without creating anything: the nearest existing
/// ancestor of its folder must be a folder we may write in (the rest is created at run time).
pub fn writable(target: &Path) -> Result<(), String> {
    if target.is_dir() {
        return Err(format!("`{}` is a folder", target.display()));
    }
    let mut folder = target.parent();
    while let Some(f) = folder {
        match std::fs::metadata(f) {
            Ok(m) if m.is_dir() => {
                return access(f, Access::WRITE_OK)
                    .map_err(|e| format!("cannot write in `{}`: {e}", f.display()));
            }
            Ok(_) => return Err(format!("`{}` is a file, not a folder", f.display())),
            // Not there yet (or under a file, which the next step up reports).
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                folder = f.parent();
            }
            Err(e) => return Err(format!("cannot check `{}`: {e}", f.display())),
        }
    }
    Ok(())
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

/// Why `path` cannot be run as a program, if it cannot.
fn program_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some("is a folder, not a program".into()),
        Ok(_) => access(path, Access::EXEC_OK)
            .err()
            .map(|e| format!("is not executable ({e})")),
        Err(e) if e.kind() == ErrorKind::NotFound => Some("does not exist".into()),
        Err(e) => Some(format!("cannot be checked: {e}")),
    }
}

/// The kind key a function uses (the schema guarantees exactly one).
fn kind_of(f: &FunctionDef) -> &'static str {
    if f.command.is_some() {
        "command"
    } else if f.worker.is_some() {
        "worker"
    } else if f.python.is_some() {
        "python"
    } else {
        "builtin"
    }
}

/// Problems in a command argument template: unknown or empty placeholders, unclosed `{`,
/// unmatched `}`. `{{` and `}}` are literal braces.
/// The problems of a command argument's template.
fn template_problems(arg: &str) -> Vec<Problem> {
    problems_of_template(arg, &COMMAND_TEMPLATE)
}

fn problems_of_template(arg: &str, kind: &TemplateKind) -> Vec<Problem> {
    let b = arg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'{', Some(b'{')) | (b'}', Some(b'}')) => i += 2,
            (b'{', _) => match arg[i + 1..].find(['{', '}']).map(|o| i + 1 + o) {
                Some(close) if b[close] == b'}' => {
                    out.extend(placeholder_problem(&arg[i + 1..close], i..close + 1, kind));
                    i = close + 1;
                }
                next => {
                    // Another `{` before any `}`: most likely a literal brace (JSON, say).
                    let (message, help) = match next {
                        Some(_) => (
                            format!("unescaped `{{` in `{arg}`"),
                            "write `{{` for a literal `{` and `}}` for a literal `}`".to_string(),
                        ),
                        None => (
                            format!("unclosed `{{` in `{arg}`"),
                            format!(
                                "close it, or write `{{{{` for a literal `{{`; {}",
                                kind.help
                            ),
                        ),
                    };
                    out.push(Problem {
                        range: i..i + 1,
                        message,
                        help,
                    });
                    i += 1;
                }
            },
            (b'}', _) => {
                out.push(Problem {
                    range: i..i + 1,
                    message: format!("unmatched `}}` in `{arg}`"),
                    help: "write `}}` for a literal `}`".into(),
                });
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The problem with placeholder `{name}` (at `range`), if it is not one a command may use.
fn placeholder_problem(name: &str, range: Range<usize>, kind: &TemplateKind) -> Option<Problem> {
    let is_field = name
        .strip_prefix("input.")
        .is_some_and(|key| !key.is_empty());
    if kind.placeholders.contains(&name) || is_field {
        return None;
    }
    let message = if name.is_empty() {
        "empty placeholder `{}`".to_string()
    } else {
        format!("unknown placeholder `{{{name}}}`")
    };
    let dym = closest(name, kind.placeholders.iter().copied())
        .map(|c| format!("did you mean `{{{c}}}`? "));
    Some(Problem {
        range,
        message,
        help: format!("{}{}", dym.unwrap_or_default(), kind.help),
    })
}

/// Placeholders in a `shell = true` script. The script is never a template (the shell has its
/// own braces: `${VAR}`, `{a,b}`, awk's `{print}`), so only our placeholder names are flagged,
/// and not after `$` (`${input}` is a shell variable).
fn script_problems(script: &str) -> Vec<Problem> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    for (i, _) in script.match_indices('{') {
        if i > 0 && matches!(b[i - 1], b'$' | b'{') {
            continue;
        }
        let Some(len) = script[i + 1..].find('}') else {
            continue;
        };
        let name = &script[i + 1..i + 1 + len];
        let field = name.strip_prefix("input.");
        let ours = matches!(name, "input" | "index")
            || field.is_some_and(|k| !k.is_empty() && !k.contains(char::is_whitespace));
        if !ours {
            continue;
        }
        let instead = match (name, field) {
            ("index", _) => "the item's index is in \"$RUNJOBS_INDEX\"".to_string(),
            (_, Some(_)) => format!(
                "to use `{{{name}}}`, add it as another element of `command` (after the \
                 script, it arrives as \"$2\", \"$3\", …)"
            ),
            _ => "write \"$1\" instead".to_string(),
        };
        out.push(Problem {
            range: i..i + len + 2,
            message: format!("placeholder `{{{name}}}` in a shell script"),
            help: format!(
                "with shell = true the input is $1 (never spliced into the script); {instead}"
            ),
        });
    }
    out
}

/// One entry of `retries.on`, or (message, help).
fn retry_on(entry: &str) -> Result<RetryOn, (String, String)> {
    match entry {
        "timeout" => return Ok(RetryOn::Timeout),
        "crash" => return Ok(RetryOn::Crash),
        "error" => return Ok(RetryOn::Error),
        _ => {}
    }
    if let Some(code) = entry.strip_prefix("exit:") {
        let digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
        return match code.parse::<u8>() {
            Ok(n) if digits => Ok(RetryOn::Exit(i32::from(n))),
            _ => Err((
                format!("`{entry}` does not name an exit code from 0 to 255"),
                format!("write the code after `exit:`, e.g. `exit:75`; {RETRY_ON_HELP}"),
            )),
        };
    }
    let msg = format!("unknown failure kind `{entry}` in `on`");
    let help = if entry.starts_with("exit") {
        format!("write an exit code as `exit:N`, e.g. `exit:75`; {RETRY_ON_HELP}")
    } else {
        match did_you_mean(entry, RETRY_ON) {
            Some(d) => format!("{d} ({RETRY_ON_HELP})"),
            None => RETRY_ON_HELP.to_string(),
        }
    };
    Err((msg, help))
}

/// A Python identifier: a letter or `_`, then letters, digits and `_`.
fn is_python_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The name a `def NAME(` line defines (at any indentation), if it is one.
fn python_def_name(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("def")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(end);
    (!name.is_empty() && after.trim_start().starts_with('(')).then_some(name)
}

/// A Python file's text, or why it cannot be read.
fn python_source(path: &Path) -> Result<String, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("is a folder, not a file".into()),
        Ok(_) => std::fs::read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| format!("cannot be read: {e}")),
        Err(e) if e.kind() == ErrorKind::NotFound => Err("does not exist".into()),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

/// Help for a `python` function that `file` (with `text`) does not define: the closest `def`,
/// the ones there are, and a way out when the check is wrong.
fn missing_function_help(file: &str, function: &str, text: &str) -> String {
    let defs = python_defs(text);
    let dym = did_you_mean(function, defs.iter().copied());
    let found = if defs.is_empty() {
        format!("`{file}` has no `def` lines")
    } else {
        let shown = defs.iter().copied().take(12);
        format!("functions in `{file}`: {}", backticked(shown))
    };
    format!(
        "{}{found}; runjobs looks for `def {function}(` (for a function imported from \
         elsewhere, add `def {function}(x): return other(x)`)",
        dym.map_or(String::new(), |d| d + " ")
    )
}

/// The names of a Python file's `def` lines, in file order (for "did you mean").
fn python_defs(text: &str) -> Vec<&str> {
    text.lines().filter_map(python_def_name).collect()
}

/// A cheap check, by lines and without parsing Python, that `text` defines `name`: a
/// `def name(`, a top-level `name = …` or `name: … =`, or a one-line import of `name`. It
/// catches typos; it cannot prove the function is there.
fn python_defines(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        if python_def_name(line) == Some(name) {
            return true;
        }
        if let Some(rest) = line.strip_prefix(name).map(str::trim_start)
            && ((rest.starts_with('=') && !rest.starts_with("==")) || rest.starts_with(':'))
        {
            return true;
        }
        let trimmed = line.trim_start();
        let import = trimmed.starts_with("from ") || trimmed.starts_with("import ");
        import
            && trimmed.split_once("import ").is_some_and(|(_, names)| {
                names
                    .split(|c: char| c == ',' || c == '(' || c == ')' || c.is_whitespace())
                    .any(|token| token == name)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::super::load::load_bytes;
    use super::*;

    fn good(name: &str) -> Job {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/good")
            .join(name);
        match super::super::load(&path) {
            Ok(job) => job,
            Err(e) => panic!("{name} should load:\n{e}"),
        }
    }

    fn task<'a>(job: &'a Job, name: &str) -> &'a Task {
        job.tasks
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no task {name}"))
    }

    #[test]
    fn options_take_task_then_function_then_job_then_default() {
        let job = good("every_input.toml");
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        let evens = task(&job, "evens"); // task timeout, function kill_grace, job retries
        assert_eq!(
            (evens.timeout, evens.kill_grace, evens.retry.count),
            (secs(2.0), Duration::from_millis(500), 1)
        );
        let greetings = task(&job, "greetings"); // function timeout and retries, job kill_grace
        assert_eq!(
            (
                greetings.timeout,
                greetings.kill_grace,
                greetings.retry.count
            ),
            (secs(5.0), Duration::from_secs(1), 2)
        );
        assert_eq!(task(&job, "square").workers, 8);
        assert_eq!(task(&job, "values").workers, default_workers()); // "num-cpus"
        let minimal = good("minimal.toml");
        let t = &minimal.tasks[0];
        assert_eq!(
            (t.timeout, t.kill_grace, t.retry.count, t.workers),
            (None, DEFAULT_KILL_GRACE, 0, default_workers())
        );
    }

    #[test]
    fn names_paths_and_formats_are_resolved() {
        let job = good("every_input.toml");
        assert_eq!(job.name, "every_input"); // the file's stem
        assert!(job.dir.is_absolute() && job.dir.ends_with("tests/fixtures/good"));
        assert_eq!(job.output.format, Some(Format::Toml));
        assert_eq!(
            job.output.path_template,
            job.dir.join("out/{date}/{job}-{timestamp}.results")
        );
        assert!(
            !job.dir.join("out").exists(),
            "validation must not create the output folder"
        );
        let minimal = good("minimal.toml");
        assert_eq!(
            minimal.output.path_template,
            minimal.dir.join("out/{job}.json")
        );
        assert_eq!(minimal.output.format, Some(Format::Json));
        assert_eq!(minimal.tasks[0].name, "double"); // the function's name
        assert_eq!(minimal.tasks[0].function.label, "builtin:double");
    }

    #[test]
    fn every_inputs_form_resolves() {
        let job = good("every_input.toml");
        let dir = &job.dir;
        let inputs = |name: &str| task(&job, name).inputs.clone();
        assert!(
            matches!(inputs("values"), InputSpec::List(v) if v.len() == 7 && v[6] == "1979-05-27T07:32:00Z")
        );
        assert!(matches!(
            inputs("evens"),
            InputSpec::Range {
                start: 10,
                stop: 0,
                step: -2
            }
        ));
        assert!(matches!(inputs("upper"), InputSpec::Lines(p) if p == dir.join("data/words.txt")));
        assert!(matches!(inputs("rows"), InputSpec::File(p) if p == dir.join("data/rows.jsonl")));
        assert!(matches!(inputs("greetings"), InputSpec::From(t) if t == "upper"));
        let InputSpec::Glob { pattern, base } = inputs("line_count") else {
            panic!("a glob")
        };
        assert_eq!(
            (pattern, &base),
            (format!("{}/data/**/*.csv", dir.display()), dir)
        );
        let InputSpec::Matrix(axes) = inputs("grid") else {
            panic!("a matrix")
        };
        let keys: Vec<&str> = axes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        let FunctionKind::Builtin { name, options } = &task(&job, "greetings").function.kind else {
            panic!("greetings is a builtin");
        };
        assert_eq!(
            (name.as_str(), options.template.as_deref()),
            ("format", Some("Hello, {input}!"))
        );
    }

    #[test]
    fn glob_base_folder_is_escaped() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let odd = tmp.path().join("odd[1]");
        std::fs::create_dir(&odd).expect("create folder");
        let text = "[[task]]\nfunction = \"line_count\"\ninputs = { glob = \"*.txt\" }\n";
        let job = load_bytes(&odd.join("j.toml"), text.as_bytes()).expect("valid job");
        let InputSpec::Glob { pattern, .. } = &job.tasks[0].inputs else {
            panic!("a glob")
        };
        assert!(pattern.ends_with("odd[[]1[]]/*.txt"), "{pattern}");
    }

    #[test]
    fn semantic_problems_are_all_reported_at_once() {
        let text = "[output]\npath = \"out/{nope}.json\"\n\n[[task]]\nfunction = \"nope\"\ninputs = [1]\n\n\
                    [[task]]\nname = \"b\"\nfunction = \"square\"\ninputs = { from = \"c\" }\n";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/x.toml");
        let err = load_bytes(&path, text.as_bytes()).expect_err("three problems");
        let lines: Vec<usize> = err.diagnostics().iter().map(|d| d.line).collect();
        assert_eq!(lines, [2, 5, 11], "{err}");
    }

    fn command(job: &Job, name: &str) -> CommandSpec {
        match &task(job, name).function.kind {
            FunctionKind::Command(c) => c.clone(),
            other => panic!("{name} is not a command: {other:?}"),
        }
    }

    #[test]
    fn labels_name_each_function_kind() {
        let job = good("external_functions.toml");
        let label = |name: &str| task(&job, name).function.label.clone();
        assert_eq!(label("thumbs"), "command:thumbnail");
        assert_eq!(label("squared"), "worker:squares");
        assert_eq!(label("squared_py"), "python:data/fns.py:square_number");
        assert_eq!(label("cubed"), "builtin:cube"); // a declared builtin: the builtin's name
        let every = good("every_input.toml");
        assert_eq!(task(&every, "greetings").function.label, "builtin:format");
    }

    #[test]
    fn command_modes_default_to_no_stdin_and_text_stdout() {
        let job = good("external_functions.toml");
        let grid = command(&job, "grid");
        assert_eq!(
            (grid.shell, grid.stdin, grid.stdout),
            (false, StdinMode::Null, StdoutMode::Text)
        );
        assert_eq!(grid.argv, ["echo", "x={input.x}", "lr={input.lr}"]);
        let described = command(&job, "described");
        assert_eq!(
            (described.shell, described.stdin, described.stdout),
            (false, StdinMode::Json, StdoutMode::Lines)
        );
        // Templates are kept as written; the runtime fills them in.
        assert_eq!(described.argv[1], "{{%s}} %s %s %s %s\n");
        let counted = command(&job, "counted");
        assert_eq!(
            (counted.shell, counted.stdin, counted.stdout),
            (true, StdinMode::Text, StdoutMode::Json)
        );
        assert_eq!(command(&job, "thumbs").stdout, StdoutMode::Ignore);
    }

    #[test]
    fn paths_of_workers_and_python_functions_are_resolved() {
        let job = good("external_functions.toml");
        let dir = &job.dir;
        // `./worker.py` starts at the function's `cwd` (data), and becomes absolute.
        let FunctionKind::Worker { argv } = &task(&job, "squared").function.kind else {
            panic!("a worker")
        };
        let worker = dir.join("data/worker.py").to_string_lossy().into_owned();
        assert_eq!(argv, &[worker, "--verbose".to_string()]);
        // A bare program is left to PATH, its arguments to the folder it runs in.
        let FunctionKind::Worker { argv } = &task(&job, "squared_again").function.kind else {
            panic!("a worker")
        };
        assert_eq!(argv, &["python3", "worker.py"]);
        let FunctionKind::Python {
            file,
            function,
            python_exe,
        } = &task(&job, "squared_py").function.kind
        else {
            panic!("a python function")
        };
        assert_eq!(
            (file, function.as_str()),
            (&dir.join("data/fns.py"), "square_number")
        );
        let exe = dir.join("data/bin/python").to_string_lossy().into_owned();
        assert_eq!(python_exe, &exe);
        let FunctionKind::Python { python_exe, .. } = &task(&job, "cubed_py").function.kind else {
            panic!("a python function")
        };
        assert_eq!(python_exe, "python3");
    }

    #[test]
    fn env_merges_by_key_and_limits_by_field_task_over_function() {
        let job = good("external_functions.toml");
        let dir = &job.dir;
        let env = |name: &str| -> Vec<(String, String)> {
            task(&job, name).env.clone().into_iter().collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            env("squared_again"),
            pairs(&[("EXTRA", "1"), ("KEEP", "yes"), ("LEVEL", "task")])
        );
        assert_eq!(env("cubed"), pairs(&[("ONLY", "task")])); // the function sets none
        assert_eq!(env("grid"), []); // no job-level env
        let again = task(&job, "squared_again");
        assert_eq!(
            again.limits,
            Limits {
                memory: Some(1 << 30), // the function's
                cpu: Some(3),          // the task's, over the function's
                open_files: Some(32),  // the task's
            }
        );
        assert_eq!(again.cwd, dir.join("data/nested")); // the task's, over the function's
        assert_eq!(
            task(&job, "squared").limits,
            Limits {
                memory: Some(1_000_000_000),
                cpu: None,
                open_files: Some(64),
            }
        );
        assert_eq!(
            task(&job, "thumbs").limits,
            Limits {
                memory: Some(512 << 20),
                cpu: Some(60),
                open_files: Some(256),
            }
        );
        assert_eq!(task(&job, "thumbs").cwd, *dir); // default: the job's folder
        assert_eq!(task(&job, "counted").cwd, dir.join("data"));
        assert_eq!(task(&job, "grid").limits, Limits::default());
    }

    #[test]
    fn retries_table_resolves_and_is_taken_whole_task_over_function_over_job() {
        let job = good("external_functions.toml");
        let retry = |name: &str| task(&job, name).retry.clone();
        let secs = Duration::from_secs;
        // The job's table: defaults for what it leaves out.
        let job_level = RetryPolicy {
            count: 1,
            backoff: Backoff::Fixed,
            delay: Duration::from_millis(100),
            max_delay: secs(30),
            on: vec![],
        };
        assert_eq!(retry("grid"), job_level);
        assert_eq!(
            retry("counted"),
            RetryPolicy {
                count: 3,
                backoff: Backoff::Exponential,
                delay: secs(1),
                max_delay: secs(30),
                on: vec![
                    RetryOn::Timeout,
                    RetryOn::Crash,
                    RetryOn::Error,
                    RetryOn::Exit(75)
                ],
            }
        );
        // A task's count replaces its function's table, backoff and all.
        assert_eq!(retry("squared_again"), RetryPolicy::count(4));
        assert_eq!(retry("cubed"), RetryPolicy::count(0));
        // Other options keep their precedence.
        let t = task(&job, "thumbs");
        assert_eq!((t.timeout, t.kill_grace), (Some(secs(120)), secs(1)));
        let t = task(&job, "squared");
        assert_eq!((t.timeout, t.kill_grace), (Some(secs(30)), secs(5)));
    }

    #[test]
    fn max_items_per_worker_takes_the_task_then_the_function() {
        let job = good("external_functions.toml");
        let max = |name: &str| task(&job, name).max_items_per_worker;
        assert_eq!(max("squared_py"), Some(2));
        assert_eq!(max("squared"), Some(50));
        assert_eq!(max("cubed"), Some(1000));
        assert_eq!(max("cubed_py"), None);
    }

    #[test]
    fn a_lone_retry_delay_raises_the_default_cap() {
        let text = "retries = { count = 2, delay = \"1m\" }\n[[task]]\nfunction = \"square\"\n\
                    inputs = [1]\n";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/x.toml");
        let job = load_bytes(&path, text.as_bytes()).expect("valid job");
        let r = &job.tasks[0].retry;
        assert_eq!(
            (r.delay, r.max_delay),
            (Duration::from_secs(60), Duration::from_secs(60))
        );
    }

    fn problems(f: fn(&str) -> Vec<Problem>, text: &str) -> Vec<(Range<usize>, String)> {
        f(text)
            .into_iter()
            .map(|p| (p.range, format!("{} / {}", p.message, p.help)))
            .collect()
    }

    #[test]
    fn command_templates_accept_the_placeholders_and_doubled_braces() {
        for ok in [
            "{input}",
            "x{index}y",
            "thumbs/{input.stem}.png",
            "{input.name}{input.dir}{input.ext}",
            "{input.some key}",
            "{{literal}}",
            "{{{input}}}",
            "}}",
            "no braces",
            "",
        ] {
            assert_eq!(problems(template_problems, ok), [], "{ok}");
        }
    }

    #[test]
    fn command_templates_point_at_each_bad_brace_with_a_suggestion() {
        let p = problems(template_problems, "in/{inpt}.png");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 3..9);
        assert!(p[0].1.contains("did you mean `{input}`?"), "{}", p[0].1);
        let p = problems(template_problems, "{Index}");
        assert!(p[0].1.contains("did you mean `{index}`?"), "{}", p[0].1);
        for (bad, range, word) in [
            ("a{}b", 1..3, "empty placeholder"),
            ("out/{input.stem", 4..5, "unclosed"),
            ("a}b", 1..2, "unmatched `}`"),
            ("{index.x}", 0..9, "unknown placeholder"),
            ("{input.}", 0..8, "unknown placeholder"),
            ("{\"n\": 1", 0..1, "unclosed"),
        ] {
            let p = problems(template_problems, bad);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert_eq!(p[0].0, range, "{bad}");
            assert!(p[0].1.contains(word), "{bad}: {}", p[0].1);
        }
        // JSON written without doubling: both braces are reported.
        let p = problems(template_problems, "{\"n\": {input}}");
        let ranges: Vec<Range<usize>> = p.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, [0..1, 13..14], "{p:?}");
        assert!(p[0].1.contains("unescaped `{`"), "{}", p[0].1);
    }

    #[test]
    fn shell_scripts_reject_our_placeholders_but_keep_the_shells_braces() {
        for ok in [
            "wc -l \"$1\"",
            "echo ${input} ${HOME} {a,b} {1..3}",
            "awk '{print $1}' \"$1\"",
            "f() { echo \"$1\"; }; f \"$1\"",
            "echo {{input}}",
        ] {
            assert_eq!(problems(script_problems, ok), [], "{ok}");
        }
        let p = problems(script_problems, "wc -l {input} | cut -f1");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 6..13);
        assert!(
            p[0].1
                .contains("with shell = true the input is $1 (never spliced into the script)"),
            "{}",
            p[0].1
        );
        let p = problems(script_problems, "echo {index}");
        assert!(p[0].1.contains("$RUNJOBS_INDEX"), "{}", p[0].1);
        let p = problems(script_problems, "convert x {input.stem}.png");
        assert!(p[0].1.contains("\"$2\""), "{}", p[0].1);
    }

    #[test]
    fn retry_on_entries_parse_or_explain() {
        assert_eq!(retry_on("timeout"), Ok(RetryOn::Timeout));
        assert_eq!(retry_on("crash"), Ok(RetryOn::Crash));
        assert_eq!(retry_on("error"), Ok(RetryOn::Error));
        assert_eq!(retry_on("exit:0"), Ok(RetryOn::Exit(0)));
        assert_eq!(retry_on("exit:255"), Ok(RetryOn::Exit(255)));
        for bad in ["exit:256", "exit:-1", "exit:+5", "exit:", "exit:x"] {
            let (msg, _) = retry_on(bad).expect_err(bad);
            assert!(msg.contains("0 to 255"), "{bad}: {msg}");
        }
        let (_, help) = retry_on("timout").expect_err("a typo");
        assert!(help.starts_with("did you mean `timeout`?"), "{help}");
        let (_, help) = retry_on("exit 75").expect_err("no colon");
        assert!(help.contains("`exit:N`"), "{help}");
        let (msg, help) = retry_on("oom").expect_err("unknown");
        assert!(
            msg.contains("`oom`") && help.contains("`crash`"),
            "{msg} {help}"
        );
    }

    #[test]
    fn python_function_check_finds_defs_assignments_and_imports() {
        let text = "import math\nfrom functools import partial, reduce as fold\n\n\
                    def square_number(number):\n    return number * number\n\n\
                    class K:\n    def method(self):\n        pass\n\n\
                    cube = partial(pow, exp=3)\nlimit: int = 3\n\
                    def  spaced (x): pass\nasync def later(x): pass\n";
        for name in [
            "square_number",
            "method",
            "cube",
            "limit",
            "spaced",
            "partial",
            "fold",
            "math",
        ] {
            assert!(python_defines(text, name), "{name}");
        }
        for name in ["square", "number", "K2", "later", "return"] {
            assert!(!python_defines(text, name), "{name}");
        }
        assert_eq!(python_defs(text), ["square_number", "method", "spaced"]);
        assert!(is_python_identifier("_private2") && is_python_identifier("größe"));
        for bad in ["", "2x", "square-number", "a.b", "a b"] {
            assert!(!is_python_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn worker_and_interpreter_paths_must_be_executable_files() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let dir = tmp.path();
        std::fs::write(dir.join("w.py"), "print()\n").expect("write w.py");
        std::fs::write(dir.join("fns.py"), "def f(x):\n    return x\n").expect("write fns.py");
        let text = "[functions.w]\nworker = [\"./w.py\"]\n\n[functions.p]\npython = \"fns.py:f\"\n\
                    python_exe = \"venv/bin/python\"\n\n[[task]]\nfunction = \"w\"\ninputs = [1]\n";
        let err = load_bytes(&dir.join("j.toml"), text.as_bytes()).expect_err("two problems");
        let shown = err.to_string();
        assert_eq!(err.len(), 2, "{shown}");
        assert!(
            shown.contains("worker program `./w.py` is not executable"),
            "{shown}"
        );
        assert!(shown.contains("chmod +x"), "{shown}");
        assert!(
            shown.contains("python interpreter `venv/bin/python` does not exist"),
            "{shown}"
        );
    }
}
