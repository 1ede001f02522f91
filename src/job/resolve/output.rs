//! `[output]`: the path template, its placeholders, the format, and whether it can be written;
//! `[hooks]` and `[executor]`, the other tables of what a run leaves and where it runs.

use super::*;

impl Resolver<'_> {
    pub(super) fn output(&mut self) -> OutputPlan {
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
        let path_template = normalize(&self.dir.join(path));
        if let Err(why) = writable(&path_template) {
            let msg = format!("cannot write the output `{path}`: {why}");
            let help = "the output path is relative to the job file's folder; point it \
                        somewhere runjobs can create the file";
            self.push(at, At::Value, msg, Some(help.into()));
        }
        let keep = out.and_then(|o| o.keep);
        if keep.is_some() && !path.contains("{date}") && !path.contains("{timestamp}") {
            let msg = format!("`keep` with the output path `{path}`, which every run overwrites");
            let help = "put `{timestamp}` (or `{date}`) in `[output] path` to keep a file a run, \
                        e.g. `path = \"out/{job}-{timestamp}.json\"`";
            self.push(&["output", "keep"], At::Value, msg, Some(help.into()));
        }
        OutputPlan {
            path_template,
            format,
            keep,
            reuse_latest: out.and_then(|o| o.reuse).is_some(),
        }
    }

    /// `[hooks]`: each argv, and how long a hook may run.
    pub(super) fn hooks(&mut self) -> Hooks {
        let Some(h) = self.file.hooks.as_ref() else {
            return Hooks {
                timeout: DEFAULT_HOOK_TIMEOUT,
                ..Hooks::default()
            };
        };
        let timeout = h
            .timeout
            .as_deref()
            .and_then(|t| self.positive_duration(&["hooks", "timeout"], t))
            .unwrap_or(DEFAULT_HOOK_TIMEOUT);
        Hooks {
            on_start: h.on_start.clone(),
            on_success: h.on_success.clone(),
            on_failure: h.on_failure.clone(),
            timeout,
        }
    }

    /// `[executor]`: the schema checked every value's shape.
    pub(super) fn executor(&mut self) -> ExecutorPlan {
        let Some(e) = self.file.executor.as_ref() else {
            return ExecutorPlan::default();
        };
        let kind = match e.kind.as_deref() {
            Some("slurm") => ExecutorKind::Slurm,
            _ => ExecutorKind::Local,
        };
        let slurm = SlurmSettings {
            partition: e.partition.clone(),
            account: e.account.clone(),
            time: e.time.clone(),
            cpus_per_task: e.cpus_per_task,
            mem: e.mem.clone(),
            sbatch_args: e.sbatch_args.clone().unwrap_or_default(),
            shards: e.shards,
            max_running: e.max_running,
            spool: e.spool.as_ref().map(|s| normalize(&self.dir.join(s))),
        };
        ExecutorPlan { kind, slurm }
    }

    pub(super) fn check_placeholders(&mut self, path: &str, at: &[&str]) {
        for (msg, help) in output_placeholder_problems(path) {
            self.push(at, At::Value, msg, Some(help));
        }
    }
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

pub(super) fn placeholder_help(dym: Option<String>) -> String {
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
