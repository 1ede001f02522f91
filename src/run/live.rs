//! Keeps the run's live-state file (`record::live`) for `runjobs status`: rewritten from the
//! collecting thread at most once a second, from what it counts anyway (the task's summary,
//! the board of slow items), so an item costs nothing more; removed when the run ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::exec::SlowItem;
use crate::job::Job;
use crate::record::Summary;
use crate::record::live::{self, LiveItem, LiveState, LiveTask};

/// The live state is rewritten this often, at most.
const EVERY: Duration = Duration::from_secs(1);

pub struct Live {
    path: PathBuf,
    state: LiveState,
    last: Option<Instant>,
    /// Writing failed once: the run goes on without it (`status` counts the journal).
    given_up: bool,
}

/// What the collecting thread knows now, for the live state.
pub struct Now<'a> {
    pub task: usize,
    pub summary: &'a Summary,
    pub running: &'a [SlowItem],
    pub waiting: Option<String>,
    pub journal: Option<&'a Path>,
}

impl Live {
    /// The live state of a run of `job` that holds the lock at `lock_path`.
    pub fn new(lock_path: &Path, job: &Job, started_at: &str, results: Option<&Path>) -> Live {
        let folder = lock_path.parent().unwrap_or(Path::new("."));
        let state = LiveState {
            version: live::VERSION,
            job: job.name.clone(),
            pid: std::process::id(),
            started_at: started_at.to_owned(),
            updated_at: started_at.to_owned(),
            results: results.map(absolute),
            journal: None,
            tasks: job
                .tasks
                .iter()
                .map(|t| LiveTask {
                    name: t.name.clone(),
                    total: None,
                    started_at: None,
                    finished: false,
                    summary: Summary::default(),
                })
                .collect(),
            running: Vec::new(),
            waiting: None,
        };
        Live {
            path: live::path_for(folder, &job.name),
            state,
            last: None,
            given_up: false,
        }
    }

    /// Task `task` starts with `total` items: written at once, so `status` knows the total
    /// from the start. Returns a warning when the file cannot be written.
    pub fn task_started(
        &mut self,
        task: usize,
        total: Option<u64>,
        journal: Option<&Path>,
    ) -> Option<String> {
        if let Some(t) = self.state.tasks.get_mut(task) {
            t.total = total;
            t.started_at = Some(now_text());
        }
        self.state.journal = journal.map(absolute);
        self.write()
    }

    /// The task ended with `summary`.
    pub fn task_ended(&mut self, task: usize, summary: &Summary) {
        if let Some(t) = self.state.tasks.get_mut(task) {
            t.summary = *summary;
            t.finished = true;
        }
        self.state.running.clear();
    }

    /// Rewrites the state when the last write is a second old. Returns a warning when the
    /// file cannot be written.
    pub fn tick(&mut self, now: Now<'_>) -> Option<String> {
        if self.given_up || self.last.is_some_and(|at| at.elapsed() < EVERY) {
            return None;
        }
        if let Some(t) = self.state.tasks.get_mut(now.task) {
            t.summary = *now.summary;
        }
        let wall = SystemTime::now();
        self.state.running = now
            .running
            .iter()
            .map(|item| LiveItem {
                task: self
                    .state
                    .tasks
                    .get(item.task)
                    .map_or_else(String::new, |t| t.name.clone()),
                index: item.index,
                input: item.input.clone(),
                started_at: text(wall - item.since.elapsed()),
            })
            .collect();
        self.state.waiting = now.waiting;
        self.state.journal = now.journal.map(absolute);
        self.write()
    }

    fn write(&mut self) -> Option<String> {
        if self.given_up {
            return None;
        }
        self.last = Some(Instant::now());
        self.state.updated_at = now_text();
        match live::write(&self.path, &self.state) {
            Ok(()) => None,
            Err(e) => {
                self.given_up = true;
                Some(format!(
                    "warning: cannot write the live state `{}`: {e}; `runjobs status` counts \
                     the journal instead",
                    self.path.display()
                ))
            }
        }
    }

    /// The run is over: its state goes.
    pub fn finish(self) {
        let _ = live::remove(&self.path);
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

fn now_text() -> String {
    text(SystemTime::now())
}

fn text(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
