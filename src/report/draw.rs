//! The SVG pictures of a run's HTML page: the worker timeline (per task, a lane per worker
//! process, or per slot for a process per item), the items running over time, and a
//! histogram of item durations per task. Static SVG with `<title>` tooltips: they read with
//! JavaScript blocked.

use std::fmt::Write as _;

use super::show::seconds;
use super::timeline::{Bins, HISTOGRAM_BINS, Histogram, PER_DECADE, TaskLanes, Timeline};
use crate::record::Status;

pub const WIDTH: f64 = 960.0;
const LANE: f64 = 16.0;
pub const LEFT: f64 = 90.0;

fn x_of(timeline: &Timeline, t: f64) -> f64 {
    LEFT + t / timeline.span() * (WIDTH - LEFT)
}

pub fn class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "failed",
        Status::TimedOut => "timed_out",
        Status::Skipped => "skipped",
    }
}

/// Per task, a row naming it, then its lanes; an item a bar from its start to its end,
/// coloured by status.
pub fn timeline_svg(page: &mut String, timeline: &mut Timeline) {
    timeline.settle();
    let width = timeline.bin_width();
    let rows: usize = timeline.tasks.iter().map(|t| t.lane_count(width) + 1).sum();
    let height = rows as f64 * LANE + 20.0;
    let _ = writeln!(
        page,
        "<svg id=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"worker timeline\">"
    );
    let mut top = 0.0;
    for task in &timeline.tasks {
        let lanes = task.lane_count(width);
        let what = match (task.per_item, lanes) {
            (_, 0) => "nothing ran".to_owned(),
            (true, 1) => "one slot (a process per item)".to_owned(),
            (true, n) => format!("a lane per slot, {n} at most at once (a process per item)"),
            (false, 1) => "one worker process".to_owned(),
            (false, n) => format!("a lane per worker process, {n}"),
        };
        let _ = writeln!(
            page,
            "<text class=\"task-label\" x=\"4\" y=\"{:.1}\" font-weight=\"bold\">task {}: {}</text>",
            top + LANE - 4.0,
            esc(&task.name),
            esc(&what)
        );
        top += LANE;
        for lane in 0..lanes {
            let label = match task.per_item {
                true => format!("slot {}", lane + 1),
                false => task.lanes[lane].to_string(),
            };
            lane_row(page, top + lane as f64 * LANE, &label);
        }
        task_lanes(page, timeline, task, top);
        top += lanes as f64 * LANE;
    }
    let _ = writeln!(
        page,
        "<text x=\"{LEFT}\" y=\"{:.1}\">0s</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></svg>",
        height - 4.0,
        WIDTH - 2.0,
        height - 4.0,
        seconds(timeline.span())
    );
}

fn lane_row(page: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        page,
        "<g class=\"lane\"><text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/></g>",
        y + LANE - 4.0,
        esc(label),
        y + LANE,
        y + LANE
    );
}

/// A task's bars, or its bins past the detail limit.
fn task_lanes(page: &mut String, timeline: &Timeline, task: &TaskLanes, top: f64) {
    if !task.binned() {
        for bar in &task.bars {
            let x = x_of(timeline, bar.start);
            let w = (x_of(timeline, bar.end) - x).max(0.5);
            let _ = writeln!(
                page,
                "<rect class=\"item {}\" x=\"{x:.2}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\"><title>{}</title></rect>",
                class(bar.status),
                top + bar.lane as f64 * LANE + 2.0,
                LANE - 4.0,
                esc(&bar.title)
            );
        }
        return;
    }
    match &task.lane_bins {
        Some(lanes) if !task.per_item => {
            for (lane, bins) in lanes.iter().enumerate() {
                let name = task.lanes[lane].to_string();
                bins_row(page, timeline, bins, top + lane as f64 * LANE, &name, 0.0);
            }
        }
        // Slots from the task's bins: slot k is busy for what runs beyond k at once.
        _ => {
            for slot in 0..task.lane_count(timeline.bin_width()) {
                let name = format!("{}, slot {}", task.name, slot + 1);
                let y = top + slot as f64 * LANE;
                bins_row(page, timeline, &task.bins, y, &name, slot as f64);
            }
        }
    }
}

