//! What the user sees while a run goes: indicatif bars on a terminal; otherwise one plain
//! status line every 10 s (no `\r`, no colour: fit for cron mail) and a final summary.
//!
//! Owns stderr for the run: worker log lines pass through here so they never tear the bars.
//! Decides nothing about the run.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::cli::ProgressMode;
use crate::exec::{SLOW_AFTER, SlowItem};
use crate::record::{ItemRecord, Status, Summary};

/// Status lines come this often when there are no bars.
const STATUS_EVERY: Duration = Duration::from_secs(10);

enum Display {
    Bars {
        multi: MultiProgress,
        bars: Vec<ProgressBar>,
        /// A line under the task's bar per slow item.
        slow: Vec<((usize, u64), ProgressBar)>,
    },
    Lines {
        last: Instant,
    },
}

struct TaskCounts {
    name: String,
    total: Option<u64>,
    started: Instant,
    summary: Summary,
}

pub struct Progress {
    display: Display,
    quiet: bool,
    tasks: Vec<TaskCounts>,
    /// The items running long now, longest first.
    slow: Vec<SlowItem>,
    /// Slow items already announced (off a terminal, each gets one line).
    announced: HashSet<(usize, u64)>,
    /// Why no new item starts, while an admission gate holds them back.
    waiting: Option<String>,
    /// Relay worker log lines even when quiet (a one-liner's commands' stderr).
    logs_always: bool,
}

impl Progress {
    pub fn new(mode: ProgressMode, quiet: bool) -> Progress {
        let stderr_is_terminal = console::Term::stderr().is_term();
        let bars = !quiet
            && match mode {
                ProgressMode::Always => true,
                ProgressMode::Never => false,
                ProgressMode::Auto => stderr_is_terminal,
            };
        let display = if bars {
            // `term_like` draws even when stderr is not a terminal (`--progress always`).
            let target =
                ProgressDrawTarget::term_like(Box::new(ClosableTerm(console::Term::stderr())));
            Display::Bars {
                multi: MultiProgress::with_draw_target(target),
                bars: Vec::new(),
                slow: Vec::new(),
            }
        } else {
            Display::Lines {
                last: Instant::now(),
            }
        };
        Progress {
            display,
            quiet,
            tasks: Vec::new(),
            slow: Vec::new(),
            announced: HashSet::new(),
            waiting: None,
            logs_always: false,
        }
    }

    /// With `always`, log lines are relayed even when quiet.
    pub fn relay_logs(&mut self, always: bool) {
        self.logs_always = always;
    }

