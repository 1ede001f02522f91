//! `runjobs JOB...`: load and check every job (and `-o`, `--resume`) before any runs, then
//! print the plans (`--dry-run`) or run the jobs one after another.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::job_run::run_job;
use super::plan::print_plan;
use super::reuse;
use super::target::OutputTarget;
use crate::cli::RunArgs;
use crate::exec::slurm::{self, SlurmExecutor};
use crate::exec::{Executor, ItemStdout, LocalPool};
use crate::exit_code;
use crate::job::{self, Admit, ExecutorKind, Job};
use crate::output::Destination;
use crate::process::interrupt::Interrupt;
use crate::record::journal;
use crate::record::resume::Previous;

/// `runjobs JOB...`: every job is validated before any runs.
pub fn run(args: &RunArgs) -> u8 {
    let mut invalid = false;
    // `-o` takes the placeholders `[output] path` takes, checked as strictly.
    if let Some(path) = args.output.as_ref().filter(|p| p.as_os_str() != "-") {
        for (message, help) in job::output_placeholder_problems(&path.to_string_lossy()) {
            say!("error: {message} (`-o`)\n  = help: {help}");
            invalid = true;
        }
    }
    let (jobs, errors) = job::load_all(&args.jobs);
    for errors in &errors {
        say!("{errors}");
        invalid = true;
    }
    if invalid {
        return exit_code::INVALID;
    }
    run_loaded(args, jobs, None)
}

/// What a one-liner (`runjobs exec`) adds to the run of the job it built.
pub struct OneLinerRun<'a> {
    /// Prints the commands' stdout in input order.
    pub stdout: &'a dyn ItemStdout,
    /// Without `-o` (or `--resume`): no results file, no journal, no lock.
    pub discard: bool,
}

/// Runs jobs already loaded and checked (`run`, and `runjobs exec`'s job).
pub fn run_loaded(args: &RunArgs, jobs: Vec<Job>, oneliner: Option<&OneLinerRun<'_>>) -> u8 {
    let mut plans = Vec::new();
    for mut job in jobs {
        apply_overrides(&mut job, args);
        match OutputTarget::decide(&job, args) {
            Ok(mut target) => {
                target.discard = oneliner.is_some_and(|o| o.discard);
                // `-o` is checked here as the job file's `[output]` was at loading: an
                // output that cannot be written is a bad command line, and nothing runs.
                if let (Some(path), Destination::File(file)) = (
                    &args.output,
                    target.destination(&job.name, SystemTime::now()),
                ) && let Err(why) = job::writable(&file)
                {
                    say!("error: cannot write the output `{}`: {why}", path.display());
                    return exit_code::INVALID;
                }
                // A bad cluster setting is a bad job: nothing is submitted.
                if job.executor.kind == ExecutorKind::Slurm
                    && args.dry_run.is_none()
                    && let Err(message) = check_slurm(&job, &target)
                {
                    say!("error: job `{}`: {message}", job.name);
                    return exit_code::INVALID;
                }
                plans.push((job, target));
            }
            Err(message) => {
                say!("error: {message}");
                return exit_code::INVALID;
            }
        }
    }
    if args.output.is_some() && plans.len() > 1 && !args.output_has_job_placeholder() {
        say!(
            "error: `-o` names one file but {} jobs were given; put `{{job}}` in the path",
            plans.len()
        );
        return exit_code::INVALID;
    }
    let (rescue, rescued) = match plans.first() {
        Some((job, _)) if args.resume.is_some() => rescue_of(job, args),
        _ => Default::default(),
    };
    let previous = match load_previous(args, plans.len(), &rescue) {
        Ok(previous) => previous,
        Err(code) => return code,
    };
    if let Some(what) = args.dry_run {
        for (job, target) in &plans {
            let latest = reuse::latest(job, target, args);
            print_plan(job, target, previous.as_deref().or(latest.as_deref()), what);
        }
        return exit_code::OK;
    }
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            say!("error: cannot install signal handlers: {e}");
            return exit_code::ITEMS_FAILED;
        }
    };
    if let Err(e) = crate::process::groups::start_guard() {
        say!(
            "warning: cannot start the guard process ({e}): commands still running if runjobs is killed with SIGKILL will finish on their own"
        );
    }
    let mut code = exit_code::OK;
    for (job, target) in &plans {
        let stdout = oneliner.map(|o| o.stdout);
        let on = |executor: &dyn Executor| {
            run_job(
                job,
                target,
                args,
                &interrupt,
                previous.as_ref(),
                executor,
                stdout,
            )
        };
        let job_code = match job.executor.kind {
            ExecutorKind::Local => on(&LocalPool),
            ExecutorKind::Slurm => match SlurmExecutor::new(
                job,
                args.timeout,
                Admit {
                    memfree: args.memfree.or(job.admit.memfree),
                    load: args.load.or(job.admit.load),
                },
                rescued.clone(),
            ) {
                Ok(slurm) => on(&slurm),
                Err(e) => {
                    say!(
                        "error: job `{}`: cannot prepare the Slurm submission: {e}",
                        job.name
                    );
                    exit_code::INVALID
                }
            },
        };
        code = code.max(job_code);
        if job_code == exit_code::INTERRUPTED {
            break;
        }
    }
    crate::process::groups::stop_guard();
    code
}

