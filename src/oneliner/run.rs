//! `runjobs exec`: build the one-liner's job file (as text), then either save it (`--save`)
//! or load it through the normal loader and run it on the normal pipeline, with its items'
//! stdout relayed in input order. Never a second engine: everything a job file does, this
//! does the same way.

use std::path::{Path, PathBuf};

use super::inputs::{self, Reading};
use super::job_text::{self, Parts};
use super::relay::OrderedStdout;
use super::template;
use super::words::{self, Source};
use crate::cli::{ExecArgs, ExecutorArg, ProgressMode, RunArgs};
use crate::exit_code;
use crate::job;
use crate::run::{self, OneLinerRun};

/// Where `#:schema` points when no `schemas/job.schema.json` is found above the saved file.
const SCHEMA_URL: &str = "https://runjobs.dev/schemas/job.schema.json";

/// `runjobs exec ...`: the exit code.
pub fn exec(args: &ExecArgs) -> u8 {
    match prepare(args) {
        Ok(Prepared::Save) => exit_code::OK,
        Ok(Prepared::Run { job, written }) => {
            let code = run(args, job);
            drop(written);
            code
        }
        Err(message) => {
            say!("error: {message}");
            exit_code::INVALID
        }
    }
}

enum Prepared {
    /// `--save` wrote the job file.
    Save,
    /// The job to run, and the job file written for a Slurm run (removed when dropped).
    Run {
        job: Box<job::Job>,
        written: Option<tempfile::TempPath>,
    },
}

/// The one-liner's words, checked: its input groups, the job's command and its name.
struct Checked {
    words: words::Words,
    command: Vec<String>,
    name: String,
}

fn check(args: &ExecArgs) -> Result<Checked, String> {
    let words = words::split(&args.command)?;
    if args.output.as_deref() == Some(Path::new("-")) {
        return Err(
            "`-o -` would mix the results file with the commands' output on standard \
                    output; name a file"
                .into(),
        );
    }
    let command = template::command(&words.argv, words.sources.len(), args.shell)?;
    if !args.shell {
        check_program(&words.argv[0])?;
    }
    let name = function_name(if args.shell { "sh" } else { &words.argv[0] });
    Ok(Checked {
        words,
        command,
        name,
    })
}

fn prepare(args: &ExecArgs) -> Result<Prepared, String> {
    let Checked {
        words,
        command,
        name,
    } = check(args)?;
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot tell the current folder: {e}"))?;
    let saved_in = match &args.save {
        Some(path) => Some(save_folder(path)?),
        None => None,
    };
    // A job file saved elsewhere still runs here, and reads the files named here.
    let anchor = saved_in
        .as_ref()
        .filter(|folder| !same_folder(folder, &cwd))
        .map(|_| cwd.as_path());
    let reading = Reading {
        null: args.null,
        saving: args.save.is_some(),
        anchor,
    };
    if words.sources.contains(&Source::Stdin) && is_tty_stdin() {
        say!("runjobs: reading inputs from standard input, one a line (end them with Ctrl-D)");
    }
    let toml = inputs::inputs(&words.sources, &reading)?;
    // The program as a user types it, whatever path started it.
    let line: Vec<String> = std::iter::once("runjobs".to_owned())
        .chain(std::env::args().skip(1))
        .collect();
    let output = args.output.as_deref().map(|p| inputs::anchored(p, anchor));
    let schema = schema_ref(saved_in.as_deref());
    let parts = Parts {
        schema: &schema,
        line: &line,
        name: &name,
        job_name: args.save.is_none().then_some(name.as_str()),
        command: &command,
        inputs: &toml,
        cwd: anchor,
        output: output.as_deref(),
        // Printed, not kept: a record's copy of its output would only cost time and memory
        // (unless it is printed from the record: a Slurm run, or `--resume`).
        ignore_stdout: discards(args) && args.executor != Some(ExecutorArg::Slurm),
    };
    let text = job_text::render(&parts, args)?;
    let written = match args.executor {
        Some(ExecutorArg::Slurm) if args.save.is_none() => {
            Some(write_for_slurm(&cwd, &name, &text)?)
        }
        _ => None,
    };
    let file = match (&args.save, &written) {
        (Some(path), _) => path.clone(),
        (None, Some(written)) => written.to_path_buf(),
        (None, None) => cwd.join(format!("{name}.toml")),
    };
    // The saved file is checked as `runjobs` will load it, before it is written.
    let job = job::load_bytes(&file, text.as_bytes())
        .map_err(|errors| format!("the one-liner does not make a valid job:\n{errors}"))?;
    match &args.save {
        Some(path) => save(path, &text, args.force).map(|()| Prepared::Save),
        None => Ok(Prepared::Run {
            job: Box::new(job),
            written,
        }),
    }
}

