//! Gathering one job's status from the files its runs leave beside their lock: the lock
//! (held now? looked up in `/proc/locks`, never taken), the live state a run keeps, the
//! journals of runs that never finished, and the run index. Only reads.

use std::path::{Path, PathBuf};

use super::state::{self, Counted, JobStatus, LastRun, RunNow, RunningItem, TaskNow, Unfinished};
use super::targets::NoResults;
use crate::cron::history;
use crate::job::{self, Outline};
use crate::process::lock::{self, Holder};
use crate::record::Summary;
use crate::record::journal::{self, Entry};
use crate::record::live::{self, LiveState};
use crate::record::read::{self, RunInfo};

/// A job's status, and what could not be read on the way.
pub struct Found {
    pub status: JobStatus,
    pub warnings: Vec<String>,
}

/// Where to look for one job.
struct Look {
    job: String,
    job_file: Option<String>,
    lock: PathBuf,
    /// The tasks' names from the job file (those not started yet show as pending).
    tasks: Vec<String>,
    /// The results file named on the command line, and its journal.
    named: Option<(PathBuf, PathBuf)>,
    warnings: Vec<String>,
}

/// The status of the job whose file has `outline`.
pub fn of_job(outline: &Outline) -> Found {
    Look {
        job: outline.name.clone(),
        job_file: Some(absolute(&outline.file)),
        lock: crate::run::own_lock_path(outline),
        tasks: outline.tasks.clone(),
        named: None,
        warnings: Vec::new(),
    }
    .gather()
}

/// The status of the job whose lock (in a folder of results) is `lock`.
pub fn of_lock(lock: &Path, job: &str) -> Found {
    Look {
        job: job.to_owned(),
        job_file: None,
        lock: lock.to_owned(),
        tasks: Vec::new(),
        named: None,
        warnings: Vec::new(),
    }
    .gather()
}

/// The status of the job whose results file or journal is `path`; the error says why it
/// names no job.
pub fn of_output(path: &Path) -> Result<Found, String> {
    let (results, journal) = results_and_journal(path);
    let (job, job_file) = match journal::first_run(&journal) {
        Ok(Some(Entry::Run { job, job_file, .. })) => (job, job_file),
        _ => (None, None),
    };
    let (job, job_file) = match job {
        Some(job) => (job, job_file),
        None => {
            let info = results_info(&results)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            let job = info
                .job
                .ok_or_else(|| format!("`{}` does not name its job", path.display()))?;
            (job, info.job_file)
        }
    };
    let folder = parent(&results);
    let mut lock = lock::path_for(&folder, &job);
    let mut tasks = Vec::new();
    if let Some(outline) = job_file
        .as_deref()
        .and_then(|f| job::outline(Path::new(f)).ok())
    {
        // Runs of the job file's own output lock beside it; `-o` runs beside their results.
        if !lock.exists() {
            lock = crate::run::own_lock_path(&outline);
        }
        tasks = outline.tasks;
    }
    Ok(Look {
        job,
        job_file,
        lock,
        tasks,
        named: Some((results, journal)),
        warnings: Vec::new(),
    }
    .gather())
}

/// The job running now whose results file is `path` (not written yet), with its pid and
/// start: what `report` says instead of "no such file".
pub fn running_output(path: &Path) -> Option<(String, Holder)> {
    let status = of_output(path).ok()?.status;
    let run = status.run?;
    let holder = Holder {
        pid: run.pid,
        started_at: run.started_at,
    };
    Some((status.job, holder))
}

fn results_and_journal(path: &Path) -> (PathBuf, PathBuf) {
    match journal::results_path_of(path) {
        Some(results) if path.extension().is_some_and(|e| e == "journal") => {
            (results, path.to_owned())
        }
        _ => (path.to_owned(), journal::path_for(path)),
    }
}

fn results_info(results: &Path) -> Result<RunInfo, String> {
    read::read(results, &mut NoResults).map(|info| info.run)
}

