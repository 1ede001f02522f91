//! Command-line syntax (clap derive) and flag value parsers. No behaviour lives here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::job::{ExecutorKind, Format};

#[derive(Debug, Parser)]
#[command(
    name = "runjobs",
    version,
    about = "Map functions over inputs on a pool of worker processes, declared in a TOML job file",
    long_about = "Map functions over inputs on a pool of worker processes, declared in a TOML job \
                  file.\n\n`runjobs JOB...` is the same as `runjobs run JOB...`.",
    after_long_help = SIGNALS_AND_EXIT_CODES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// The end of `--help` and the man page: how a run answers signals, and what it exits with.
const SIGNALS_AND_EXIT_CODES: &str = "\
Signals:
  SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or ssh session) stop a run alike: no
  new item starts, each running item's process group gets SIGTERM, then SIGKILL after its
  kill_grace (at once on a second signal), the partial results are written, and the exit
  code is 3. A SIGHUP ignored when runjobs starts (`nohup runjobs ...`) stays ignored: the
  run goes on. Ctrl-Z (SIGTSTP) pauses every item with runjobs; `fg` continues them.

Exit codes:
  0  every item ok
  1  some item failed or timed out
  2  the job file or the command line is invalid; nothing ran
  3  interrupted by SIGINT, SIGTERM or SIGHUP; partial results were written
  4  another run of the same job holds its lock (cron overlap); nothing ran";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run job files (the default command).
    Run(RunArgs),
    /// Check job files against the schema and the semantic rules; run nothing.
    Validate {
        /// Job files to check.
        #[arg(required = true, value_name = "JOB")]
        jobs: Vec<PathBuf>,
    },
    /// Print the job-file JSON schema (the same bytes as schemas/job.schema.json).
    Schema,
    /// List the builtin functions: name, input, output, and what they do.
    Functions,
    /// Print shell completions (`runjobs completions bash > ~/.local/share/bash-completion/completions/runjobs`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `runjobs man | man -l -`.
    Man,
    /// Print crontab lines for the jobs that declare a `schedule` (`runjobs crontab jobs/ |
    /// crontab -` installs them).
    Crontab {
        /// Job files, or folders of job files.
        #[arg(required = true, value_name = "JOB|DIR")]
        jobs: Vec<PathBuf>,
    },
    /// Show what runs now and how far it is, else each job's last run.
    ///
    /// For a run that holds its job's lock: its pid and start, done/total per task,
    /// ok/failed/timed out, rate, ETA and the items running longest; otherwise the last run
    /// from the run index, or `never run`; and journals of runs that never finished, with the
    /// `--resume` line that continues them. It only reads files (the lock is looked up in
    /// /proc/locks, never taken), so it never disturbs a run and works for any user who can
    /// read them. Exits 0 when it could read everything, 1 when some file could not be read,
    /// 2 for a bad argument.
    Status {
        /// Job files, folders of job files (default: the current folder), or results files
        /// and journals.
        #[arg(value_name = "JOB|DIR|OUTPUT")]
        paths: Vec<PathBuf>,
        /// Print the status as JSON (keys documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Run a command over inputs like GNU parallel -k: `runjobs exec -j4 wc -c {} ::: *.txt`;
    /// each item's stdout is printed in input order. `--save JOB.toml` writes the job file
    /// instead.
    Exec(ExecArgs),
    /// Summarise results files: one gives its summary, several (or a folder) the history of
    /// the runs, `--diff OLD NEW` what changed between two runs.
    Report(ReportArgs),
}

/// `runjobs report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results files (JSON, TOML, JSON Lines), journals of killed runs, or folders.
    #[arg(value_name = "OUTPUT", required_unless_present = "diff")]
    pub outputs: Vec<PathBuf>,
    /// Compare two runs by item identity: newly failing, fixed, still failing, added,
    /// removed, much slower or faster. Exits 1 when something newly fails.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "outputs")]
    pub diff: Option<Vec<PathBuf>>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (summary, worker timeline, durations;
    /// for several files, the history) to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    pub html: Option<PathBuf>,
    /// Also write the items as JUnit XML test cases to FILE (one results file).
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    pub junit: Option<PathBuf>,
    /// Also write the items as CSV to FILE, one row an item (one results file): task,
    /// index, input, status, output, error, attempts, duration_s, cpu_s, max_rss_kib,
    /// worker, started_at, reused_from.
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    pub csv: Option<PathBuf>,
}

