//! Runs against each other: a history (one line a run, oldest first, with the change against
//! the run before and the items that flip between ok and failed), and a diff of two runs.
//! Items are matched by identity, as `--resume` matches them (the function, the input and
//! which occurrence of that input it is), never by position.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;

use super::item::ItemResult;
use super::summary::{ItemLine, RunReport};
use crate::record::read::{ResultsVisitor, TaskInfo};
use crate::record::{ItemKey, Status, item_key};

/// Lines listed per group; the rest are counted.
pub const LISTED: usize = 20;
/// A duration change counts when the slower side took over this many times the faster.
const CHANGE_FACTOR: f64 = 2.0;
/// Below this, durations are noise (a process start, a page fault).
const MIN_DURATION_S: f64 = 0.01;

/// Which item: the function, the input and its occurrence among equal inputs.
type Identity = (ItemKey, u32);

/// Follows identities through one file.
#[derive(Default)]
struct Identify {
    /// How often each (function, input) came so far in the current task.
    seen: HashMap<ItemKey, u32>,
}

impl Identify {
    fn task(&mut self) {
        self.seen.clear();
    }

    fn of(&mut self, task: &TaskInfo, result: &ItemResult) -> Identity {
        // Files of an older runjobs name no function: the task's name stands in.
        let function = task.function_hash.as_deref().unwrap_or(&task.name);
        let key = item_key(function, &result.input);
        let seen = self.seen.entry(key).or_default();
        *seen += 1;
        (key, *seen - 1)
    }
}

/// One item as a run left it.
struct Outcome {
    status: Status,
    duration_s: f64,
    line: ItemLine,
}

/// Every item of a file by identity.
#[derive(Default)]
pub struct Outcomes {
    identify: Identify,
    items: HashMap<Identity, Outcome>,
}

impl ResultsVisitor for Outcomes {
    fn run(&mut self, _started_at: &str) {}

    fn task(&mut self, _task: &TaskInfo) {
        self.identify.task();
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let r = ItemResult::parse(raw)?;
        let identity = self.identify.of(task, &r);
        let line = ItemLine::of(task, &r, None);
        let outcome = Outcome {
            status: r.status,
            duration_s: r.duration_s,
            line,
        };
        self.items.insert(identity, outcome);
        Ok(())
    }
}

/// A group of items in a diff: the first few, and how many in all.
#[derive(Debug, Default, Serialize)]
pub struct Group {
    pub count: u64,
    pub items: Vec<ItemLine>,
}

impl Group {
    fn add(&mut self, line: ItemLine) {
        self.count += 1;
        if self.items.len() < LISTED {
            self.items.push(line);
        }
    }
}

/// What changed from one run to the next.
#[derive(Debug, Default, Serialize)]
pub struct Diff {
    pub version: u32,
    pub old: String,
    pub new: String,
    pub newly_failing: Group,
    pub fixed: Group,
    pub still_failing: Group,
    pub added: Group,
    pub removed: Group,
    /// Items that took over twice as long (or half as long) as before.
    pub slower: Group,
    pub faster: Group,
    /// Items failing now that did not fail before: newly failing ones, and added ones that
    /// fail. Any makes `report --diff` exit 1.
    pub new_failures: u64,
}

/// Compares NEW's items with OLD's.
pub fn diff(old_name: &str, old: Outcomes, new_name: &str, new: Outcomes) -> Diff {
    let mut old = old.items;
    let mut diff = Diff {
        version: 1,
        old: old_name.to_owned(),
        new: new_name.to_owned(),
        ..Diff::default()
    };
    // In the new run's order, so the lists read as its results do.
    let mut new_items: Vec<(Identity, Outcome)> = new.items.into_iter().collect();
    new_items
        .sort_by(|a, b| (&a.1.line.task, a.1.line.index).cmp(&(&b.1.line.task, b.1.line.index)));
    for (identity, now) in new_items {
        let Some(before) = old.remove(&identity) else {
            if now.status.is_failure() {
                diff.new_failures += 1;
            }
            diff.added.add(now.line);
            continue;
        };
        let (was_bad, is_bad) = (before.status.is_failure(), now.status.is_failure());
        match (was_bad, is_bad) {
            (false, true) => {
                diff.new_failures += 1;
                diff.newly_failing.add(now.line.clone());
            }
            (true, false) => diff.fixed.add(now.line.clone()),
            (true, true) => diff.still_failing.add(now.line.clone()),
            (false, false) => {}
        }
        if !is_bad && !was_bad {
            let (a, b) = (before.duration_s, now.duration_s);
            if b.max(a) >= MIN_DURATION_S {
                if b > a * CHANGE_FACTOR {
                    diff.slower.add(now.line);
                } else if a > b * CHANGE_FACTOR {
                    diff.faster.add(now.line);
                }
            }
        }
    }
    let mut removed: Vec<Outcome> = old.into_values().collect();
    removed.sort_by(|a, b| (&a.line.task, a.line.index).cmp(&(&b.line.task, b.line.index)));
    for gone in removed {
        diff.removed.add(gone.line);
    }
    diff
}

/// One run of a history.
#[derive(Debug, Serialize)]
pub struct HistoryLine {
    #[serde(flatten)]
    pub run: RunReport,
    /// Against the run before, e.g. `+3 failed, -1 ok`.
    pub change: String,
}

/// Runs oldest first, each with its change against the one before, and the items that
/// flipped between ok and failed across them.
#[derive(Debug, Serialize)]
pub struct History {
    pub version: u32,
    pub runs: Vec<HistoryLine>,
    pub flaky: Group,
}

/// Follows each item's outcome through the runs of a history, oldest first.
#[derive(Default)]
pub struct Flips {
    identify: Identify,
    /// The item's last outcome (ok?), and whether it flipped already.
    last: HashMap<Identity, (bool, bool)>,
    pub flaky: Group,
}

impl ResultsVisitor for Flips {
    fn run(&mut self, _started_at: &str) {}

    fn task(&mut self, _task: &TaskInfo) {
        self.identify.task();
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let r = ItemResult::parse(raw)?;
        if r.status == Status::Skipped {
            return Ok(());
        }
        let identity = self.identify.of(task, &r);
        let ok = r.status == Status::Ok;
        match self.last.get_mut(&identity) {
            None => {
                self.last.insert(identity, (ok, false));
            }
            Some((was_ok, flipped)) => {
                if *was_ok != ok && !*flipped {
                    *flipped = true;
                    self.flaky.add(ItemLine::of(task, &r, None));
                }
                *was_ok = ok;
            }
        }
        Ok(())
    }
}

/// `+3 failed, -1 ok` from one run's counts to the next's; `same counts` when none moved.
pub fn change(before: &RunReport, after: &RunReport) -> String {
    let (b, a) = (&before.summary, &after.summary);
    let moves = [
        ("ok", a.ok as i64 - b.ok as i64),
        ("failed", a.failed as i64 - b.failed as i64),
        ("timed out", a.timed_out as i64 - b.timed_out as i64),
        ("skipped", a.skipped as i64 - b.skipped as i64),
    ];
    let parts: Vec<String> = moves
        .iter()
        .filter(|(_, n)| *n != 0)
        .map(|(what, n)| format!("{n:+} {what}"))
        .collect();
    if parts.is_empty() {
        "same counts".to_owned()
    } else {
        parts.join(", ")
    }
}
