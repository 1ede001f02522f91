//! What the HTML report draws, gathered as the results stream by: per task, each item on its
//! lane (a worker process; for a process per item, the slot it ran in) or, past a few
//! thousand items, time bins; per task a histogram of item durations; the number of items
//! running over time. Memory is bounded by the drawing, not the items.

use std::collections::HashMap;
use std::sync::Arc;

use super::item::{ItemResult, shown};
use crate::record::Status;
use crate::record::read::TaskInfo;

/// A task's items drawn one by one up to this many; past it, its lanes are drawn from bins.
pub const DETAIL_LIMIT: usize = 4000;
/// Items drawn one by one in all: tasks that begin past it are drawn from bins, so a job of
/// many tasks still makes a page of bounded size.
pub const DETAIL_TOTAL: usize = 5 * DETAIL_LIMIT;
/// Time bins across the run (the concurrency line, and lanes past `DETAIL_LIMIT`).
pub const BINS: usize = 400;
/// Worker lanes a task keeps at most; a task with more pids than this (a worker per item)
/// is drawn on the slots its items ran in instead.
pub const MAX_LANES: usize = 64;
/// Duration histogram: bins per decade, from 1 µs.
pub const PER_DECADE: usize = 4;
pub const HISTOGRAM_BINS: usize = 10 * PER_DECADE;
/// Two items of a slot may overlap by this much on paper: times are written to the
/// microsecond, so one's rounded end can pass the next one's start.
const SLOT_SLACK: f64 = 2e-6;

/// One item on the timeline.
pub struct Bar {
    pub lane: usize,
    pub start: f64,
    pub end: f64,
    pub status: Status,
    /// The tooltip: task[index], input, status, duration, where it ran, error.
    pub title: String,
}

/// Per time bin: busy seconds, the worst status seen, and how many items touched it.
#[derive(Clone)]
pub struct Bins {
    pub busy: Vec<f64>,
    pub worst: Vec<Status>,
    pub items: Vec<u32>,
}

impl Bins {
    fn new() -> Bins {
        Bins {
            busy: vec![0.0; BINS],
            worst: vec![Status::Ok; BINS],
            items: vec![0; BINS],
        }
    }

    fn add(&mut self, width: f64, start: f64, end: f64, status: Status) {
        spread(width, start, end, |bin, seconds| {
            self.busy[bin] += seconds;
            self.items[bin] += 1;
            if severity(status) > severity(self.worst[bin]) {
                self.worst[bin] = status;
            }
        });
    }

    /// Halves the resolution: each pair of bins becomes one.
    fn merge_pairs(&mut self) {
        merge_pairs(&mut self.busy, |a, b| a + b);
        merge_pairs(&mut self.items, |a, b| a + b);
        merge_pairs(&mut self.worst, |a, b| {
            if severity(b) > severity(a) { b } else { a }
        });
    }
}

/// Items by duration, four bins a decade from 1 µs, with the failures apart.
#[derive(Clone)]
pub struct Histogram {
    pub ok: [u64; HISTOGRAM_BINS],
    pub failed: [u64; HISTOGRAM_BINS],
    pub timed_out: [u64; HISTOGRAM_BINS],
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            ok: [0; HISTOGRAM_BINS],
            failed: [0; HISTOGRAM_BINS],
            timed_out: [0; HISTOGRAM_BINS],
        }
    }
}

impl Histogram {
    fn add(&mut self, duration_s: f64, status: Status) {
        let decade = (duration_s.max(1e-6) / 1e-6).log10() * PER_DECADE as f64;
        let bin = (decade as usize).min(HISTOGRAM_BINS - 1);
        match status {
            Status::Failed => self.failed[bin] += 1,
            Status::TimedOut => self.timed_out[bin] += 1,
            Status::Ok | Status::Skipped => self.ok[bin] += 1,
        }
    }

    /// The items of bin `bin`, all statuses.
    pub fn count(&self, bin: usize) -> u64 {
        self.ok[bin] + self.failed[bin] + self.timed_out[bin]
    }
}

/// One task's part of the drawing.
pub struct TaskLanes {
    pub name: String,
    /// A process per item (a command, or workers that each ran about one item): its lanes
    /// are the slots the items ran in, not pids.
    pub per_item: bool,
    pub workers: Option<u64>,
    /// Worker processes, in the order they first ran an item (not kept when `per_item`).
    pub lanes: Vec<Lane>,
    lane_of: HashMap<Lane, usize>,
    pub bars: Vec<Bar>,
    /// Per lane, once the items outnumber `DETAIL_LIMIT` (not kept when `per_item`).
    pub lane_bins: Option<Vec<Bins>>,
    /// All its items: a `per_item` task past `DETAIL_LIMIT` draws its slots from them.
    pub bins: Bins,
    pub histogram: Histogram,
    items: usize,
    /// Its items drawn one by one up to this many (`DETAIL_LIMIT`, or fewer once the run's
    /// `DETAIL_TOTAL` is spent).
    limit: usize,
}