/// `--resume OUTPUT` or `--reuse FROM`: the earlier results to reuse, if any; `Err(exit
/// code)` when they cannot be read.
fn load_previous(
    args: &RunArgs,
    jobs: usize,
    rescue: &[Vec<PathBuf>],
) -> Result<Option<Arc<Previous>>, u8> {
    let (flag, path) = match (&args.resume, &args.reuse) {
        (Some(path), _) => ("--resume", path),
        (None, Some(path)) => ("--reuse", path),
        (None, None) => return Ok(None),
    };
    if jobs > 1 {
        say!("error: `{flag}` takes the results of one job, but {jobs} jobs were given");
        return Err(exit_code::INVALID);
    }
    let rescue = if args.resume.is_some() { rescue } else { &[] };
    match Previous::load(path, rescue) {
        Ok(Some(previous)) => {
            let verb = if args.resume.is_some() {
                "resuming"
            } else {
                "reusing"
            };
            reuse::tell_loaded(&previous, verb, path, args.quiet);
            Ok(Some(Arc::new(previous)))
        }
        Ok(None) if args.resume.is_some() => {
            // Like GNU parallel's `--resume` with no joblog yet: a first run.
            if !args.quiet {
                say!(
                    "runjobs: nothing to resume at `{}` (nor its journal); running every item",
                    path.display()
                );
            }
            Ok(None)
        }
        Ok(None) => {
            // A new run from results that are not there is a mistake, not a first run.
            say!(
                "error: cannot reuse from `{}`: no such results file (nor its journal)",
                path.display()
            );
            Err(exit_code::INVALID)
        }
        Err(message) => {
            say!("error: {message}");
            Err(exit_code::INVALID)
        }
    }
}

/// The Slurm checks made before anything is submitted: the client commands, the partition,
/// the spool folder.
fn check_slurm(job: &Job, target: &OutputTarget) -> Result<(), String> {
    let destination = target.destination(&job.name, SystemTime::now());
    let root = slurm::spool_root(&job.executor.slurm, &job.name, &job.dir, destination.file());
    let base = root.parent().unwrap_or(&root);
    slurm::check(&job.executor.slurm, base)
}

/// `--resume OUTPUT` of a Slurm job: the shard journals of OUTPUT's submissions (they hold
/// what shards finished after a runjobs killed with SIGKILL stopped following them), and
/// every earlier submission's spool, journals or not (one cancelled before any shard ran has
/// none), for a clean resumed run to remove.
fn rescue_of(job: &Job, args: &RunArgs) -> (Vec<Vec<PathBuf>>, Vec<PathBuf>) {
    let root = spool_root_of_resumed(job, args);
    (slurm::shard_journals(&root), slurm::submissions(&root))
}

/// The spool root beside `--resume OUTPUT` (or beside the results of a journal).
fn spool_root_of_resumed(job: &Job, args: &RunArgs) -> PathBuf {
    let resumed = args.resume.clone().unwrap_or_default();
    let results = journal::results_path_of(&resumed).unwrap_or(resumed);
    let results = std::path::absolute(&results).unwrap_or(results);
    slurm::spool_root(&job.executor.slurm, &job.name, &job.dir, Some(&results))
}

fn apply_overrides(job: &mut Job, args: &RunArgs) {
    if let Some(kind) = args.executor {
        job.executor.kind = kind.into();
    }
    for task in &mut job.tasks {
        if let Some(workers) = args.workers {
            task.workers = workers as usize;
        }
        if let Some(timeout) = args.timeout {
            task.timeout = Some(timeout);
        }
    }
}
