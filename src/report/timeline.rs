//! What the HTML report draws, gathered as the results stream by: each item on its worker's
//! lane (or, past a few thousand items, time bins per lane), the number of items running over
//! time, and a histogram of item durations. Memory is bounded by the drawing, not the items.

use std::collections::HashMap;
use std::sync::Arc;

use super::item::{ItemResult, shown};
use crate::record::Status;
use crate::record::read::TaskInfo;

/// Items drawn one by one up to this many; past it, lanes are drawn from time bins.
pub const DETAIL_LIMIT: usize = 4000;
/// Time bins across the run (the concurrency line, and lanes past `DETAIL_LIMIT`).
pub const BINS: usize = 400;
/// Lanes drawn at most; a process per item (commands) gives a pid per item, and their lanes
/// are then the run's concurrency instead.
pub const MAX_LANES: usize = 64;
/// Duration histogram: bins per decade, from 1 µs.
pub const PER_DECADE: usize = 4;
pub const HISTOGRAM_BINS: usize = 10 * PER_DECADE;

/// One item on the timeline.
pub struct Bar {
    pub lane: usize,
    pub start: f64,
    pub end: f64,
    pub status: Status,
    /// The tooltip: task[index], input, duration, error.
    pub title: String,
}

/// A lane's time bins: busy seconds and the worst status seen in each.
pub struct LaneBins {
    pub busy: Vec<f64>,
    pub worst: Vec<Status>,
    pub items: Vec<u32>,
}

pub struct Timeline {
    /// Seconds a time bin spans. The bins start at the run's start and double their width
    /// (merging pairs) whenever an item ends past the last, so the run's length need not be
    /// known before its results are read.
    width: f64,
    /// The end of the last item.
    max_end: f64,
    /// Worker processes, in the order they first ran an item.
    pub lanes: Vec<Lane>,
    lane_of: HashMap<Lane, usize>,
    pub bars: Vec<Bar>,
    /// Set once the items outnumber `DETAIL_LIMIT`.
    pub bins: Option<Vec<LaneBins>>,
    /// Busy seconds of all items per time bin: over the bin's width, the items running.
    pub running: Vec<f64>,
    pub histogram: [u64; HISTOGRAM_BINS],
    items: usize,
    /// The lanes are slots, not pids (`bars_on_slots`).
    pub slots: bool,
    /// The most workers any task had, when the files say.
    pub workers: u64,
}

/// A lane of the timeline: a worker process, on its node in a cluster run (pids of two
/// nodes may be the same); a slot when `slots`.
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
            lanes: Vec::new(),
            lane_of: HashMap::new(),
            bars: Vec::new(),
            bins: None,
            running: vec![0.0; BINS],
            histogram: [0; HISTOGRAM_BINS],
            items: 0,
            slots: false,
            workers: 0,
        }
    }

    pub fn bin_width(&self) -> f64 {
        self.width
    }

    /// Seconds the drawing spans: to the last item's end (to the end of its bin, when drawn
    /// from bins).
    pub fn span(&self) -> f64 {
        match &self.bins {
            None => self.max_end.max(1e-6),
            Some(_) => self.used_bins() as f64 * self.width,
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
            for lane in self.bins.iter_mut().flatten() {
                merge_pairs(&mut lane.busy, |a, b| a + b);
                merge_pairs(&mut lane.items, |a, b| a + b);
                merge_pairs(&mut lane.worst, |a, b| {
                    if severity(b) > severity(a) { b } else { a }
                });
            }
        }
    }

    /// Whether the lanes are too many to draw one each (a pid per item).
    pub fn lanes_overflow(&self) -> bool {
        self.lanes.len() > MAX_LANES
    }

    /// Whether the pids are far more than the workers: a process per item (commands), whose
    /// lanes read better as the slots the items ran in.
    pub fn pid_per_item(&self) -> bool {
        self.lanes_overflow() || (self.workers > 0 && self.lanes.len() as u64 > 4 * self.workers)
    }

    /// The bars on slots instead of pids (a process per item): each on the first slot free
    /// at its start, as a pool of `workers` would have run them.
    pub fn bars_on_slots(&mut self) {
        self.bars.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut free_at: Vec<f64> = Vec::new();
        for bar in &mut self.bars {
            bar.lane = match free_at.iter().position(|&end| end <= bar.start + 1e-9) {
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
        self.slots = true;
    }

    fn lane(&mut self, lane: Lane) -> usize {
        if let Some(&at) = self.lane_of.get(&lane) {
            return at;
        }
        self.lanes.push(lane.clone());
        self.lane_of.insert(lane, self.lanes.len() - 1);
        self.lanes.len() - 1
    }

    /// From bars to bins, once there are too many bars to draw.
    fn switch_to_bins(&mut self) {
        let lanes = self.lanes.len().min(MAX_LANES);
        let mut bins: Vec<LaneBins> = (0..lanes)
            .map(|_| LaneBins {
                busy: vec![0.0; BINS],
                worst: vec![Status::Ok; BINS],
                items: vec![0; BINS],
            })
            .collect();
        for bar in std::mem::take(&mut self.bars) {
            add_to_bins(
                self.width, &mut bins, bar.lane, bar.start, bar.end, bar.status,
            );
        }
        self.bins = Some(bins);
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

fn add_to_bins(
    width: f64,
    bins: &mut [LaneBins],
    lane: usize,
    start: f64,
    end: f64,
    status: Status,
) {
    let Some(lane) = bins.get_mut(lane) else {
        return;
    };
    spread(width, start, end, |bin, seconds| {
        lane.busy[bin] += seconds;
        lane.items[bin] += 1;
        if severity(status) > severity(lane.worst[bin]) {
            lane.worst[bin] = status;
        }
    });
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
        self.workers = self.workers.max(task.workers.unwrap_or(0));
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
        let (start, end) = (r.started_s, r.started_s + r.duration_s);
        self.fit(end);
        self.max_end = self.max_end.max(end);
        let width = self.bin_width();
        spread(width, start, end, |bin, seconds| {
            self.running[bin] += seconds
        });
        let decade = (r.duration_s.max(1e-6) / 1e-6).log10() * PER_DECADE as f64;
        self.histogram[(decade as usize).min(HISTOGRAM_BINS - 1)] += 1;
        let lane = Lane {
            pid,
            node: r.node.as_deref().map(Arc::from),
        };
        let on = lane.to_string();
        let lane = self.lane(lane);
        self.items += 1;
        if let Some(bins) = &mut self.bins {
            // Past the detail limit: bins, and no tooltip of its own.
            add_to_bins(width, bins, lane, start, end, r.status);
            return;
        }
        let mut title = format!(
            "{}[{}] (input {}): {} in {:.6}s on {on}",
            task.name,
            r.index,
            shown(&r.input),
            super::item::status_name(r.status),
            r.duration_s
        );
        if let Some(error) = &r.error {
            title.push('\n');
            title.push_str(&shown(&serde_json::Value::String(error.clone())));
        }
        let bar = Bar {
            lane,
            start,
            end,
            status: r.status,
            title,
        };
        self.bars.push(bar);
        if self.items > DETAIL_LIMIT {
            self.switch_to_bins();
        }
    }
}