fn run(args: &ExecArgs, job: Box<job::Job>) -> u8 {
    let stream_head = job.tasks.iter().all(|t| t.retry.count == 0);
    let relay = match OrderedStdout::stdout(args.tag, stream_head) {
        Ok(relay) => relay,
        Err(e) => {
            say!("error: cannot write to standard output: {e}");
            return exit_code::INVALID;
        }
    };
    // Off a terminal, runjobs says nothing of its own unless something failed: the output
    // is the commands'. Nor does it draw a bar on the terminal the outputs go to: they would
    // tear it.
    let bar_fits = console::Term::stderr().is_term() && !console::Term::stdout().is_term();
    let quiet = args.quiet || (args.progress != ProgressMode::Always && !bar_fits);
    // Only how to run it: everything the job is, is in its text.
    let run_args = RunArgs {
        jobs: vec![job.file.clone()],
        dry_run: args.dry_run,
        tag: args.tag,
        progress: args.progress,
        quiet,
        resume: args.resume.clone(),
        ..RunArgs::default()
    };
    let oneliner = OneLinerRun {
        stdout: &relay,
        discard: discards(args),
    };
    let code = run::run_loaded(&run_args, vec![*job], Some(&oneliner));
    relay.finish();
    code
}

/// A Slurm run submits a copy of its job file: the one-liner's is written, hidden, in the
/// current folder (where it runs, on storage the nodes share), for the run's length.
fn write_for_slurm(cwd: &Path, name: &str, text: &str) -> Result<tempfile::TempPath, String> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}.exec-"))
        .suffix(".toml")
        .tempfile_in(cwd)
        .map_err(|e| format!("cannot write the job file in `{}`: {e}", cwd.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", file.path().display()))?;
    Ok(file.into_temp_path())
}

/// Whether the run keeps no results: no `-o`, no `--resume`, no `--save`.
fn discards(args: &ExecArgs) -> bool {
    args.output.is_none() && args.resume.is_none() && args.save.is_none()
}

/// A program that is not there is a bad command line: nothing runs.
fn check_program(program: &str) -> Result<(), String> {
    let found = if program.contains('/') {
        is_executable(Path::new(program))
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
        })
    };
    if found {
        Ok(())
    } else if program.contains('/') {
        Err(format!("cannot run `{program}`: no such executable file"))
    } else {
        Err(format!("cannot run `{program}`: no such command in PATH"))
    }
}

fn is_executable(path: &Path) -> bool {
    path.is_file() && rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

fn is_tty_stdin() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// The function's name: the program's, as a job-file name may be written.
fn function_name(program: &str) -> String {
    let base = program.rsplit('/').next().unwrap_or(program);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// The folder a job file is saved in (it must exist).
fn save_folder(path: &Path) -> Result<PathBuf, String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::canonicalize(folder)
        .map_err(|e| format!("cannot save the job file in `{}`: {e}", folder.display()))
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `#:schema`: the project's schema when the saved file is under a folder that has
/// `schemas/job.schema.json` (as `jobs/` is), else the schema's published address.
fn schema_ref(saved_in: Option<&Path>) -> String {
    let Some(folder) = saved_in else {
        return SCHEMA_URL.to_owned();
    };
    let mut up = String::new();
    for dir in folder.ancestors() {
        if dir.join("schemas/job.schema.json").is_file() {
            return format!("{up}schemas/job.schema.json");
        }
        up += "../";
    }
    SCHEMA_URL.to_owned()
}

/// Writes the job file, never over an existing one without `--force`.
fn save(path: &Path, text: &str, force: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("`{}` exists; `--force` replaces it", path.display())
        }
        _ => format!("cannot write `{}`: {e}", path.display()),
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    say!(
        "runjobs: saved `{}`; `runjobs {}` runs it",
        path.display(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_what_a_job_file_takes() {
        assert_eq!(function_name("wc"), "wc");
        assert_eq!(function_name("./bin/my.sh"), "my_sh");
        assert_eq!(function_name("7z"), "_7z");
    }
}
