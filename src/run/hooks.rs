//! `[hooks]`: programs run around a run (a health check's start and success pings, a chat
//! message on failure), argv with no shell, in the job's folder, in a process group of their
//! own with a timeout. A hook that fails or hangs is reported; it never changes the run's
//! exit code. Their output goes to runjobs' stderr (stdout may be the results).

use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};

use wait_timeout::ChildExt;

use crate::job::Job;
use crate::process::{self, Limits, Tether};
use crate::progress::Progress;
use crate::record::Summary;

/// What a hook is told of the run, in its environment.
pub struct HookRun<'a> {
    /// `running` for `on_start`; `ok`, `failed` or `interrupted` after.
    pub status: &'a str,
    pub results: Option<&'a Path>,
    pub summary: Summary,
}

/// Runs the hook `name` (`on_start`, …) of `job`, if it has one.
pub fn run(job: &Job, name: &str, argv: Option<&Vec<String>>, run: &HookRun, progress: &Progress) {
    let Some((program, args)) = argv.and_then(|a| a.split_first()) else {
        return;
    };
    let fill = |arg: &String| arg.replace("{job}", &job.name);
    let mut cmd = Command::new(fill(program));
    cmd.args(args.iter().map(fill))
        .current_dir(&job.dir)
        .stdin(Stdio::null())
        .env("RUNJOBS_JOB", &job.name)
        .env("RUNJOBS_STATUS", run.status)
        .env("RUNJOBS_HOOK", name)
        .env("RUNJOBS_TOTAL", run.summary.total.to_string())
        .env("RUNJOBS_OK", run.summary.ok.to_string())
        .env("RUNJOBS_FAILED", run.summary.failed.to_string())
        .env("RUNJOBS_TIMED_OUT", run.summary.timed_out.to_string())
        .env("RUNJOBS_SKIPPED", run.summary.skipped.to_string());
    if let Some(results) = run.results {
        cmd.env("RUNJOBS_RESULTS", results);
    }
    if let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() {
        cmd.stdout(Stdio::from(stderr));
    }
    let shown = format!("hook `{name}` (`{}`)", fill(program));
    let mut child =
        match process::spawn_in_group(&mut cmd, &Limits::default(), Tether::DieWithRunjobs) {
            Ok(child) => child,
            Err(e) => {
                progress.println(&format!("warning: {shown} could not start: {e}"));
                return;
            }
        };
    let timeout = job.hooks.timeout;
    match child.wait_timeout(timeout) {
        Ok(Some(status)) if status.success() => {}
        Ok(Some(status)) => progress.println(&format!(
            "warning: {shown} failed: {}",
            process::describe_status(status)
        )),
        Ok(None) | Err(_) => {
            process::stop_group(&mut child, std::time::Duration::from_secs(1), &|| false);
            progress.println(&format!(
                "warning: {shown} was stopped after its timeout of {}",
                humantime::format_duration(timeout)
            ));
        }
    }
}