/// The hidden modes runjobs runs itself in (a builtin worker, the guard). Parsed apart from
/// `Cli`, so completions and the man page never show them.
#[derive(Debug, Parser)]
#[command(name = "runjobs")]
pub struct Internal {
    #[command(subcommand)]
    pub command: InternalCommand,
}

#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Internal: a long-lived worker process that runs one builtin.
    #[command(name = "__worker")]
    Worker {
        #[arg(long)]
        builtin: String,
        /// The builtin's options as JSON.
        #[arg(long, default_value = "{}")]
        options: String,
        /// When the run started, in nanoseconds on the monotonic clock (`started_s` counts
        /// from it).
        #[arg(long)]
        run_start_ns: Option<u64>,
        /// The run's journal: `ok` records are appended to it, not sent through the pipe.
        #[arg(long)]
        journal: Option<std::path::PathBuf>,
    },
    /// Internal: one shard of a task submitted to Slurm, run as an array task.
    #[command(name = "__shard")]
    Shard {
        /// The submission's spool folder.
        #[arg(long)]
        spool: std::path::PathBuf,
        /// The shard (default: `SLURM_ARRAY_TASK_ID`).
        #[arg(long)]
        shard: Option<usize>,
    },
    /// Internal: stops the process groups of a runjobs that died (see `groups`).
    #[command(name = "__guard")]
    Guard {
        /// The runjobs process to watch.
        #[arg(long)]
        parent: u32,
    },
}

impl Internal {
    /// Whether `runjobs` was started in one of these modes.
    pub fn requested() -> bool {
        std::env::args_os()
            .nth(1)
            .is_some_and(|a| a.to_string_lossy().starts_with("__"))
    }
}

/// What `--dry-run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// The plan of each job and the first items of each task.
    Plan,
    /// Every item, one a line: `TASK #INDEX ...`.
    All,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Job files to run, one after another.
    #[arg(required = true, value_name = "JOB")]
    pub jobs: Vec<PathBuf>,

    /// Worker processes per task (overrides the job file).
    #[arg(short = 'j', long = "workers", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,

    /// Output file (overrides `[output] path`); `-` writes to standard output.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Output format (default: `[output] format`, else the extension).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// Per-item timeout for every task, e.g. `500ms`, `30s`, `2m`.
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Start no item while the machine has less memory available than SIZE, e.g. `2GiB`
    /// (overrides `[admit] memfree`; GNU parallel's --memfree).
    #[arg(long, value_name = "SIZE", value_parser = parse_memfree)]
    pub memfree: Option<u64>,

    /// Start no item while the 1-minute load average per CPU is above N, e.g. `1.5`
    /// (overrides `[admit] load`; GNU parallel's --load).
    #[arg(long, value_name = "N", value_parser = parse_load)]
    pub load: Option<f64>,

    /// Validate and expand the job, print the plan and its first items, run nothing;
    /// `--dry-run=all` prints every item instead, one a line (the argv of a command).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "plan", value_name = "WHAT")]
    pub dry_run: Option<DryRun>,

    /// Prefix each line a command or worker writes to stderr with its task and item
    /// (`[square #12] ...`; a long-lived worker's with its pid).
    #[arg(long)]
    pub tag: bool,

    /// Progress display: bars on a terminal, else a status line every 10 s.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "WHEN")]
    pub progress: ProgressMode,

    /// Print nothing unless something failed.
    #[arg(short, long)]
    pub quiet: bool,

    /// Stop starting items after the first failure (the rest are reported skipped).
    #[arg(long)]
    pub fail_fast: bool,

    /// Rerun only the items missing, failed or timed out in OUTPUT (or in the journal beside
    /// it, when a killed run never wrote OUTPUT); finished items are recognised by their
    /// function and input, not their position.
    #[arg(long, value_name = "OUTPUT")]
    pub resume: Option<PathBuf>,

    /// Start a new run that takes the ok results of FROM (a results file of any format, or a
    /// journal) that are still the answer (same function, input and file state) and runs the
    /// rest; FROM is only read. `[output] reuse = "latest"` does this from the previous run.
    #[arg(long, value_name = "FROM", conflicts_with = "resume")]
    pub reuse: Option<PathBuf>,

    /// Where the items run: worker processes on this machine, or a Slurm job array
    /// (overrides `[executor] kind`).
    #[arg(long, value_enum, value_name = "KIND")]
    pub executor: Option<ExecutorArg>,

    /// Keep no journal beside the output: a little faster, but a run killed with SIGKILL
    /// cannot be resumed.
    #[arg(long)]
    pub no_journal: bool,
}