impl Look {
    fn gather(mut self) -> Found {
        let folder = parent(&self.lock);
        let holder = lock::holder(&self.lock).unwrap_or_else(|e| {
            self.warn(format!("cannot tell whether `{}` runs: {e}", self.job));
            None
        });
        let live_path = live::path_for(&folder, &self.job);
        let live = live::read(&live_path).unwrap_or_else(|e| {
            self.warn(format!("cannot read `{}`: {e}", live_path.display()));
            None
        });
        let live = live.filter(|l| l.job == self.job);
        let mut journals = self.journals(&folder);
        let run = holder.map(|holder| self.running(&holder, live.as_ref(), &mut journals));
        // A live state no run holds the lock for is what a killed run left.
        let stale = live.filter(|_| run.is_none());
        let unfinished: Vec<Unfinished> = journals
            .iter()
            .filter_map(|j| self.unfinished(j, stale.as_ref()))
            .collect();
        let last_run = self.last_run(&folder);
        let state = match (&run, &last_run) {
            (Some(_), _) => "running",
            (None, None) if unfinished.is_empty() => "never_run",
            (None, _) => "not_running",
        };
        Found {
            status: JobStatus {
                job: self.job,
                job_file: self.job_file,
                state,
                lock: absolute(&self.lock),
                run,
                last_run,
                unfinished,
            },
            warnings: self.warnings,
        }
    }

    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// The journals in `folder` whose first line names this job, and the named one; absolute.
    fn journals(&mut self, folder: &Path) -> Vec<PathBuf> {
        let is_journal = |p: &Path| {
            p.extension().is_some_and(|e| e == "journal")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && p.is_file()
        };
        let mut found: Vec<PathBuf> = match crate::cron::files_in(folder, is_journal) {
            Ok(files) => files,
            // A folder not made yet: the job never ran.
            Err(_) if !folder.exists() => Vec::new(),
            Err(e) => {
                self.warn(e);
                Vec::new()
            }
        };
        let mut job_file = None;
        found.retain(|path| match journal::first_run(path) {
            Ok(Some(Entry::Run {
                job: Some(job),
                job_file: file,
                ..
            })) if job == self.job => {
                job_file = job_file.take().or(file);
                true
            }
            _ => false,
        });
        // Named by its lock alone, a job's file is known from its journals.
        self.job_file = self.job_file.take().or(job_file);
        if let Some((_, named)) = &self.named
            && named.is_file()
        {
            found.push(named.clone());
        }
        let mut found: Vec<PathBuf> = found.iter().map(|p| canonical(p)).collect();
        found.sort();
        found.dedup();
        found
    }

    /// The run holding the lock: from its live state when that is its own, else from its
    /// journal (the newest of the job's), else only the lock's record. Its journal leaves
    /// `journals`.
    fn running(
        &mut self,
        holder: &Holder,
        live: Option<&LiveState>,
        journals: &mut Vec<PathBuf>,
    ) -> RunNow {
        if let Some(live) = live.filter(|l| holder.pid.is_none_or(|pid| pid == l.pid)) {
            if let Some(own) = &live.journal {
                let own = canonical(Path::new(own));
                journals.retain(|j| *j != own);
            }
            return from_live(live);
        }
        let mut run = RunNow {
            pid: holder.pid,
            started_at: holder.started_at.clone(),
            elapsed_s: holder.started_at.as_deref().and_then(state::seconds_since),
            source: "lock",
            updated_at: None,
            results: None,
            journal: None,
            summary: Summary::default(),
            tasks: Vec::new(),
            eta_s: None,
            longest_running: Vec::new(),
            waiting: None,
        };
        if let Some((path, counted)) = self.journal_of(holder, journals) {
            journals.retain(|j| *j != path);
            let mut tasks = counted.tasks_now("running");
            // With one task started, its rate counts from the run's start.
            if let [only] = &mut tasks[..] {
                only.set_rate(run.elapsed_s);
            }
            run.eta_s = tasks.last().and_then(|t| t.eta_s);
            tasks.extend(self.pending_after(&counted));
            run.summary = counted.summary();
            run.tasks = tasks;
            run.source = "journal";
            run.results = journal::results_path_of(&path).map(|p| absolute(&p));
            run.journal = Some(absolute(&path));
        }
        run
    }

    /// The journal the lock's holder writes, counted: the one whose last run started when
    /// the holder did (the newest, when the lock does not say), newest first.
    fn journal_of(&mut self, holder: &Holder, journals: &[PathBuf]) -> Option<(PathBuf, Counted)> {
        let mut newest_first: Vec<&PathBuf> = journals.iter().collect();
        newest_first
            .sort_by_key(|j| std::cmp::Reverse(j.metadata().and_then(|m| m.modified()).ok()));
        for path in newest_first {
            match state::count_journal(path) {
                Ok(counted)
                    if holder.started_at.is_none() || counted.started_at == holder.started_at =>
                {
                    return Some((path.clone(), counted));
                }
                Ok(_) => {}
                Err(e) => self.warn(format!("cannot read `{}`: {e}", path.display())),
            }
        }
        None
    }

    /// The job file's tasks after those a journal has begun: not started yet.
    fn pending_after(&self, counted: &Counted) -> Vec<TaskNow> {
        let begun = counted.tasks.len();
        let none = Summary::default();
        self.tasks
            .iter()
            .skip(begun)
            .map(|name| TaskNow::new(name.clone(), None, &none, "pending"))
            .collect()
    }