impl TaskLanes {
    fn new(task: &TaskInfo, limit: usize) -> TaskLanes {
        let command = task
            .function
            .as_deref()
            .is_some_and(|f| f.starts_with("command:"));
        TaskLanes {
            name: task.name.clone(),
            per_item: command,
            workers: task.workers,
            lanes: Vec::new(),
            lane_of: HashMap::new(),
            bars: Vec::new(),
            lane_bins: None,
            bins: Bins::new(),
            histogram: Histogram::default(),
            items: 0,
            limit,
        }
    }

    /// Whether it is drawn from bins (past its limit of items).
    pub fn binned(&self) -> bool {
        self.items > self.limit
    }

    fn lane(&mut self, lane: Lane) -> usize {
        if let Some(&at) = self.lane_of.get(&lane) {
            return at;
        }
        self.lanes.push(lane.clone());
        self.lane_of.insert(lane, self.lanes.len() - 1);
        if self.lanes.len() > MAX_LANES {
            self.draw_on_slots();
        }
        self.lanes.len().saturating_sub(1)
    }

    /// From pid lanes to slots: too many pids to draw one each.
    fn draw_on_slots(&mut self) {
        self.per_item = true;
        self.lanes = Vec::new();
        self.lane_of = HashMap::new();
        self.lane_bins = None;
    }

    /// Pids far more than the workers (a worker recycled after each item, say): its lanes
    /// read better as slots.
    fn settle(&mut self) {
        let many = self
            .workers
            .is_some_and(|w| w > 0 && self.lanes.len() as u64 > 4 * w);
        if !self.per_item && many {
            self.draw_on_slots();
        }
        if self.per_item && !self.binned() {
            self.bars_on_slots();
        }
    }

    /// Each bar on the lowest slot free at its start, as a pool of slots would have run
    /// them (Nextflow's timeline does the same); the lanes become those slots.
    fn bars_on_slots(&mut self) {
        self.bars.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut free_at: Vec<f64> = Vec::new();
        for bar in &mut self.bars {
            bar.lane = match free_at
                .iter()
                .position(|&end| end <= bar.start + SLOT_SLACK)
            {
                Some(slot) => slot,
                None => {
                    free_at.push(0.0);
                    free_at.len() - 1
                }
            };
            free_at[bar.lane] = bar.end;
        }
        self.lanes = (0..free_at.len() as u32)
            .map(|slot| Lane {
                pid: slot,
                node: None,
            })
            .collect();
    }

    /// Lanes to draw: pids or slots, or for a `per_item` task past `DETAIL_LIMIT`, as many
    /// slots as items ran at once at most (`most_running`).
    pub fn lane_count(&self, bin_width: f64) -> usize {
        if self.per_item && self.binned() {
            // Bins average over their width: a hair above a whole number is rounding.
            (self.most_running(bin_width) - 0.05).ceil().max(1.0) as usize
        } else {
            self.lanes.len()
        }
    }

    /// The most items running at once, on average over a bin.
    pub fn most_running(&self, bin_width: f64) -> f64 {
        self.bins
            .busy
            .iter()
            .map(|busy| busy / bin_width)
            .fold(0.0, f64::max)
    }
}

pub struct Timeline {
    /// Seconds a time bin spans. The bins start at the run's start and double their width
    /// (merging pairs) whenever an item ends past the last, so the run's length need not be
    /// known before its results are read.
    width: f64,
    /// The end of the last item.
    max_end: f64,
    pub tasks: Vec<TaskLanes>,
    /// Busy seconds of all items per time bin: over the bin's width, the items running.
    pub running: Vec<f64>,
}