/// A lane drawn from `bins`, less the `below` items the lanes above it take.
fn bins_row(page: &mut String, timeline: &Timeline, bins: &Bins, y: f64, name: &str, below: f64) {
    let width = timeline.bin_width();
    for bin in 0..timeline.used_bins() {
        if bins.items[bin] == 0 {
            continue;
        }
        let busy = (bins.busy[bin] / width - below).clamp(0.0, 1.0);
        if below > 0.0 && busy <= 0.0 {
            continue;
        }
        let x = x_of(timeline, bin as f64 * width);
        let _ = writeln!(
            page,
            "<rect class=\"bin {}\" x=\"{x:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill-opacity=\"{:.2}\"><title>{}, {}–{}: {} items, {:.0}% busy</title></rect>",
            class(bins.worst[bin]),
            y + 2.0,
            (WIDTH - LEFT) / timeline.used_bins() as f64,
            LANE - 4.0,
            0.25 + 0.75 * busy,
            esc(name),
            seconds(bin as f64 * width),
            seconds((bin + 1) as f64 * width),
            bins.items[bin],
            busy * 100.0
        );
    }
}

/// The number of items running over time.
pub fn running_svg(page: &mut String, timeline: &Timeline) {
    let width = timeline.bin_width();
    let most = timeline
        .running
        .iter()
        .take(timeline.used_bins())
        .map(|b| b / width)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let height = 80.0;
    let points: Vec<String> = timeline
        .running
        .iter()
        .take(timeline.used_bins())
        .enumerate()
        .map(|(bin, busy)| {
            let x = x_of(timeline, (bin as f64 + 0.5) * width);
            let y = height - busy / width / most * (height - 10.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = writeln!(
        page,
        "<svg id=\"running\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"items running over time\"><text x=\"4\" y=\"12\">at most {most:.1}</text><polyline fill=\"none\" stroke=\"#3367d6\" stroke-width=\"1.5\" points=\"{}\"><title>items running at once (at most {most:.1})</title></polyline></svg>",
        points.join(" ")
    );
}

/// Per task, how many items took how long (four bins a decade from 1 µs, each task to its
/// own scale, so a few slow items show beside many quick ones of another task); failed and
/// timed-out items stacked on the ok ones in their colours.
pub fn histograms_svg(page: &mut String, timeline: &Timeline) {
    page.push_str("<div id=\"durations\">\n");
    for task in &timeline.tasks {
        histogram_svg(page, &task.name, &task.histogram);
    }
    page.push_str("</div>\n");
}

fn histogram_svg(page: &mut String, name: &str, histogram: &Histogram) {
    let counts = (0..HISTOGRAM_BINS).map(|bin| histogram.count(bin));
    let most = counts.clone().max().unwrap_or(0).max(1) as f64;
    let total: u64 = counts.sum();
    let height = 70.0;
    let step = (WIDTH - LEFT) / HISTOGRAM_BINS as f64;
    let _ = writeln!(
        page,
        "<svg class=\"durations\" width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"item durations of task {}\"><text x=\"4\" y=\"12\" font-weight=\"bold\">{}</text><text x=\"4\" y=\"26\">{total} items</text>",
        height + 16.0,
        esc(name),
        esc(name)
    );
    for bin in 0..HISTOGRAM_BINS {
        let count = histogram.count(bin);
        if count == 0 {
            continue;
        }
        let from = 1e-6 * 10f64.powf(bin as f64 / PER_DECADE as f64);
        let to = from * 10f64.powf(1.0 / PER_DECADE as f64);
        let title = format!(
            "task {name}: {count} items took {}–{} ({} ok, {} failed, {} timed out)",
            axis(from),
            axis(to),
            histogram.ok[bin],
            histogram.failed[bin],
            histogram.timed_out[bin]
        );
        let mut bottom = height;
        let parts = [
            (histogram.ok[bin], Status::Ok),
            (histogram.timed_out[bin], Status::TimedOut),
            (histogram.failed[bin], Status::Failed),
        ];
        for (n, status) in parts {
            if n == 0 {
                continue;
            }
            // At least a sliver, so one failure beside a million ok items still shows.
            let h = (n as f64 / most * height).max(2.0).min(bottom);
            bottom -= h;
            let _ = writeln!(
                page,
                "<rect class=\"{}\" x=\"{:.1}\" y=\"{bottom:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}</title></rect>",
                class(status),
                LEFT + bin as f64 * step,
                step - 1.0,
                esc(&title)
            );
        }
    }
    for decade in (0..=10).step_by(2) {
        let _ = write!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT + (decade * PER_DECADE) as f64 * step,
            height + 12.0,
            axis(1e-6 * 10f64.powi(decade as i32))
        );
    }
    page.push_str("</svg>\n");
}

/// A duration for an axis: `1µs`, `100µs`, `10ms`, `1s`, `100s`.
fn axis(s: f64) -> String {
    let (value, unit) = match s {
        s if s < 1e-3 => (s * 1e6, "µs"),
        s if s < 1.0 => (s * 1e3, "ms"),
        s => (s, "s"),
    };
    format!("{}{unit}", (value * 10.0).round() / 10.0)
}

/// Text for HTML.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
