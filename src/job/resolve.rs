//! Semantic checks and defaults: a schema-valid `JobFile` → a runnable `Job`.
//!
//! Owns what the schema cannot say: names that must refer to something (functions, builtins,
//! earlier tasks), files that must exist, an output path that must be writable, and the
//! option precedence task > function > job > default. It looks at the file system but never
//! changes it: validation creates no folder and no file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Access, access};

use super::diag::{Diagnostic, closest, did_you_mean};
use super::model::{FunctionDef, InputsDef, JobFile, TaskDef, Workers};
use super::resolved::{
    DEFAULT_KILL_GRACE, Format, FunctionKind, FunctionSpec, InputSpec, Job, Limits, OutputPlan,
    RetryPolicy, Task, default_workers,
};
use super::span::{At, Source};
use crate::builtins;

/// The output path when `[output] path` is not set.
const DEFAULT_OUTPUT: &str = "out/{job}.json";
/// The placeholders an output path may use; the writer fills them in.
const PLACEHOLDERS: [&str; 3] = ["job", "date", "timestamp"];

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
    r.check_functions();
    let names: Vec<&str> = file
        .tasks
        .iter()
        .map(|t| t.name.as_deref().unwrap_or(&t.function))
        .collect();
    let tasks: Vec<Task> = (0..file.tasks.len())
        .filter_map(|i| r.task(i, &names))
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
    })
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
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                let msg = format!("unclosed `{{` in the output path `{path}`");
                self.push(at, At::Value, msg, Some(placeholder_help(None)));
                return;
            };
            let name = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&name) {
                let msg = format!("unknown placeholder `{{{name}}}` in the output path `{path}`");
                let dym = closest(name, PLACEHOLDERS).map(|c| format!("did you mean `{{{c}}}`?"));
                self.push(at, At::Value, msg, Some(placeholder_help(dym)));
            }
            rest = &rest[open + close + 1..];
        }
    }

    /// Every declared function, used or not: a broken one is a bug waiting for its first use.
    fn check_functions(&mut self) {
        for (name, f) in &self.file.functions {
            let Some(builtin) = f.builtin.as_deref() else {
                continue;
            }; // the schema requires it
            if builtins::lookup(builtin).is_none() {
                let msg = format!("unknown builtin `{builtin}` in `[functions.{name}]`");
                let help = did_you_mean(builtin, builtins::names()).map_or_else(
                    || "`runjobs functions` lists the builtins".to_string(),
                    |d| format!("{d} (`runjobs functions` lists the builtins)"),
                );
                self.push(&["functions", name, "builtin"], At::Value, msg, Some(help));
            } else if builtin == "format" && f.template.is_none() {
                let msg =
                    format!("`[functions.{name}]` uses builtin `format` but has no `template`");
                let help = "add one, e.g. `template = \"Hello, {input}!\"` ({input} and \
                            {input.KEY} are filled in)";
                self.push(&["functions", name], At::Value, msg, Some(help.into()));
            }
            if f.template.is_some() && builtin != "format" {
                let msg = format!("`template` only applies to builtin `format`, not `{builtin}`");
                let help = "remove `template`, or set `builtin = \"format\"`";
                self.push(
                    &["functions", name, "template"],
                    At::Key,
                    msg,
                    Some(help.into()),
                );
            }
        }
    }

    fn task(&mut self, i: usize, names: &[&str]) -> Option<Task> {
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
        let declared = self.file.functions.get(&t.function);
        let function = self.function(t, declared, &idx);
        let inputs = self.inputs(t, i, names);

        let f = declared;
        let workers = match t.workers.as_ref().or(self.file.workers.as_ref()) {
            Some(Workers::Count(n)) => *n as usize,
            Some(Workers::Named(named)) => {
                debug_assert_eq!(named, "num-cpus", "the schema allows no other name");
                default_workers()
            }
            None => default_workers(),
        };
        let fname = t.function.as_str();
        let timeout = self.duration(
            "timeout",
            [
                t.timeout.as_ref(),
                f.and_then(|f| f.timeout.as_ref()),
                self.file.timeout.as_ref(),
            ],
            &idx,
            fname,
        );
        let kill_grace = self.duration(
            "kill_grace",
            [
                t.kill_grace.as_ref(),
                f.and_then(|f| f.kill_grace.as_ref()),
                self.file.kill_grace.as_ref(),
            ],
            &idx,
            fname,
        );
        let retries = t
            .retries
            .or(f.and_then(|f| f.retries))
            .or(self.file.retries)
            .unwrap_or(0);
        Some(Task {
            name: name.to_string(),
            function: function?,
            inputs: inputs?,
            workers,
            timeout,
            retry: RetryPolicy::count(retries),
            kill_grace: kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
            env: Default::default(),
            cwd: self.dir.clone(),
            limits: Limits::default(),
            max_items_per_worker: None,
        })
    }

    /// The first of task, function, job that sets `key`, parsed.
    fn duration(
        &mut self,
        key: &str,
        layers: [Option<&String>; 3],
        idx: &str,
        function: &str,
    ) -> Option<Duration> {
        let (which, text) = layers
            .iter()
            .enumerate()
            .find_map(|(n, v)| v.map(|v| (n, v)))?;
        let at: &[&str] = match which {
            0 => &["task", idx, key],
            1 => &["functions", function, key],
            _ => &[key],
        };
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

    fn function(
        &mut self,
        t: &TaskDef,
        declared: Option<&FunctionDef>,
        idx: &str,
    ) -> Option<FunctionSpec> {
        let at = ["task", idx, "function"];
        let name = t.function.as_str();
        let (builtin, template) = match declared {
            Some(f) => (f.builtin.clone()?, f.template.clone()),
            None if name == "format" => {
                let msg = "builtin `format` needs a `template`, which a task cannot set".into();
                let help = "declare a function and use its name:\n[functions.greet]\n\
                            builtin = \"format\"\ntemplate = \"Hello, {input}!\"\n\
                            then set `function = \"greet\"` in the task";
                self.push(&at, At::Value, msg, Some(help.into()));
                return None;
            }
            None if builtins::lookup(name).is_some() => (name.to_string(), None),
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
                return None;
            }
        };
        // A bad builtin or template in `[functions.X]` is reported by `check_functions`.
        builtins::lookup(&builtin)?;
        Some(FunctionSpec {
            label: format!("builtin:{builtin}"),
            kind: FunctionKind::Builtin {
                name: builtin,
                options: builtins::Options { template },
            },
        })
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
                let msg = format!("`task[{}].inputs.range` has a step of 0", task_no(idx));
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

fn placeholder_help(dym: Option<String>) -> String {
    let known = "the output path may use `{job}`, `{date}` and `{timestamp}`";
    dym.map_or(known.to_string(), |d| format!("{d} ({known})"))
}

/// Whether the output file could be created, without creating anything: the nearest existing
/// ancestor of its folder must be a folder we may write in (the rest is created at run time).
fn writable(target: &Path) -> Result<(), String> {
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
}
