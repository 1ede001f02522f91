//! Run-wide bookkeeping on the collecting thread: the journal and results writes (and what
//! to do when they fail), the failures to list, and the summary line at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::exec::control::{RunControl, Stop};
use crate::job::{Format, Job};
use crate::output::{self, Destination};
use crate::progress::{self, Progress};
use crate::record::journal::Journal;
use crate::record::{ItemRecord, RunFooter, RunHeader, RunStatus, Summary};

/// Failed items listed at the end of a run (the first ones in input order); the rest are in
/// the results file.
const FAILURES_SHOWN: usize = 10;

/// Run-wide bookkeeping on the collecting thread.
#[derive(Default)]
pub struct Collector {
    pub summary: Summary,
    /// The failures to list: (task's position, item's index, line), the lowest first.
    failures: Vec<(usize, u64, String)>,
    /// Task names in the order their first record came (tasks run one after another).
    tasks_seen: Vec<String>,
    pub unreadable_inputs: bool,
    /// The first error writing the results file; later writes are skipped.
    pub write_error: Option<std::io::Error>,
    /// The journal moved to another folder (its folder failed), and the user was told.
    journal_move_told: bool,
    /// Where the results went instead, when their own file could not be written.
    pub fallback: Option<PathBuf>,
}

impl Collector {
    /// Writes to the journal. A journal that cannot be written anywhere is given up (with a
    /// warning): the run goes on, it only could not be resumed after a SIGKILL.
    pub fn journal(
        &mut self,
        journal: &mut Option<Journal>,
        op: impl FnOnce(&mut Journal) -> std::io::Result<()>,
        progress: &Progress,
    ) {
        let Some(j) = journal else {
            return;
        };
        if let Err(e) = op(j) {
            progress.println(&format!("warning: {e}; the run goes on without a journal"));
            *journal = None;
            return;
        }
        if !self.journal_move_told
            && let Some((from, cause)) = j.moved_from()
        {
            progress.println(&format!(
                "warning: cannot write the journal `{}` ({cause}); it continues in `{}`",
                from.display(),
                j.path().display()
            ));
            self.journal_move_told = true;
        }
    }

    /// After the results file was written (or not): a written one makes the journal
    /// redundant; one that failed is rendered again from the journal into a fallback
    /// folder. Returns where the results are.
    pub fn settle(
        &mut self,
        journal: Option<Journal>,
        destination: Destination,
        job_dir: &Path,
        format: Format,
        header: &RunHeader,
        footer: &RunFooter,
    ) -> Destination {
        let Some(journal) = journal else {
            return destination;
        };
        if self.write_error.is_none() {
            if journal.has_earlier_runs() && footer.status != RunStatus::Ok {
                // Results of an earlier killed run that this one did not redo would go
                // with it; `--resume` reads the output and the journal together.
                say!(
                    "note: the journal `{}` is kept: it holds results of an earlier unfinished \
                     run that this one did not redo",
                    journal.path().display()
                );
            } else if let Err(e) = journal.remove() {
                say!("warning: cannot remove the journal: {e}");
            }
            return destination;
        }
        let Destination::File(path) = &destination else {
            return destination;
        };
        let name = path
            .file_name()
            .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
        let folders = crate::record::fallback::folders(job_dir, path.parent());
        let rendered = journal.this_run().and_then(|entries| {
            output::render_fallback(&entries, &folders, &name, format, header, footer)
        });
        match rendered {
            Ok(fallback) => {
                // Everything is in the fallback file; the journal is a second copy.
                let _ = journal.remove();
                self.fallback = Some(fallback.clone());
                Destination::File(fallback)
            }
            Err(e) => {
                say!(
                    "error: cannot write the results to a fallback file either ({e}); every \
                     finished result is in the journal `{}`",
                    journal.path().display()
                );
                destination
            }
        }
    }

    /// Keeps `record` for the failure list when it is among the first failures in input
    /// order (workers finish items in any order; a cron mail must not change with it).
    pub fn note(&mut self, task: &str, record: &ItemRecord) {
        if !record.status.is_failure() {
            return;
        }
        let position = match self.tasks_seen.iter().position(|t| t == task) {
            Some(position) => position,
            None => {
                self.tasks_seen.push(task.to_owned());
                self.tasks_seen.len() - 1
            }
        };
        let key = (position, record.index);
        let at = self.failures.partition_point(|(t, i, _)| (*t, *i) < key);
        if at < FAILURES_SHOWN {
            let line = progress::describe_failure(task, record);
            self.failures.insert(at, (position, record.index, line));
            self.failures.truncate(FAILURES_SHOWN);
        }
    }

    pub fn write(&mut self, op: impl FnOnce() -> std::io::Result<()>) {
        if self.write_error.is_none()
            && let Err(e) = op()
        {
            self.write_error = Some(e);
        }
    }

    /// The closing lines on stderr: a summary (unless `-q` and all went well), the first
    /// failures, and where the results are.
    pub fn report(
        &self,
        job: &Job,
        destination: &Destination,
        footer: &RunFooter,
        progress: &Progress,
        control: &RunControl<'_>,
        run_start: Instant,
    ) {
        let s = &footer.summary;
        // A closed stdout (`| head`) is how a one-liner's reader says it has enough.
        let closed = control.stop() == Some(Stop::OutputClosed);
        let trouble = s.failures() > 0
            || self.write_error.is_some()
            || (footer.status != RunStatus::Ok && !closed);
        if progress.quiet() && !trouble {
            return;
        }
        let mut line = format!(
            "runjobs: {}: {}, {} failed, {} timed out",
            job.name,
            s.ok_text(),
            s.failed,
            s.timed_out
        );
        if s.skipped > 0 {
            line += &format!(", {} skipped", s.skipped);
        }
        if s.truncated > 0 {
            line += &format!(", {} with output cut at `max_output`", s.truncated);
        }
        // The whole run, writing its results included (the file's `duration_s` cannot count
        // the writing of the file that holds it).
        line += &format!(" in {:.2}s", run_start.elapsed().as_secs_f64());
        match control.stop() {
            Some(Stop::Interrupted) => {
                line += &format!(" (interrupted by {})", control.signal_name());
            }
            Some(Stop::Deadline) => {
                let deadline = control.deadline().unwrap_or_default();
                line += &format!(
                    " (stopped: the deadline of {} passed)",
                    humantime::format_duration(deadline)
                );
            }
            Some(Stop::TooManyFailures) => {
                line += &format!("{})", control.limit_message(" (stopped: "));
            }
            Some(Stop::OutputClosed) => line += " (stopped: standard output was closed)",
            None => {}
        }
        match (&self.write_error, destination) {
            (Some(e), Destination::File(path)) if self.fallback.is_some() => {
                line += &format!(
                    "\nerror: results could not be written: {e}\nevery result is in the fallback file {}",
                    path.display()
                );
            }
            (Some(e), _) => line += &format!("\nerror: results could not be written: {e}"),
            (None, Destination::File(path)) => line += &format!("; results in {}", path.display()),
            (None, Destination::Stdout | Destination::Discard) => {}
        }
        say!("{line}");
        for (_, _, failure) in &self.failures {
            say!("{failure}");
        }
        let more = s.failures().saturating_sub(self.failures.len() as u64);
        if more > 0 {
            say!("  … and {more} more failures (see the results file)");
        }
    }
}