/// A lane of the timeline: a worker process, on its node in a cluster run (pids of two
/// nodes may be the same); a slot's number when its task is `per_item`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub pid: u32,
    pub node: Option<Arc<str>>,
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "pid {} on {node}", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            width: 1e-3 / BINS as f64,
            max_end: 0.0,
            tasks: Vec::new(),
            running: vec![0.0; BINS],
        }
    }

    pub fn bin_width(&self) -> f64 {
        self.width
    }

    /// Seconds the drawing spans: to the last item's end (to the end of its bin, when any
    /// task is drawn from bins).
    pub fn span(&self) -> f64 {
        if self.tasks.iter().any(TaskLanes::binned) {
            self.used_bins() as f64 * self.width
        } else {
            self.max_end.max(1e-6)
        }
    }

    /// Bins up to the last one any item reached.
    pub fn used_bins(&self) -> usize {
        ((self.max_end / self.width).ceil() as usize).clamp(1, BINS)
    }

    /// Widens the bins until `end` falls within them.
    fn fit(&mut self, end: f64) {
        while end > self.width * BINS as f64 {
            self.width *= 2.0;
            merge_pairs(&mut self.running, |a, b| a + b);
            for task in &mut self.tasks {
                task.bins.merge_pairs();
                for lane in task.lane_bins.iter_mut().flatten() {
                    lane.merge_pairs();
                }
            }
        }
    }

    /// Ready to draw: the lanes of every task settled (pids or slots).
    pub fn settle(&mut self) {
        for task in &mut self.tasks {
            task.settle();
        }
    }
}

/// Halves the resolution of `bins`: each pair becomes one, the second half empty.
fn merge_pairs<T: Copy + Default>(bins: &mut [T], merge: impl Fn(T, T) -> T) {
    let half = bins.len() / 2;
    for i in 0..half {
        bins[i] = merge(bins[2 * i], bins[2 * i + 1]);
    }
    for bin in &mut bins[half..] {
        *bin = T::default();
    }
}

/// Spreads `[start, end)` over the bins of `width` it covers, calling `each(bin, seconds)`.
fn spread(width: f64, start: f64, end: f64, mut each: impl FnMut(usize, f64)) {
    let first = ((start / width) as usize).min(BINS - 1);
    let last = ((end / width) as usize).min(BINS - 1);
    for bin in first..=last {
        let (from, to) = (bin as f64 * width, (bin + 1) as f64 * width);
        each(bin, (end.min(to) - start.max(from)).max(0.0));
    }
}

/// How bad a status is, for the colour of a bin.
fn severity(status: Status) -> u8 {
    match status {
        Status::Ok => 0,
        Status::Skipped => 1,
        Status::TimedOut => 2,
        Status::Failed => 3,
    }
}

impl Timeline {
    /// A task begins.
    pub fn task(&mut self, task: &TaskInfo) {
        let drawn: usize = self.tasks.iter().map(|t| t.items.min(t.limit)).sum();
        let limit = DETAIL_LIMIT.min(DETAIL_TOTAL.saturating_sub(drawn));
        self.tasks.push(TaskLanes::new(task, limit));
    }

    /// One result of `task`.
    pub fn add(&mut self, task: &TaskInfo, r: &ItemResult) {
        // Skipped items never ran; reused ones ran in an earlier run.
        let (Some(pid), None) = (r.worker, &r.reused_from) else {
            return;
        };
        if r.status == Status::Skipped {
            return;
        }
        if self.tasks.is_empty() {
            self.task(task);
        }
        let (start, end) = (r.started_s, r.started_s + r.duration_s);
        self.fit(end);
        self.max_end = self.max_end.max(end);
        let width = self.width;
        spread(width, start, end, |bin, seconds| {
            self.running[bin] += seconds
        });
        let lanes = self.tasks.last_mut().expect("a task was begun above");
        lanes.histogram.add(r.duration_s, r.status);
        lanes.bins.add(width, start, end, r.status);
        lanes.items += 1;
        let lane = Lane {
            pid,
            node: r.node.as_deref().map(Arc::from),
        };
        let on = lane.to_string();
        let lane = if lanes.per_item { 0 } else { lanes.lane(lane) };
        if lanes.items == lanes.limit + 1 {
            lanes.switch_to_bins(width);
        }
        if lanes.binned() {
            if let Some(bins) = &mut lanes.lane_bins {
                // A worker that ran its first item after the switch.
                bins.resize(lanes.lanes.len(), Bins::new());
                bins[lane].add(width, start, end, r.status);
            }
            return;
        }
        let mut title = format!(
            "{}[{}] (input {}): {} in {:.6}s, pid {}",
            task.name,
            r.index,
            shown(&r.input),
            super::item::status_name(r.status),
            r.duration_s,
            on.trim_start_matches("pid ")
        );
        if let Some(error) = &r.error {
            title.push('\n');
            title.push_str(&shown(&serde_json::Value::String(error.clone())));
        }
        lanes.bars.push(Bar {
            lane,
            start,
            end,
            status: r.status,
            title,
        });
    }
}