/// `runjobs exec`: the one-liner form. Job properties (`-j`, `--timeout`, …) become the job
/// file's keys; the rest are run flags as for `runjobs JOB`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Inputs: `::: V...` (several groups: their cartesian product, last group \
                  fastest), `:::: FILE` (one input a line; `-` is standard input), or, with \
                  neither, lines on standard input. Placeholders: {} the input, {.} without \
                  extension, {/} basename, {//} folder, {/.} basename without extension, {#} \
                  the item's number, {1} {2} a group's value; with none, the input is \
                  appended. The command is run directly: no shell sees an input."
)]
pub struct ExecArgs {
    /// Worker processes (the job's `workers`; default: the number of CPUs).
    #[arg(short = 'j', long = "workers", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,

    /// Per-item timeout, e.g. `500ms`, `30s`, `2m` (the job's `timeout`).
    #[arg(long, value_name = "DUR", value_parser = timeout_text)]
    pub timeout: Option<String>,

    /// Extra attempts for a failed or timed-out item (the job's `retries`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub retries: Option<u32>,

    /// Start no item while the machine has less memory available than SIZE, e.g. `2GiB`.
    #[arg(long, value_name = "SIZE", value_parser = memfree_text)]
    pub memfree: Option<String>,

    /// Start no item while the 1-minute load average per CPU is above N, e.g. `1.5`.
    #[arg(long, value_name = "N", value_parser = parse_load)]
    pub load: Option<f64>,

    /// Stop starting items after the first failure (the rest are reported skipped).
    #[arg(long)]
    pub fail_fast: bool,

    /// Where the items run (the job's `[executor] kind`).
    #[arg(long, value_enum, value_name = "KIND")]
    pub executor: Option<ExecutorArg>,

    /// Also write the results file (with its journal, so `--resume PATH` works).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// The results file's format (default: from the extension).
    #[arg(long, value_enum, value_name = "FORMAT", requires = "output")]
    pub format: Option<FormatArg>,

    /// Rerun only the items missing or failed in OUTPUT, an earlier `-o` of the same
    /// one-liner; the outputs of the others are printed from it.
    #[arg(long, value_name = "OUTPUT")]
    pub resume: Option<PathBuf>,

    /// Prefix each line an item prints (stdout and stderr) with its input and a TAB.
    #[arg(long)]
    pub tag: bool,

    /// Run CMD as a `sh -c` script; the input is its `$1` (never spliced into the script).
    #[arg(long)]
    pub shell: bool,

    /// Inputs on standard input are separated by NUL bytes (`find -print0`), not lines.
    #[arg(short = '0', long = "null")]
    pub null: bool,

    /// Validate and expand, print the plan, run nothing; `--dry-run=all` prints every item.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "plan", value_name = "WHAT")]
    pub dry_run: Option<DryRun>,

    /// Write the equivalent job file to JOB.toml and run nothing.
    #[arg(long, value_name = "JOB.toml")]
    pub save: Option<PathBuf>,

    /// With `--save`: replace JOB.toml if it exists.
    #[arg(long, requires = "save")]
    pub force: bool,

    /// Progress on stderr (auto: a bar and the summary when stderr is a terminal and stdout
    /// is not; else the summary only when something failed).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "WHEN")]
    pub progress: ProgressMode,

    /// Print nothing of runjobs' own unless something failed (the commands' stderr still is).
    #[arg(short, long)]
    pub quiet: bool,