    /// What the journal of a run that never finished holds, and how to continue it.
    fn unfinished(&mut self, path: &Path, stale: Option<&LiveState>) -> Option<Unfinished> {
        let counted = match state::count_journal(path) {
            Ok(counted) if !counted.unreadable => counted,
            Ok(_) => return None,
            Err(e) => {
                self.warn(format!("cannot read `{}`: {e}", path.display()));
                return None;
            }
        };
        let results_path = journal::results_path_of(path);
        if let (Some(results), Some(started)) = (&results_path, &counted.started_at)
            && written_since(results, started)
        {
            // Its last run wrote its results; the journal is kept only for what an earlier,
            // killed run left in it, which that run's `--resume` already had its chance at.
            return None;
        }
        let results = results_path.map(|p| absolute(&p));
        let pid = stale
            .filter(|l| {
                l.journal
                    .as_deref()
                    .is_some_and(|j| canonical(Path::new(j)) == path)
            })
            .map(|l| l.pid);
        let job_file = match journal::first_run(path) {
            Ok(Some(Entry::Run { job_file, .. })) => self.job_file.clone().or(job_file),
            _ => self.job_file.clone(),
        };
        let resume = match (&job_file, &results) {
            (Some(file), Some(results)) => Some(format!("runjobs {file} --resume {results}")),
            _ => None,
        };
        Some(Unfinished {
            journal: absolute(path),
            results,
            started_at: counted.started_at.clone(),
            pid,
            summary: counted.summary(),
            tasks: counted.tasks_now("unfinished"),
            resume,
        })
    }

    /// The last run that ended, from the run index in `folder`; without an index, from the
    /// results file named.
    fn last_run(&mut self, folder: &Path) -> Option<LastRun> {
        let index = history::index_path(folder, &self.job);
        match history::read_index(&index) {
            Ok(lines) => {
                let line = lines.into_iter().rev().find(|l| l.status != "locked")?;
                return Some(LastRun {
                    started_at: Some(line.started_at),
                    finished_at: line.finished_at,
                    status: line.status,
                    duration_s: line.duration_s,
                    summary: line.summary,
                    results: line.results,
                });
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                self.warn(format!("cannot read `{}`: {e}", index.display()));
            }
            Err(_) => {}
        }
        let (results, _) = self.named.as_ref().filter(|(r, _)| r.is_file())?;
        let info = match results_info(results) {
            Ok(info) => info,
            Err(e) => {
                self.warn(format!("cannot read `{}`: {e}", results.display()));
                return None;
            }
        };
        Some(LastRun {
            started_at: info.started_at,
            finished_at: info.finished_at,
            status: info.status.unwrap_or_else(|| "unfinished".into()),
            duration_s: info.duration_s,
            summary: info.summary,
            results: Some(absolute(results)),
        })
    }
}

/// The run as its live state tells it.
fn from_live(live: &LiveState) -> RunNow {
    let mut summary = Summary::default();
    let tasks: Vec<TaskNow> = live
        .tasks
        .iter()
        .map(|t| {
            summary.merge(&t.summary);
            let (state, elapsed) = match (&t.started_at, t.finished) {
                (_, true) => ("done", None),
                (Some(started), false) => {
                    ("running", state::seconds_between(started, &live.updated_at))
                }
                (None, false) => ("pending", None),
            };
            let mut task = TaskNow::new(t.name.clone(), t.total, &t.summary, state);
            task.set_rate(elapsed);
            task
        })
        .collect();
    RunNow {
        pid: Some(live.pid),
        started_at: Some(live.started_at.clone()),
        elapsed_s: state::seconds_since(&live.started_at),
        source: "live",
        updated_at: Some(live.updated_at.clone()),
        results: live.results.clone(),
        journal: live.journal.clone(),
        summary,
        eta_s: tasks
            .iter()
            .find(|t| t.state == "running")
            .and_then(|t| t.eta_s),
        tasks,
        longest_running: live
            .running
            .iter()
            .map(|item| RunningItem {
                task: item.task.clone(),
                index: item.index,
                input: item.input.clone(),
                started_at: item.started_at.clone(),
                running_s: state::seconds_since(&item.started_at),
            })
            .collect(),
        waiting: live.waiting.clone(),
    }
}

/// Whether `path` was last written at or after the RFC 3339 time `at`.
fn written_since(path: &Path, at: &str) -> bool {
    let Ok(at) = humantime::parse_rfc3339_weak(at) else {
        return false;
    };
    path.metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= at)
}

/// The folder a file is in (`.` for a bare name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .map(|p| crate::job::normalize(&p))
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// The path with links resolved when it exists, else made absolute: how journals are told
/// apart.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(absolute(path)))
}
