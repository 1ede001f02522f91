//! `[functions.NAME]`: each kind checked (a builtin, a command, a worker, a Python function).

use super::*;

impl Resolver<'_> {
    /// Checks a `[functions.NAME]` and builds what it runs.
    pub(super) fn declared(&mut self, name: &str, f: &FunctionDef) -> Declared {
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
            self.worker_function(name, argv, &base, f.batch.unwrap_or(false))
        } else if let Some(spec) = &f.python {
            self.python_function(name, spec, f)
        } else {
            None
        };
        Declared { spec, options }
    }

    /// Keys that only another kind of function takes.
    pub(super) fn misplaced_keys(&mut self, name: &str, f: &FunctionDef) {
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
            ("batch", f.batch.is_some(), "worker"),
            ("stdin", f.stdin.is_some(), "command"),
            ("stdout", f.stdout.is_some(), "command"),
            ("max_output", f.max_output.is_some(), "command"),
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
                ("stdin" | "stdout" | "max_output", "worker" | "python") => format!(
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

    pub(super) fn builtin_function(
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

    pub(super) fn command_function(
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
        let max_output = match f.max_output.as_deref().map(memory_limit) {
            None => DEFAULT_MAX_OUTPUT,
            Some(Ok(bytes)) => usize::try_from(bytes).unwrap_or(usize::MAX),
            // The schema's `memory-limit` format is this same check, so this is reported
            // already; say it here too should they ever drift.
            Some(Err(why)) => {
                let at = ["functions", name, "max_output"];
                let msg = format!("invalid size for `max_output`: {why}");
                self.push(&at, At::Value, msg, None);
                ok = false;
                DEFAULT_MAX_OUTPUT
            }
        };
        ok.then(|| FunctionSpec {
            label: format!("command:{name}"),
            kind: FunctionKind::Command(CommandSpec {
                argv: argv.to_vec(),
                shell,
                stdin,
                stdout,
                max_output,
            }),
        })
    }

    /// A worker's program: a path (it has a `/`) is made absolute against `base` and must be
    /// an executable file; a bare name is left to `PATH` at run time.
    pub(super) fn worker_function(
        &mut self,
        name: &str,
        argv: &[String],
        base: &Path,
        batch: bool,
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
            kind: FunctionKind::Worker { argv, batch },
        })
    }

    /// `python = "FILE:FUNCTION"` (split at the last `:`): the file must exist and define the
    /// function. Problems point at the part of the string they are about.
    pub(super) fn python_function(
        &mut self,
        name: &str,
        spec: &str,
        f: &FunctionDef,
    ) -> Option<FunctionSpec> {
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
    pub(super) fn python_exe(&mut self, name: &str, written: Option<&str>) -> Option<String> {
        let Some(exe) = written else {
            return Some(default_python());
        };
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
}

/// Why `path` cannot be run as a program, if it cannot.
pub(super) fn program_problem(path: &Path) -> Option<String> {
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
pub(super) fn kind_of(f: &FunctionDef) -> &'static str {
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

/// A Python identifier: a letter or `_`, then letters, digits and `_`.
pub(super) fn is_python_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The name a `def NAME(` line defines (at any indentation), if it is one.
pub(super) fn python_def_name(line: &str) -> Option<&str> {
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
pub(super) fn python_source(path: &Path) -> Result<String, String> {
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
pub(super) fn missing_function_help(file: &str, function: &str, text: &str) -> String {
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
pub(super) fn python_defs(text: &str) -> Vec<&str> {
    text.lines().filter_map(python_def_name).collect()
}

/// A cheap check, by lines and without parsing Python, that `text` defines `name`: a
/// `def name(`, a top-level `name = …` or `name: … =`, or a one-line import of `name`. It
/// catches typos; it cannot prove the function is there.
pub(super) fn python_defines(text: &str, name: &str) -> bool {
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

/// `python_exe` when not set: the interpreter of the virtual environment runjobs was
/// installed into, else `python3` from `PATH`. runjobs is in a virtual environment when the
/// file it was started as (its path as invoked, or as found in `PATH`; not resolved through
/// links, so a `pipx` or `uv tool` link to runjobs' own environment does not count) sits in
/// a `bin/` folder whose parent holds `pyvenv.cfg`, beside a `python3`. A cron line that
/// starts `/home/me/venv/bin/runjobs` then imports the packages of that environment
/// without activating it.
fn default_python() -> String {
    venv_python().unwrap_or_else(|| DEFAULT_PYTHON.to_string())
}

fn venv_python() -> Option<String> {
    let invoked = PathBuf::from(std::env::args_os().next()?);
    let invoked = if invoked.components().count() > 1 {
        std::path::absolute(&invoked).ok()?
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(&invoked))
            .find(|candidate| candidate.is_file())?
    };
    let bin = invoked.parent()?;
    if !bin.parent()?.join("pyvenv.cfg").is_file() {
        return None;
    }
    ["python3", "python"]
        .iter()
        .map(|name| bin.join(name))
        .find(|python| python.is_file())
        .and_then(|python| python.to_str().map(str::to_owned))
}