impl TaskLanes {
    /// From bars to bins, once there are too many bars to draw.
    fn switch_to_bins(&mut self, width: f64) {
        let bars = std::mem::take(&mut self.bars);
        if self.per_item {
            return; // its slots come from `bins`, which has every item already
        }
        let mut bins = vec![Bins::new(); self.lanes.len()];
        for bar in bars {
            bins[bar.lane].add(width, bar.start, bar.end, bar.status);
        }
        self.lane_bins = Some(bins);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(index: u64, pid: u32, start: f64, duration: f64, status: &str) -> ItemResult {
        serde_json::from_value(json!({
            "index": index, "input": index, "status": status, "started_s": start,
            "duration_s": duration, "worker": pid,
        }))
        .unwrap()
    }

    fn command_task() -> TaskInfo {
        TaskInfo {
            name: "c".into(),
            function: Some("command:f".into()),
            workers: Some(2),
            ..TaskInfo::default()
        }
    }

    #[test]
    fn a_process_per_item_is_drawn_on_the_lowest_free_slot() {
        let mut timeline = Timeline::new();
        let task = command_task();
        timeline.task(&task);
        // Two slots: 0 and 1 start together, 2 starts when 0 ends (to the microsecond, as
        // written), 3 when both are free again (the lowest slot); listed out of start order.
        let items = [
            item(3, 13, 0.2, 0.1, "ok"),
            item(0, 10, 0.0, 0.1000004, "ok"),
            item(1, 11, 0.0, 0.2, "failed"),
            item(2, 12, 0.1, 0.1, "timed_out"),
        ];
        for r in &items {
            timeline.add(&task, r);
        }
        timeline.settle();
        let lanes = &timeline.tasks[0];
        assert!(lanes.per_item);
        assert_eq!(lanes.lanes.len(), 2);
        let mut on: Vec<(String, usize)> = lanes
            .bars
            .iter()
            .map(|b| (b.title.split(' ').next().unwrap().to_owned(), b.lane))
            .collect();
        on.sort();
        assert_eq!(
            on,
            [
                ("c[0]".into(), 0),
                ("c[1]".into(), 1),
                ("c[2]".into(), 0),
                ("c[3]".into(), 0)
            ]
        );
    }

    #[test]
    fn a_big_command_task_draws_its_slots_from_bins_and_keeps_no_pids() {
        let mut timeline = Timeline::new();
        let task = command_task();
        timeline.task(&task);
        for i in 0..(DETAIL_LIMIT as u64 + 10) {
            // Two at a time, each 1 ms.
            let start = (i / 2) as f64 * 1e-3;
            timeline.add(&task, &item(i, 100 + i as u32, start, 1e-3, "ok"));
        }
        timeline.settle();
        let lanes = &timeline.tasks[0];
        assert!(lanes.binned() && lanes.bars.is_empty() && lanes.lanes.is_empty());
        assert_eq!(lanes.lane_count(timeline.bin_width()), 2);
    }

    #[test]
    fn tasks_past_the_runs_detail_budget_are_drawn_from_bins() {
        let mut timeline = Timeline::new();
        let per_task = DETAIL_LIMIT as u64;
        let tasks = DETAIL_TOTAL as u64 / per_task + 1;
        for t in 0..tasks {
            let task = TaskInfo {
                name: format!("t{t}"),
                ..TaskInfo::default()
            };
            timeline.task(&task);
            for i in 0..per_task {
                let pid = 1 + (i % 2) as u32;
                timeline.add(
                    &task,
                    &item(i, pid, (t * per_task + i) as f64 * 1e-3, 1e-3, "ok"),
                );
            }
        }
        let binned: Vec<bool> = timeline.tasks.iter().map(TaskLanes::binned).collect();
        let mut expected = vec![false; tasks as usize - 1];
        expected.push(true);
        assert_eq!(binned, expected);
        let last = timeline.tasks.last().unwrap();
        assert!(last.bars.is_empty());
        assert_eq!(
            last.lane_bins.as_ref().map(Vec::len),
            Some(2),
            "both workers' lanes"
        );
    }

    #[test]
    fn histograms_are_per_task_with_failures_apart() {
        let mut timeline = Timeline::new();
        let (a, b) = (
            command_task(),
            TaskInfo {
                name: "b".into(),
                ..TaskInfo::default()
            },
        );
        timeline.task(&a);
        timeline.add(&a, &item(0, 1, 0.0, 1.0, "failed"));
        timeline.task(&b);
        timeline.add(&b, &item(0, 2, 0.0, 1e-6, "ok"));
        let (ha, hb) = (&timeline.tasks[0].histogram, &timeline.tasks[1].histogram);
        assert_eq!(ha.failed.iter().sum::<u64>(), 1);
        assert_eq!(ha.ok.iter().sum::<u64>(), 0);
        assert_eq!(hb.ok[0], 1);
    }
}
