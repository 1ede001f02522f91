//! `[[task]]`: its function, its inputs and the options it settles.

use super::*;

impl Resolver<'_> {
    pub(super) fn task(
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
                "duplicate task name `{name}`: {} has it too",
                task_ref(first)
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
        let inputs = inputs?;
        let cwd = options.cwd.clone().unwrap_or_else(|| self.dir.clone());
        let file_state = file_state(&function, &inputs, &options, &cwd);
        Some(Task {
            name: name.to_string(),
            function,
            inputs,
            workers,
            timeout: options.timeout,
            retry: options.retry.unwrap_or_else(|| RetryPolicy::count(0)),
            kill_grace: options.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
            env: options.env,
            cwd,
            limits: options.limits,
            max_items_per_worker: options.max_items_per_worker,
            file_state,
        })
    }

    pub(super) fn function(
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
                let msg = format!("unknown function `{name}` in {}", task_ref(idx));
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

    pub(super) fn inputs(&mut self, t: &TaskDef, me: usize, names: &[&str]) -> Option<InputSpec> {
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
                let msg = format!("`inputs.range` of {} has a step of 0", task_ref(idx));
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
                    "`from = \"{from}\"` names a later task ({}); tasks run in file order, \
                     so move it before this one",
                    task_ref(j)
                ),
                None => format!("no task named `{from}` before {}", task_ref(me)),
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
    pub(super) fn input_file(&mut self, written: &str, at: &[&str]) -> Option<PathBuf> {
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

/// Whether a task's inputs name files whose state belongs in their identity (SPEC §8): they
/// came from a `glob`, or the function takes a path (a path builtin, or `input = "path"`).
fn file_state(
    function: &FunctionSpec,
    inputs: &InputSpec,
    options: &Options,
    cwd: &Path,
) -> Option<FileStateRule> {
    let mode = match options.fingerprint {
        None | Some(FingerprintDef::Mtime) => FileStateMode::Mtime,
        Some(FingerprintDef::Content) => FileStateMode::Content,
        Some(FingerprintDef::Path) => return None,
    };
    if let InputSpec::Glob { base, .. } = inputs {
        return Some(FileStateRule {
            mode,
            base: base.clone(),
        });
    }
    let takes_path = match (&function.kind, options.input) {
        (_, Some(kind)) => kind == InputKindDef::Path,
        (FunctionKind::Builtin { name, .. }, None) => {
            builtins::lookup(name).is_some_and(|b| b.input == "path")
        }
        (_, None) => false,
    };
    takes_path.then(|| FileStateRule {
        mode,
        base: cwd.to_path_buf(),
    })
}