    /// The command, its arguments, then the inputs: `CMD [ARG...] ::: V... | :::: FILE`.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Json,
    Toml,
    Jsonl,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Toml => Format::Toml,
            FormatArg::Jsonl => Format::Jsonl,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    /// Worker processes on this machine.
    Local,
    /// A Slurm job array: one array task per shard of the items.
    Slurm,
}

impl From<ExecutorArg> for ExecutorKind {
    fn from(e: ExecutorArg) -> ExecutorKind {
        match e {
            ExecutorArg::Local => ExecutorKind::Local,
            ExecutorArg::Slurm => ExecutorKind::Slurm,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, otherwise periodic status lines.
    #[default]
    Auto,
    /// Always draw bars.
    Always,
    /// Never draw bars: status lines and the final summary only.
    Never,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}; use a duration such as `500ms`, `10s` or `2m`"))
}

/// A timeout: zero would time out every item before it starts.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(
            "a timeout of zero would time out every item; use a duration \
                                 such as `500ms`, `10s` or `2m`, or leave the flag out"
                .to_owned(),
        ),
        d => Ok(d),
    }
}

/// `exec --timeout`: checked as `--timeout`, kept as written (it goes into a job file).
fn timeout_text(s: &str) -> Result<String, String> {
    parse_timeout(s).map(|_| s.trim().to_owned())
}

/// `exec --memfree`: checked as `--memfree`, kept as written.
fn memfree_text(s: &str) -> Result<String, String> {
    parse_memfree(s).map(|_| s.trim().to_owned())
}

/// `--memfree`: a size the machine could meet.
fn parse_memfree(s: &str) -> Result<u64, String> {
    let bytes = crate::job::memory_limit(s).map_err(|why| {
        format!("{why}; for example `2GiB` or `512MiB` (KB, MB, GB count in 1000s; KiB, MiB, GiB in 1024s)")
    })?;
    match crate::job::memfree_problem(bytes) {
        Some((message, help)) => Err(format!("{message}; {help}")),
        None => Ok(bytes),
    }
}

/// `--load`: a positive load average per CPU.
fn parse_load(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(
            "it must be a number above 0, the load average per CPU under which items \
                  start, such as `1.5`"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_job_argument_runs_it() {
        let cli = Cli::try_parse_from(["runjobs", "jobs/square.toml", "-j", "2"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.jobs, vec![PathBuf::from("jobs/square.toml")]);
        assert_eq!(cli.run.workers, Some(2));
    }

    #[test]
    fn admission_flags_take_sizes_and_positive_loads() {
        let cli = Cli::try_parse_from(["runjobs", "x.toml", "--memfree", "1MiB", "--load", "1.5"])
            .unwrap();
        assert_eq!((cli.run.memfree, cli.run.load), (Some(1 << 20), Some(1.5)));
        for bad in ["--load=0", "--load=-1", "--load=lots", "--memfree=2"] {
            let err = Cli::try_parse_from(["runjobs", "x.toml", bad]).unwrap_err();
            assert!(
                err.to_string().contains("for example") || err.to_string().contains("above 0"),
                "{err}"
            );
        }
    }

    #[test]
    fn exec_takes_the_command_without_a_double_dash() {
        let cli = Cli::try_parse_from([
            "runjobs", "exec", "-j2", "--tag", "echo", "-n", "{}", "--tag", ":::", "a",
        ])
        .unwrap();
        let Some(Command::Exec(args)) = cli.command else {
            panic!("not exec");
        };
        assert_eq!((args.workers, args.tag), (Some(2), true));
        assert_eq!(args.command, ["echo", "-n", "{}", "--tag", ":::", "a"]);
        let cli = Cli::try_parse_from(["runjobs", "exec", "--", "-weird", ":::", "a"]).unwrap();
        let Some(Command::Exec(args)) = cli.command else {
            panic!("not exec");
        };
        assert_eq!(args.command, ["-weird", ":::", "a"]);
    }

    #[test]
    fn bad_timeout_is_rejected() {
        let err = Cli::try_parse_from(["runjobs", "x.toml", "--timeout", "5 parsecs"]).unwrap_err();
        assert!(err.to_string().contains("500ms"), "{err}");
    }
}