    pub fn task_started(&mut self, name: &str, total: Option<u64>) {
        self.tasks.push(TaskCounts {
            name: name.to_owned(),
            total,
            started: Instant::now(),
            summary: Summary::default(),
        });
        if let Display::Bars { multi, bars, .. } = &mut self.display {
            let bar = multi.add(ProgressBar::new(total.unwrap_or(0)));
            let style = ProgressStyle::with_template(
                "{prefix:>14.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} {per_sec} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            bars.push(bar);
        }
    }

    pub fn finished(&mut self, task: usize, records: &[ItemRecord]) {
        let Some(counts) = self.tasks.get_mut(task) else {
            return;
        };
        for record in records {
            counts.summary.add_record(record);
        }
        self.show(task, records.len() as u64);
    }

    /// `n` more items of `task` ended `ok`.
    pub fn finished_ok(&mut self, task: usize, n: u64) {
        let Some(counts) = self.tasks.get_mut(task) else {
            return;
        };
        counts.summary.add_ok(n);
        self.show(task, n);
    }

    /// Moves `task`'s bar on by `n` items.
    fn show(&self, task: usize, n: u64) {
        if let Display::Bars { bars, .. } = &self.display
            && let (Some(bar), Some(counts)) = (bars.get(task), self.tasks.get(task))
        {
            bar.inc(n);
            self.bar_message(bar, counts);
        }
    }

    fn bar_message(&self, bar: &ProgressBar, counts: &TaskCounts) {
        let s = &counts.summary;
        let mut message = format!("ok {} failed {}", s.ok, s.failures());
        if let Some(why) = &self.waiting {
            message += &format!(" | waiting: {why}");
        }
        bar.set_message(message);
    }

    /// Why no new item of `task` starts (a closed admission gate), or `None` once they
    /// start again: said when it begins and ends, and in every status line meanwhile.
    pub fn waiting(&mut self, task: usize, why: Option<String>) {
        let (was, now) = (self.waiting.is_some(), why.is_some());
        self.waiting = why;
        let name = self.tasks.get(task).map_or("?", |t| t.name.as_str());
        match &self.display {
            Display::Bars { bars, .. } => {
                if let (Some(bar), Some(counts)) = (bars.get(task), self.tasks.get(task)) {
                    self.bar_message(bar, counts);
                }
            }
            Display::Lines { .. } if self.quiet || was == now => {}
            Display::Lines { .. } => match &self.waiting {
                Some(why) => say!("runjobs: {name}: waiting to start items: {why}"),
                None => say!("runjobs: {name}: starting items again"),
            },
        }
    }

    /// A line a worker wrote to its stderr.
    pub fn log(&self, line: &str) {
        if !self.quiet || self.logs_always {
            self.println(line);
        }
    }

    /// Prints a line without tearing the bars.
    pub fn println(&self, line: &str) {
        match &self.display {
            // `suspend` (not `println`) so the line is printed even when bars are hidden.
            Display::Bars { multi, .. } => multi.suspend(|| say!("{line}")),
            Display::Lines { .. } => say!("{line}"),
        }
    }

    /// The items of `task` that run long now (nextest's SLOW lines): on a terminal a line
    /// each under the task's bar; off it, one line each when it turns slow, and the status
    /// line names the longest-running.
    pub fn slow(&mut self, task: usize, items: &[SlowItem], fresh: &[SlowItem]) {
        let name = |i: &SlowItem| {
            let task = self.tasks.get(i.task).map_or("?", |t| t.name.as_str());
            format!("{task}[{}] (input {})", i.index, i.input)
        };
        let running = |i: &SlowItem| {
            humantime::format_duration(Duration::from_secs(i.since.elapsed().as_secs()))
        };
        match &mut self.display {
            Display::Bars { multi, bars, slow } => {
                slow.retain(|(key, bar)| {
                    let still = items.iter().any(|i| (i.task, i.index) == *key);
                    if !still {
                        bar.finish_and_clear();
                        multi.remove(bar);
                    }
                    still
                });
                for item in items {
                    let key = (item.task, item.index);
                    let message = format!("  SLOW {} running for {}", name(item), running(item));
                    if let Some((_, bar)) = slow.iter().find(|(k, _)| *k == key) {
                        bar.set_message(message);
                        continue;
                    }
                    let Some(under) = bars.get(task) else {
                        continue;
                    };
                    let bar = multi.insert_after(under, ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{msg}").expect("the template is valid"),
                    );
                    bar.set_message(message);
                    slow.push((key, bar));
                }
            }
            Display::Lines { .. } => {
                for item in fresh {
                    if !self.quiet && self.announced.insert((item.task, item.index)) {
                        let took = humantime::format_duration(SLOW_AFTER);
                        say!("runjobs: SLOW {} running for {took}", name(item));
                    }
                }
            }
        }
        self.slow = items.to_vec();
    }

    /// Prints the periodic status line when it is due (no-bars mode only).
    pub fn tick(&mut self) {
        let Display::Lines { last } = &mut self.display else {
            return;
        };
        if self.quiet || last.elapsed() < STATUS_EVERY {
            return;
        }
        *last = Instant::now();
        if let Some(counts) = self.tasks.last() {
            let mut line = status_line(counts);
            if let Some(longest) = self.slow.first() {
                let secs = Duration::from_secs(longest.since.elapsed().as_secs());
                line += &format!(
                    "; longest running: {}[{}] (input {}) for {}",
                    counts.name,
                    longest.index,
                    longest.input,
                    humantime::format_duration(secs)
                );
            }
            if let Some(why) = &self.waiting {
                line += &format!("; waiting to start items: {why}");
            }
            say!("runjobs: {line}");
        }
    }

    pub fn task_finished(&mut self, task: usize) {
        if let Display::Bars { bars, .. } = &self.display
            && let Some(bar) = bars.get(task)
        {
            bar.finish();
        }
    }

    /// Removes the bars before the final summary.
    pub fn clear(&mut self) {
        if let Display::Bars { multi, .. } = &self.display {
            let _ = multi.clear();
        }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }
}

/// stderr for the bars, with write errors dropped: indicatif unwraps some of them (its
/// `suspend`), and a stderr whose reader went away must not stop the run.
#[derive(Debug)]
struct ClosableTerm(console::Term);

impl TermLike for ClosableTerm {
    fn width(&self) -> u16 {
        TermLike::width(&self.0)
    }
    fn height(&self) -> u16 {
        TermLike::height(&self.0)
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        dropping_errors(self.0.move_cursor_up(n))
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        dropping_errors(self.0.move_cursor_down(n))
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        dropping_errors(self.0.move_cursor_right(n))
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        dropping_errors(self.0.move_cursor_left(n))
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        dropping_errors(self.0.write_line(s))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        dropping_errors(self.0.write_str(s))
    }
    fn clear_line(&self) -> io::Result<()> {
        dropping_errors(self.0.clear_line())
    }
    fn flush(&self) -> io::Result<()> {
        dropping_errors(self.0.flush())
    }
}

fn dropping_errors(_: io::Result<()>) -> io::Result<()> {
    Ok(())
}

fn status_line(counts: &TaskCounts) -> String {
    let s = &counts.summary;
    let done = s.total;
    let elapsed = counts.started.elapsed().as_secs_f64();
    let rate = if elapsed > 0.0 {
        done as f64 / elapsed
    } else {
        0.0
    };
    let of = counts.total.map_or_else(String::new, |t| format!("/{t}"));
    let eta = match counts.total {
        Some(total) if rate > 0.0 && total >= done => {
            let secs = ((total - done) as f64 / rate).ceil() as u64;
            format!(
                ", ETA {}",
                humantime::format_duration(Duration::from_secs(secs))
            )
        }
        _ => String::new(),
    };
    format!(
        "{}: {done}{of} done ({} ok, {} failed, {} timed out), {rate:.1}/s{eta}",
        counts.name, s.ok, s.failed, s.timed_out
    )
}

/// `name[index] (input …): error` for the failure list at the end of a run.
pub fn describe_failure(task: &str, record: &ItemRecord) -> String {
    let mut input = record.input.to_string();
    if input.chars().count() > 60 {
        input = input.chars().take(60).collect::<String>() + "…";
    }
    let what = if record.status == Status::TimedOut {
        "timed out"
    } else {
        "failed"
    };
    format!(
        "  {what}: {task}[{}] (input {input}): {}",
        record.index,
        crate::visible::visible(record.error.as_deref().unwrap_or(""))
    )
}
